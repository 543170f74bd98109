"""Real receivers of the app outputs, one per test (``receivers.py``)."""

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.engine.output.receivers import (
    FakeVTubeStudio,
    LiveLinkReceiver,
    VmcReceiver,
    running_live_link,
    running_vmc_receiver,
    running_vtube_studio,
)


@pytest_asyncio.fixture
async def vmc_receiver() -> AsyncIterator[tuple[VmcReceiver, int]]:
    async with running_vmc_receiver() as running:
        yield running


@pytest_asyncio.fixture
async def vts() -> AsyncIterator[tuple[FakeVTubeStudio, str]]:
    async with running_vtube_studio() as running:
        yield running


@pytest_asyncio.fixture
async def live_link() -> AsyncIterator[tuple[LiveLinkReceiver, int]]:
    async with running_live_link() as running:
        yield running
