"""The core flow, written against the API both SDK generations share; the
driver runs this file alone with the older SDK (2.45.x, v1 create and
connect endpoints) as well as with the current one."""

import pytest
from e2b import CommandExitException, NotFoundException, Sandbox, SandboxQuery

from conftest import TEMPLATE


def test_core_flow(run_id):
    meta = {"run": run_id, "case": "core"}
    s = Sandbox.create(TEMPLATE, timeout=120, metadata=meta, envs={"WHO": "core"})
    try:
        assert s.get_info().metadata["case"] == "core"
        listed = Sandbox.list(query=SandboxQuery(metadata=meta)).next_items()
        assert [x.sandbox_id for x in listed] == [s.sandbox_id]

        r = s.commands.run("echo $WHO; echo err >&2")
        assert (r.stdout, r.stderr, r.exit_code) == ("core\n", "err\n", 0)
        with pytest.raises(CommandExitException) as e:
            s.commands.run("exit 5")
        assert e.value.exit_code == 5
        h = s.commands.run("sleep 0.2; echo later", background=True)
        assert h.wait().stdout == "later\n"

        s.files.write("/home/user/core.txt", "core file")
        assert s.files.read("/home/user/core.txt") == "core file"
        assert [e.name for e in s.files.list("/home/user") if e.name == "core.txt"]

        s.set_timeout(300)
        assert Sandbox.connect(s.sandbox_id).commands.run("echo again").stdout == "again\n"

        # Pause, then connect resumes it with its files and processes.
        sleeper = s.commands.run("sleep 600", background=True)
        assert s.pause() is True
        back = Sandbox.connect(s.sandbox_id)
        assert back.files.read("/home/user/core.txt") == "core file"
        assert sleeper.pid in [p.pid for p in back.commands.list()]
    finally:
        s.kill()
    with pytest.raises(NotFoundException):
        Sandbox.get_info(s.sandbox_id)
