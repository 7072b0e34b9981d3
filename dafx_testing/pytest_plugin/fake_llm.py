"""The ``fake_llm`` fixture's body, kept here so the plugin wires it in one line.

Usage in a test::

    def test_joke(fake_llm, dafx):
        fake_llm.reply("Why did the pirate ...")
        ...

    @pytest.mark.fake_llm(cassette="cassettes/joker.jsonl")      # replay a recording
    def test_golden(fake_llm): ...

Replies are stamped with ``fake_llm.clock``: the real time until a fixture that owns a virtual
clock points it there (``fake_llm.clock = lambda: sim.now``). With ``--dafx-record`` a cassette
marker records instead of replaying (pass ``upstream=`` in the marker to record from somewhere
other than the real service). Only pytest is imported at module load.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..llm.fake import FakeLLM

__all__ = ["MARKER", "fake_llm"]

MARKER = (
    "fake_llm(cassette=None, upstream=None, **options): configure the fake_llm fixture; cassette "
    "(relative to the test file) replays a recording, or records it under --dafx-record"
)


def fake_llm(request: pytest.FixtureRequest) -> Iterator[FakeLLM]:
    """A :class:`~dafx_testing.llm.FakeLLM` active for the test, configured by its marker.

    Wire it in the plugin with ``fake_llm = pytest.fixture(name="fake_llm")(pytest_fixture.fake_llm)``
    and register :data:`MARKER` in ``pytest_configure``.
    """
    from ..llm.fake import FakeLLM

    marker = request.node.get_closest_marker("fake_llm")
    options = dict(marker.kwargs) if marker else {}
    cassette, upstream = options.pop("cassette", None), options.pop("upstream", None)
    if cassette is None:
        fake = FakeLLM(**options)
    else:
        path = Path(request.node.path).parent / cassette
        if request.config.getoption("--dafx-record", default=False):
            fake = FakeLLM.recording(path, upstream=upstream, **options)
        else:
            fake = FakeLLM.replaying(path, **options)
    with fake:
        yield fake
