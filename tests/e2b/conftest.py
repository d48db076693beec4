"""Shared fixtures for the E2B SDK suite.

The suite talks to Warren only through the official `e2b` SDK, configured by
the environment the Rust driver sets: E2B_API_URL, E2B_SANDBOX_URL,
E2B_VOLUME_API_URL and E2B_API_KEY (nothing else). One sandbox per module is shared by the checks
that only run commands or touch files in it; lifecycle checks make their own.
"""

import os
import time
import uuid

import pytest
import pytest_asyncio
from e2b import AsyncSandbox, Sandbox, SandboxState

TEMPLATE = os.environ.get("E2B_TEST_TEMPLATE", "base")

# A background process that keeps counting while it runs: it survives a
# pause only if the whole sandbox (memory and processes) does.
COUNTER = "i=0; while true; do echo $i > /tmp/count; i=$((i+1)); sleep 0.1; done"


def count(s):
    """The counter's last number. The counter truncates its file before each
    write, so an empty read is retried rather than taken for zero."""
    for _ in range(50):
        text = s.files.read("/tmp/count").strip()
        if text:
            return int(text)
        time.sleep(0.02)
    return 0


def wait_paused(s, seconds=30):
    """Waits up to `seconds` for `s` to be paused (by its lifecycle), then
    checks it is."""
    deadline = time.monotonic() + seconds
    while s.get_info().state != SandboxState.PAUSED and time.monotonic() < deadline:
        time.sleep(0.5)
    assert s.get_info().state == SandboxState.PAUSED, "paused, not killed, at its end"


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
