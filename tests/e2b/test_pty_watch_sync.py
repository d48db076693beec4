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
