"""Pause, connect (resume), fork and snapshots through the sync SDK."""

import time

import pytest
from e2b import NotFoundException, Sandbox, SandboxQuery, SandboxState

from conftest import COUNTER, TEMPLATE, count, wait_paused


def ids(query):
    return [x.sandbox_id for x in Sandbox.list(query=query).next_items()]


def test_pause_then_connect_resumes_processes_and_files(run_id):
    meta = {"run": run_id, "case": "pause"}
    s = Sandbox.create(TEMPLATE, timeout=300, metadata=meta)
    try:
        counter = s.commands.run(COUNTER, background=True)
        s.files.write("/home/user/kept.txt", "before the pause")
        time.sleep(0.5)
        assert s.pause() is True
        # Pausing twice: the API answers 409, which the SDK reports as False.
        assert s.pause() is False
        assert s.get_info().state == SandboxState.PAUSED
        assert not s.is_running()
        assert ids(SandboxQuery(metadata=meta, state=[SandboxState.PAUSED])) == [s.sandbox_id]
        assert ids(SandboxQuery(metadata=meta, state=[SandboxState.RUNNING])) == []

        back = Sandbox.connect(s.sandbox_id, timeout=300)
        assert back.sandbox_id == s.sandbox_id
        assert back.get_info().state == SandboxState.RUNNING
        assert back.files.read("/home/user/kept.txt") == "before the pause"
        assert counter.pid in [p.pid for p in back.commands.list()]
        seen = count(back)
        deadline = time.monotonic() + 10
        while count(back) <= seen and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count(back) > seen, "the counter goes on after the resume"
        # Its stream ended at the pause; the process can be reattached.
        assert back.commands.connect(counter.pid).kill() is True
        # The handle from before the pause still reaches the same sandbox.
        assert s.commands.run("cat /home/user/kept.txt").stdout == "before the pause"
        assert ids(SandboxQuery(metadata=meta, state=[SandboxState.PAUSED])) == []
    finally:
        s.kill()
    with pytest.raises(NotFoundException):
        Sandbox.pause(s.sandbox_id)


def test_fork_branches_diverge_and_snapshots_start_sandboxes(run_id):
    parent = Sandbox.create(TEMPLATE, timeout=300, metadata={"run": run_id, "case": "fork"})
    made = [parent]
    try:
        parent.files.write("/home/user/state.txt", "parent")
        forks = parent.fork(count=2, timeout=120)
        assert len(forks) == 2 and all(isinstance(f, Sandbox) for f in forks)
        made += forks
        assert len({parent.sandbox_id, *(f.sandbox_id for f in forks)}) == 3
        for i, f in enumerate(forks):
            assert f.files.read("/home/user/state.txt") == "parent"
            f.files.write("/home/user/state.txt", f"branch {i}")
        assert parent.files.read("/home/user/state.txt") == "parent"
        assert [f.files.read("/home/user/state.txt") for f in forks] == ["branch 0", "branch 1"]
        assert forks[0].get_info().metadata["case"] == "fork"

        name = f"snap-{run_id}"
        snap = parent.create_snapshot(name)
        assert snap.names == [name]
        parent.files.write("/home/user/state.txt", "after the snapshot")
        listed = [x.snapshot_id for x in parent.list_snapshots().next_items()]
        assert listed == [snap.snapshot_id]
        assert [x.snapshot_id for x in Sandbox.list_snapshots(name=name).next_items()] == [
            snap.snapshot_id
        ]

        # A sandbox created from the snapshot (by id, or by name) has its files.
        by_id = Sandbox.create(snap.snapshot_id, timeout=120)
        made.append(by_id)
        assert by_id.files.read("/home/user/state.txt") == "parent"
        by_name = Sandbox.create(name, timeout=120)
        made.append(by_name)
        assert by_name.commands.run("cat /home/user/state.txt").stdout == "parent"

        assert Sandbox.delete_snapshot(snap.snapshot_id) is True
        assert Sandbox.delete_snapshot(snap.snapshot_id) is False
        assert parent.list_snapshots().next_items() == []
    finally:
        for s in made:
            s.kill()


def test_a_timeout_of_zero_ends_it_now_by_its_lifecycle(run_id):
    """`set_timeout(0)` ends the sandbox at once: one made to pause at its
    end is paused with its processes (their memory restored, not a cold
    boot), one made to die is killed."""
    pausing = Sandbox.create(
        TEMPLATE,
        timeout=120,
        metadata={"run": run_id, "case": "timeout-zero"},
        lifecycle={"on_timeout": "pause"},
    )
    dying = Sandbox.create(
        TEMPLATE, timeout=120, metadata={"run": run_id, "case": "timeout-zero"}
    )
    try:
        counter = pausing.commands.run(COUNTER, background=True)
        pausing.set_timeout(0)
        dying.set_timeout(0)
        deadline = time.monotonic() + 30
        while (pausing.is_running() or dying.is_running()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pausing.get_info().state == SandboxState.PAUSED
        with pytest.raises(NotFoundException):
            dying.get_info()
        back = Sandbox.connect(pausing.sandbox_id, timeout=120)
        # The same process, not a cold boot running the start command again.
        assert counter.pid in [p.pid for p in back.commands.list()]
        before = count(back)
        deadline = time.monotonic() + 10
        while count(back) <= before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count(back) > before, "the counter did not survive"
    finally:
        pausing.kill()
        dying.kill()


def test_auto_pause_pauses_at_the_timeout_and_connect_resumes(run_id):
    s = Sandbox.create(
        TEMPLATE,
        timeout=2,
        metadata={"run": run_id, "case": "autopause"},
        lifecycle={"on_timeout": "pause"},
    )
    try:
        assert s.get_info().lifecycle == {"on_timeout": "pause", "auto_resume": False}
        s.files.write("/home/user/auto.txt", "kept")
        wait_paused(s)
        back = Sandbox.connect(s.sandbox_id, timeout=120)
        assert back.files.read("/home/user/auto.txt") == "kept"
    finally:
        s.kill()
