"""Repository-wide test configuration.

* The repository root goes on ``sys.path`` so scenarios import ``fakes``.
* Tests never reach the network: any socket connection or name lookup that is
  not loopback fails at once with an error naming the address.
* ``pytester`` is on for the plugin's own tests.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

# pytester's in-process runs drop every module first imported inside them, and hypothesis's
# plugin imports hypothesis at the end of each run: import it once here so a run takes
# milliseconds, not a second.
import hypothesis.internal.observability  # noqa: F401

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_LOCAL_NAMES = {"localhost", "localhost.localdomain", ""}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkBlockedError(ConnectionRefusedError):
    """A test tried to reach a non-loopback address."""


def _is_local(host: object) -> bool:
    if not isinstance(host, str) or host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(address, tuple) and not _is_local(host):
        raise NetworkBlockedError(
            f"test tried to connect to {address!r}; tests never reach the network. Fake the "
            "service (FakeLLM for models, an http_handler for call_http).")


def _guarded_connect(self, address):
    _check(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check(address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local(host):
        raise NetworkBlockedError(
            f"test tried to resolve {host!r}; tests never reach the network.")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config):
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo


def pytest_unconfigure(config):
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.getaddrinfo = _real_getaddrinfo
