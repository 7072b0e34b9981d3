"""Fake Azure credentials: ``azure.identity`` hands out fake tokens while faking is on.

Apps build ``AzureCliCredential()``, ``DefaultAzureCredential()``, ``ManagedIdentityCredential()``
or ``ClientSecretCredential(...)`` (sync or ``azure.identity.aio``), often at import time, and
pass them or ``get_bearer_token_provider(credential, scope)`` to their clients. Constructing those
needs no network; fetching a token does (``az`` subprocess, IMDS, Entra ID). So the seam is the
token methods: ``get_token`` and ``get_token_info`` of those classes are patched on the classes
themselves, which reaches credentials created before faking began too, and both modules'
``get_bearer_token_provider`` return providers of the fake token.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from .clock import Clock, epoch_seconds

__all__ = ["CREDENTIAL_CLASSES", "FAKE_TOKEN", "faking_azure_credentials"]

FAKE_TOKEN = "dafx-fake-azure-token"
CREDENTIAL_CLASSES = ("AzureCliCredential", "DefaultAzureCredential", "ManagedIdentityCredential", "ClientSecretCredential")
_LIFETIME_SECONDS = 3600


def _token_methods(clock: Clock, is_async: bool) -> dict[str, Callable[..., Any]]:
    from azure.core.credentials import AccessToken, AccessTokenInfo

    def expiry() -> int:
        return epoch_seconds(clock) + _LIFETIME_SECONDS

    def get_token(self: Any, *scopes: str, **kwargs: Any) -> Any:
        return AccessToken(FAKE_TOKEN, expiry())

    def get_token_info(self: Any, *scopes: str, options: Any = None) -> Any:
        return AccessTokenInfo(FAKE_TOKEN, expiry())

    if not is_async:
        return {"get_token": get_token, "get_token_info": get_token_info}

    async def async_get_token(self: Any, *scopes: str, **kwargs: Any) -> Any:
        return get_token(self, *scopes)

    async def async_get_token_info(self: Any, *scopes: str, options: Any = None) -> Any:
        return get_token_info(self, *scopes)

    return {"get_token": async_get_token, "get_token_info": async_get_token_info}


def _provider_factory(is_async: bool) -> Callable[..., Callable[[], Any]]:
    def get_bearer_token_provider(credential: Any, *scopes: str) -> Callable[[], Any]:
        if not is_async:
            return lambda: FAKE_TOKEN

        async def provide() -> str:
            return FAKE_TOKEN

        return provide

    return get_bearer_token_provider


@contextmanager
def faking_azure_credentials(clock: Clock) -> Iterator[None]:
    """While open, every ``azure.identity`` credential above yields :data:`FAKE_TOKEN`.

    Tokens expire an hour after ``clock()``. Without ``azure-identity`` installed this does nothing.

    Example::

        with faking_azure_credentials(wall_clock):
            AzureCliCredential().get_token("https://cognitiveservices.azure.com/.default").token
            # 'dafx-fake-azure-token'
    """
    with ExitStack() as stack:
        for module_name, is_async in (("azure.identity", False), ("azure.identity.aio", True)):
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                break
            methods = _token_methods(clock, is_async)
            for class_name in CREDENTIAL_CLASSES:
                for method_name, method in methods.items():
                    stack.enter_context(mock.patch.object(getattr(module, class_name), method_name, method))
            stack.enter_context(mock.patch.object(module, "get_bearer_token_provider", _provider_factory(is_async)))
        yield
