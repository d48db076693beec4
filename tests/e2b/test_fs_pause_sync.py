"""Filesystem-only pauses through the sync SDK: `pause(mode="filesystem")`
and a timeout's auto-pause with `mode: "filesystem"` keep the files and end
every process; `connect` boots the sandbox again."""

import time

from e2b import Sandbox, SandboxState

from conftest import COUNTER, TEMPLATE, count, wait_paused


def assert_stopped(s, pid):
    """`pid` is not among the sandbox's processes, and nothing counts."""
    assert pid not in [p.pid for p in s.commands.list()]
    before = count(s)
    time.sleep(0.5)
    assert count(s) == before, "the counter goes on after a filesystem-only pause"


def test_filesystem_pause_keeps_files_and_connect_boots_it_again(run_id):
    s = Sandbox.create(TEMPLATE, timeout=300, metadata={"run": run_id, "case": "fs-pause"})
    try:
        counter = s.commands.run(COUNTER, background=True)
        s.files.write("/home/user/kept.txt", "before the pause")
        time.sleep(0.5)
        assert s.pause(mode="filesystem") is True
        assert s.get_info().state == SandboxState.PAUSED

        back = Sandbox.connect(s.sandbox_id, timeout=300)
        assert back.sandbox_id == s.sandbox_id
        assert back.get_info().state == SandboxState.RUNNING
        assert back.files.read("/home/user/kept.txt") == "before the pause"
        assert_stopped(back, counter.pid)
        # The deprecated spelling asks for the same pause.
        assert back.pause(keep_memory=False) is True
        again = Sandbox.connect(s.sandbox_id, timeout=300, on_resume="reboot")
        assert again.files.read("/home/user/kept.txt") == "before the pause"
    finally:
        s.kill()


def test_filesystem_auto_pause_at_the_timeout_and_connect_boots_it_again(run_id):
    s = Sandbox.create(
        TEMPLATE,
        timeout=3,
        metadata={"run": run_id, "case": "fs-autopause"},
        lifecycle={"on_timeout": {"action": "pause", "mode": "filesystem"}},
    )
    try:
        assert s.get_info().lifecycle == {"on_timeout": "pause", "auto_resume": False}
        counter = s.commands.run(COUNTER, background=True)
        s.files.write("/home/user/auto.txt", "kept")
        wait_paused(s)
        back = Sandbox.connect(s.sandbox_id, timeout=120)
        assert back.files.read("/home/user/auto.txt") == "kept"
        assert_stopped(back, counter.pid)
    finally:
        s.kill()
