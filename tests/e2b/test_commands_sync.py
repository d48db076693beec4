"""`commands` through the sync SDK, in one shared sandbox."""

import pytest
from e2b import CommandExitException


def test_stdout_stderr_and_exit_codes(sbx):
    r = sbx.commands.run("echo out; echo err >&2")
    assert (r.stdout, r.stderr, r.exit_code) == ("out\n", "err\n", 0)
    with pytest.raises(CommandExitException) as e:
        sbx.commands.run("echo bad >&2; exit 3")
    assert e.value.exit_code == 3
    assert e.value.stderr == "bad\n"


def test_env_cwd_and_user(sbx):
    r = sbx.commands.run("echo $A-$B; pwd", envs={"A": "1", "B": "two"}, cwd="/tmp")
    assert r.stdout == "1-two\n/tmp\n"
    assert sbx.commands.run("whoami").stdout == "user\n"
    assert sbx.commands.run("whoami", user="root").stdout == "root\n"
    assert sbx.commands.run("pwd").stdout == "/home/user\n"


def test_sudo_runs_as_root_without_the_callers_variables(sbx):
    """As in E2B's own `test_bash_command_scoped_env_vars`: `user` has
    passwordless sudo, and sudo resets the environment."""
    r = sbx.commands.run('sudo -n whoami; sudo echo "[$FOO]"', envs={"FOO": "bar"})
    assert r.stdout == "root\n[bar]\n"
    r = sbx.commands.run("sudo sh -c 'echo \"[$FOO]\"'", envs={"FOO": "bar"})
    assert r.stdout == "[]\n"
    with pytest.raises(CommandExitException) as e:
        sbx.commands.run("sudo sh -c 'exit 4'")
    assert e.value.exit_code == 4


def test_streaming_callbacks(sbx):
    seen = []
    sbx.commands.run("for i in 1 2 3; do echo $i; done", on_stdout=seen.append)
    assert "".join(seen) == "1\n2\n3\n"


def test_background_wait_stdin_list_connect_kill(sbx):
    # Background with wait.
    h = sbx.commands.run("sleep 0.3; echo done", background=True)
    assert h.wait().stdout == "done\n"

    # stdin to a running process; a second handle joins it by pid.
    cat = sbx.commands.run("cat", background=True, stdin=True)
    sbx.commands.send_stdin(cat.pid, "line one\n")
    assert cat.pid in [p.pid for p in sbx.commands.list()]
    joined = sbx.commands.connect(cat.pid)
    sbx.commands.send_stdin(cat.pid, "line two\n")
    sbx.commands.close_stdin(cat.pid)
    assert cat.wait().stdout == "line one\nline two\n"
    assert "line two" in joined.wait().stdout

    # Kill by pid.
    sleeper = sbx.commands.run("sleep 600", background=True)
    assert sbx.commands.kill(sleeper.pid)
    with pytest.raises(CommandExitException):
        sleeper.wait()
    assert not sbx.commands.kill(sleeper.pid)

    # Kill through the handle.
    sleeper = sbx.commands.run("sleep 600", background=True)
    sleeper.kill()
    with pytest.raises(CommandExitException):
        sleeper.wait()
    assert sleeper.pid not in [p.pid for p in sbx.commands.list()]


def test_a_command_past_its_timeout_is_ended_in_the_sandbox(sbx):
    import time

    from e2b import TimeoutException

    with pytest.raises(TimeoutException):
        sbx.commands.run("sleep 30; echo late", timeout=2)

    def still_running():
        return [p for p in sbx.commands.list() if "echo late" in " ".join(p.args)]

    # The agent ends it at its deadline, as envd does (not the client's
    # giving up alone): it leaves the process list within moments.
    for _ in range(100):
        if not still_running():
            break
        time.sleep(0.1)
    assert not still_running()
