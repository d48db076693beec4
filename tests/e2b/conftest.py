"""Shared fixtures for the E2B SDK suite.

The suite talks to Warren only through the official `e2b` SDK, configured by
the environment the Rust driver sets: E2B_API_URL, E2B_SANDBOX_URL,
E2B_VOLUME_API_URL and E2B_API_KEY (nothing else). One sandbox per module is shared by the checks
that only run commands or touch files in it; lifecycle checks make their own.
"""

import os
import uuid

import pytest
import pytest_asyncio
from e2b import AsyncSandbox, Sandbox

TEMPLATE = os.environ.get("E2B_TEST_TEMPLATE", "base")


@pytest.fixture(scope="session")
def run_id():
    """Tags every sandbox of this run so listings can be filtered to it."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def sbx(run_id):
    s = Sandbox.create(TEMPLATE, timeout=600, metadata={"run": run_id, "shared": "sync"})
    yield s
    s.kill()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def asbx(run_id):
    s = await AsyncSandbox.create(
        TEMPLATE, timeout=600, metadata={"run": run_id, "shared": "async"}
    )
    yield s
    await s.kill()
