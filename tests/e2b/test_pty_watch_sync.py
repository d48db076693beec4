"""PTY and directory watching through the sync SDK."""

import time

import pytest
from e2b import CommandExitException, FilesystemEventType, PtySize


def test_pty_input_resize_and_exit(sbx):
    h = sbx.pty.create(PtySize(rows=24, cols=80))
    sbx.pty.resize(h.pid, PtySize(rows=30, cols=100))
    sbx.pty.send_stdin(h.pid, b"stty size; echo mark-$((40+2)); exit\n")
    out = bytearray()
    result = h.wait(on_pty=out.extend)
    assert result.exit_code == 0
    text = out.decode(errors="replace")
    assert "30 100" in text
    assert "mark-42" in text


def test_pty_kill(sbx):
    h = sbx.pty.create(PtySize(rows=24, cols=80))
    assert sbx.pty.kill(h.pid)
    with pytest.raises(CommandExitException):
        h.wait()


def test_watch_dir_reports_changes(sbx):
    sbx.files.make_dir("/home/user/watched")
    w = sbx.files.watch_dir("/home/user/watched")
    try:
        sbx.files.write("/home/user/watched/new.txt", "x")
        sbx.files.remove("/home/user/watched/new.txt")
        seen = set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not {
            FilesystemEventType.CREATE,
            FilesystemEventType.REMOVE,
        } <= seen:
            seen |= {e.type for e in w.get_new_events() if e.name == "new.txt"}
            time.sleep(0.1)
        assert FilesystemEventType.CREATE in seen
        assert FilesystemEventType.REMOVE in seen
    finally:
        w.stop()


def _events_until(w, want, seconds=10):
    """The events of `w` once `want` of them arrived (or time ran out)."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(seen) < want:
        seen += w.get_new_events()
        time.sleep(0.1)
    return [(e.name, e.type) for e in seen]


def test_uploads_look_to_watchers_like_envds_in_place_writes(sbx):
    sbx.files.make_dir("/home/user/uploads-watched")
    sbx.files.write("/home/user/uploads-watched/old.txt", "before")
    w = sbx.files.watch_dir("/home/user/uploads-watched")
    try:
        sbx.files.write("/home/user/uploads-watched/new.txt", "fresh")
        created = _events_until(w, 3)
        assert created == [
            ("new.txt", FilesystemEventType.CREATE),
            ("new.txt", FilesystemEventType.CHMOD),
            ("new.txt", FilesystemEventType.WRITE),
        ], created
        sbx.files.write("/home/user/uploads-watched/old.txt", "after")
        rewritten = _events_until(w, 2)
        assert ("old.txt", FilesystemEventType.WRITE) in rewritten, rewritten
        assert ("old.txt", FilesystemEventType.CREATE) not in rewritten, rewritten
        # A plain rename inside the sandbox still reads as one.
        sbx.commands.run("mv /home/user/uploads-watched/old.txt /home/user/uploads-watched/moved.txt")
        moved = _events_until(w, 2)
        assert ("moved.txt", FilesystemEventType.CREATE) in moved, moved
        assert ("old.txt", FilesystemEventType.RENAME) in moved, moved
        everything = created + rewritten + moved
        assert not [n for n, _ in everything if ".upload-" in n], everything
    finally:
        w.stop()
