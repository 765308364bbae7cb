"""Fixtures for the SFU suite: an engine, a router, aiortc clients."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sfu import Engine, Router, SfuConfig
from sfu_client import Client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # run coroutine tests here whatever asyncio_mode the project sets
    for item in items:
        if "tests/sfu/" not in str(item.path).replace("\\", "/"):
            continue
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.function):
            if item.get_closest_marker("asyncio") is None:
                item.add_marker(pytest.mark.asyncio)
        # aiortc/aioice occasionally leave a datagram transport to the GC when
        # a connection closes mid-handshake (their close races, not ours)
        item.add_marker(pytest.mark.filterwarnings("ignore::ResourceWarning"))
        item.add_marker(pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"))


@pytest.fixture
def sfu_config() -> SfuConfig:
    # the aiortc clients run on this machine: their candidates are private/loopback addresses
    return SfuConfig(allow_private_candidates=True)


@pytest.fixture
async def engine(sfu_config: SfuConfig) -> AsyncIterator[Engine]:
    engine = Engine(sfu_config)
    yield engine
    await engine.close()


@pytest.fixture
async def router(engine: Engine) -> Router:
    return engine.create_router("room-1", max_peers=8, app_data={"session_id": 1})


@pytest.fixture
async def make_client(router: Router) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    clients: list[Client] = []

    async def make(user_key: str, *, join: bool = True, **kwargs: Any) -> Client:
        client = Client(router, user_key, **kwargs)
        clients.append(client)
        if join:
            await client.join()
        return client

    yield make
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
