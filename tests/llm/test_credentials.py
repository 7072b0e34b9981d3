"""Fake Azure credentials and environment defaults."""

from __future__ import annotations

import asyncio
import os

import pytest
from azure import identity
from azure.identity import aio

from dafx_testing.llm import FakeLLM
from dafx_testing.llm.credentials import CREDENTIAL_CLASSES, FAKE_TOKEN
from dafx_testing.llm.environment import DEFAULT_ENV

SCOPE = "https://cognitiveservices.azure.com/.default"


def _make(module, name: str):
    if name == "ClientSecretCredential":
        return getattr(module, name)("tenant-id", "client-id", "client-secret")
    return getattr(module, name)()


BUILT_BEFORE = identity.AzureCliCredential()  # as an app would at import time, before any faking


@pytest.mark.parametrize("name", CREDENTIAL_CLASSES)
def test_sync_credentials_hand_out_the_fake_token(fake, name):
    credential = _make(identity, name)
    token = credential.get_token(SCOPE)
    assert token.token == FAKE_TOKEN
    assert token.expires_on == 1772366400 + 3600  # the fake's clock plus an hour
    assert credential.get_token_info(SCOPE).token == FAKE_TOKEN


@pytest.mark.parametrize("name", CREDENTIAL_CLASSES)
def test_async_credentials_hand_out_the_fake_token(fake, name):
    async def fetch():
        credential = _make(aio, name)
        return (await credential.get_token(SCOPE)).token, (await credential.get_token_info(SCOPE)).token

    assert asyncio.run(fetch()) == (FAKE_TOKEN, FAKE_TOKEN)


def test_credentials_built_before_faking_are_faked_too(fake):
    assert BUILT_BEFORE.get_token(SCOPE).token == FAKE_TOKEN


def test_bearer_token_providers(fake):
    assert identity.get_bearer_token_provider(identity.DefaultAzureCredential(), SCOPE)() == FAKE_TOKEN
    provider = aio.get_bearer_token_provider(aio.DefaultAzureCredential(), SCOPE)
    assert asyncio.run(provider()) == FAKE_TOKEN


def test_real_methods_are_back_after_exit():
    before = identity.AzureCliCredential.get_token
    with FakeLLM():
        assert identity.AzureCliCredential.get_token is not before
    assert identity.AzureCliCredential.get_token is before
    assert "get_token" not in vars(identity.ClientSecretCredential)  # the inherited method, not a leftover


def test_env_defaults_fill_only_what_is_missing(monkeypatch):
    monkeypatch.setenv("FOUNDRY_MODEL", "my-model")
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with FakeLLM():
        assert os.environ["FOUNDRY_MODEL"] == "my-model"
        assert os.environ["AZURE_OPENAI_ENDPOINT"] == DEFAULT_ENV["AZURE_OPENAI_ENDPOINT"]
    assert "AZURE_OPENAI_ENDPOINT" not in os.environ


def test_env_none_sets_nothing(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeLLM(env=None):
        assert "OPENAI_API_KEY" not in os.environ
