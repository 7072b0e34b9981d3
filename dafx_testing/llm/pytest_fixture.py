"""The ``fake_llm`` fixture's body, kept here so the plugin wires it in one line.

Usage in a test::

    def test_joke(fake_llm, dafx):
        fake_llm.reply("Why did the pirate ...")
        ...

    @pytest.mark.fake_llm(cassette="cassettes/joker.jsonl")      # replay a recording
    def test_golden(fake_llm): ...

The fake starts before the app is imported (so environment defaults are in place for clients
built at import time) and stamps replies with the virtual clock of the test's ``virtual_clock``
or ``dafx`` fixture when it uses one. With ``--dafx-record`` a cassette marker records instead
of replaying (pass ``upstream=`` in the marker to record from somewhere other than the real
service). Only pytest is imported at module load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .fake import FakeLLM

__all__ = ["MARKER", "fake_llm"]

MARKER = (
    "fake_llm(cassette=None, upstream=None, **options): configure the fake_llm fixture; cassette "
    "(relative to the test file) replays a recording, or records it under --dafx-record"
)
_CLOCK_FIXTURES = ("virtual_clock", "dafx")


def _following(request: pytest.FixtureRequest) -> tuple[Callable[[], datetime], Callable[[], None]]:
    """A clock reading the test's virtual clock once it exists, and the step that finds it."""
    from .clock import wall_clock

    source: list[Any] = []

    def clock() -> datetime:
        return source[0].now if source else wall_clock()

    def attach() -> None:
        name = next((name for name in _CLOCK_FIXTURES if name in request.fixturenames), None)
        if name is not None:
            source.append(request.getfixturevalue(name))

    return clock, attach


def fake_llm(request: pytest.FixtureRequest) -> Iterator[FakeLLM]:
    """A :class:`~dafx_testing.llm.FakeLLM` active for the test, configured by its marker.

    Wire it in the plugin with ``fake_llm = pytest.fixture(name="fake_llm")(pytest_fixture.fake_llm)``
    and register :data:`MARKER` in ``pytest_configure``.
    """
    from .fake import FakeLLM

    marker = request.node.get_closest_marker("fake_llm")
    options = dict(marker.kwargs) if marker else {}
    cassette, upstream = options.pop("cassette", None), options.pop("upstream", None)
    clock, attach = _following(request)
    options.setdefault("clock", clock)
    if cassette is None:
        fake = FakeLLM(**options)
    else:
        path = Path(request.node.path).parent / cassette
        if request.config.getoption("--dafx-record", default=False):
            fake = FakeLLM.recording(path, upstream=upstream, **options)
        else:
            fake = FakeLLM.replaying(path, **options)
    with fake:
        attach()
        yield fake
