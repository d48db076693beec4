"""The async SDK: lifecycle, pagination, commands, files, PTY, watching, pause,
connect and fork."""

import asyncio

import pytest
from e2b import (
    AsyncSandbox,
    CommandExitException,
    FilesystemEventType,
    PtySize,
    SandboxQuery,
    SandboxState,
)

from conftest import TEMPLATE

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_pagination_over_concurrent_creates(run_id):
    meta = {"run": run_id, "case": "pages"}
    made = await asyncio.gather(
        *(AsyncSandbox.create(TEMPLATE, timeout=120, metadata=meta) for _ in range(3))
    )
    try:
        pages = AsyncSandbox.list(query=SandboxQuery(metadata=meta), limit=2)
        first = await pages.next_items()
        assert len(first) == 2 and pages.has_next
        second = await pages.next_items()
        assert len(second) == 1 and not pages.has_next
        assert {s.sandbox_id for s in first + second} == {s.sandbox_id for s in made}
    finally:
        await asyncio.gather(*(s.kill() for s in made))
    assert await AsyncSandbox.list(query=SandboxQuery(metadata=meta)).next_items() == []


async def test_commands(asbx):
    r = await asbx.commands.run("echo $X; echo e >&2", envs={"X": "async"})
    assert (r.stdout, r.stderr) == ("async\n", "e\n")
    with pytest.raises(CommandExitException) as e:
        await asbx.commands.run("exit 7")
    assert e.value.exit_code == 7
    seen = []
    h = await asbx.commands.run(
        "read line; echo got-$line", background=True, stdin=True, on_stdout=seen.append
    )
    await asbx.commands.send_stdin(h.pid, "ping\n")
    assert (await h.wait()).stdout == "got-ping\n"
    assert "".join(seen) == "got-ping\n"
    sleeper = await asbx.commands.run("sleep 600", background=True)
    assert sleeper.pid in [p.pid for p in await asbx.commands.list()]
    await sleeper.kill()
    with pytest.raises(CommandExitException):
        await sleeper.wait()


async def test_files(asbx):
    await asbx.files.write("/home/user/a.txt", "async text")
    assert await asbx.files.read("/home/user/a.txt") == "async text"
    assert bytes(await asbx.files.read("/home/user/a.txt", format="bytes")) == b"async text"
    assert await asbx.files.exists("/home/user/a.txt")
    await asbx.files.make_dir("/home/user/ad")
    await asbx.files.rename("/home/user/a.txt", "/home/user/ad/b.txt")
    assert [e.name for e in await asbx.files.list("/home/user/ad")] == ["b.txt"]
    await asbx.files.remove("/home/user/ad")
    assert not await asbx.files.exists("/home/user/ad")


async def test_pty(asbx):
    out = bytearray()
    h = await asbx.pty.create(PtySize(rows=24, cols=80), on_data=out.extend)
    await asbx.pty.resize(h.pid, PtySize(rows=40, cols=120))
    await asbx.pty.send_stdin(h.pid, b"stty size; exit\n")
    assert (await h.wait()).exit_code == 0
    assert "40 120" in out.decode(errors="replace")


async def test_watch_dir(asbx):
    await asbx.files.make_dir("/home/user/aw")
    events = []
    got = asyncio.Event()

    def on_event(e):
        events.append(e)
        if e.name == "f.txt" and e.type == FilesystemEventType.CREATE:
            got.set()

    w = await asbx.files.watch_dir("/home/user/aw", on_event=on_event)
    try:
        await asbx.files.write("/home/user/aw/f.txt", "x")
        await asyncio.wait_for(got.wait(), timeout=10)
    finally:
        await w.stop()
    assert any(e.name == "f.txt" for e in events)


async def test_pause_connect_and_fork(run_id):
    meta = {"run": run_id, "case": "apause"}
    s = await AsyncSandbox.create(TEMPLATE, timeout=300, metadata=meta)
    made = [s]
    try:
        sleeper = await s.commands.run("sleep 600", background=True)
        await s.files.write("/home/user/ap.txt", "async pause")
        assert await s.pause() is True
        assert await s.pause() is False
        paused = AsyncSandbox.list(query=SandboxQuery(metadata=meta, state=[SandboxState.PAUSED]))
        assert [x.sandbox_id for x in await paused.next_items()] == [s.sandbox_id]

        back = await AsyncSandbox.connect(s.sandbox_id)
        assert await back.files.read("/home/user/ap.txt") == "async pause"
        assert sleeper.pid in [p.pid for p in await back.commands.list()]

        [branch] = await back.fork()
        made.append(branch)
        await branch.files.write("/home/user/ap.txt", "branch")
        assert await back.files.read("/home/user/ap.txt") == "async pause"
        assert await branch.files.read("/home/user/ap.txt") == "branch"
    finally:
        await asyncio.gather(*(x.kill() for x in made))
