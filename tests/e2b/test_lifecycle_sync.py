"""Control plane through the sync SDK: create, info, list, timeout, kill."""

import datetime

import pytest
from e2b import NotFoundException, Sandbox, SandboxQuery, SandboxState, TimeoutException

from conftest import TEMPLATE


def test_create_info_list_timeout_kill(run_id):
    s = Sandbox.create(
        TEMPLATE,
        timeout=120,
        metadata={"run": run_id, "case": "lifecycle"},
        envs={"GREETING": "hello from create"},
    )
    try:
        assert s.is_running()
        info = s.get_info()
        assert info.sandbox_id == s.sandbox_id
        assert info.metadata["case"] == "lifecycle"
        assert info.state == SandboxState.RUNNING
        assert s.commands.run("echo $GREETING").stdout == "hello from create\n"

        # The listing filters by metadata and state.
        found = Sandbox.list(
            query=SandboxQuery(metadata={"run": run_id, "case": "lifecycle"})
        ).next_items()
        assert [x.sandbox_id for x in found] == [s.sandbox_id]
        assert (
            Sandbox.list(
                query=SandboxQuery(
                    metadata={"run": run_id, "case": "lifecycle"},
                    state=[SandboxState.PAUSED],
                )
            ).next_items()
            == []
        )

        # A new timeout moves the end, both ways.
        s.set_timeout(3600)
        end = s.get_info().end_at
        now = datetime.datetime.now(datetime.timezone.utc)
        assert datetime.timedelta(minutes=55) < end - now <= datetime.timedelta(hours=1)
        s.set_timeout(60)
        assert s.get_info().end_at - now <= datetime.timedelta(seconds=61)

        # Connecting again by id reaches the same machine.
        again = Sandbox.connect(s.sandbox_id)
        assert again.commands.run("echo $GREETING").stdout == "hello from create\n"
    finally:
        s.kill()
    assert not s.is_running()
    with pytest.raises(NotFoundException):
        Sandbox.get_info(s.sandbox_id)
    # Killing twice is not an error for the SDK: it reports False.
    assert Sandbox.kill(s.sandbox_id) is False


def test_unknown_sandbox_is_not_found():
    with pytest.raises(NotFoundException):
        Sandbox.connect("sbx_does_not_exist_0000")


def test_metrics_report_memory(sbx):
    metrics = sbx.get_metrics()
    assert metrics, "at least one sample"
    assert metrics[-1].mem_used > 0
    assert metrics[-1].cpu_count >= 1


def test_metrics_honour_start_and_end(sbx):
    now = datetime.datetime.now(datetime.timezone.utc)
    hour = datetime.timedelta(hours=1)
    assert len(sbx.get_metrics(start=now - hour, end=now)) == 1
    # An interval that ended before the sandbox existed has no samples.
    assert sbx.get_metrics(start=now - 2 * hour, end=now - hour) == []


def test_templates_and_refreshes_over_plain_http(sbx):
    """Endpoints the Python SDK has no call for, as E2B's API defines them."""
    import os

    import httpx

    api = httpx.Client(
        base_url=os.environ["E2B_API_URL"], headers={"X-API-KEY": os.environ["E2B_API_KEY"]}
    )
    templates = api.get("/templates")
    assert templates.status_code == 200
    assert "base" in [t["templateID"] for t in templates.json()]

    before = sbx.get_info().end_at
    r = api.post(f"/sandboxes/{sbx.sandbox_id}/refreshes", json={"duration": 3000})
    assert r.status_code == 204
    assert sbx.get_info().end_at > before
    # A refresh never shortens.
    assert api.post(f"/sandboxes/{sbx.sandbox_id}/refreshes", json={"duration": 1}).status_code == 204
    assert sbx.get_info().end_at > before



def test_network_settings_become_the_sandbox_policy(run_id):
    """E2B's egress settings, at create and live, as Warren's policy shows them."""
    import os

    import httpx

    api = httpx.Client(
        base_url=os.environ["E2B_API_URL"], headers={"X-API-KEY": os.environ["E2B_API_KEY"]}
    )

    def policy(s):
        r = api.get(f"/v1/sandboxes/{s.sandbox_id}")
        assert r.status_code == 200, r.text
        return r.json()["network"]

    s = Sandbox.create(
        TEMPLATE,
        timeout=120,
        metadata={"run": run_id},
        network={"deny_out": ["0.0.0.0/0"], "allow_out": ["api.github.com", "198.51.100.0/24"]},
    )
    try:
        p = policy(s)
        assert p["internet"] == "deny"
        assert p["allow"] == ["api.github.com", "198.51.100.0/24"]
        s.update_network({"deny_out": ["203.0.113.0/24"]})
        p = policy(s)
        assert (p["internet"], p["allow"], p["deny"]) == ("allow", [], ["203.0.113.0/24"])
        s.update_network({"deny_out": ["0.0.0.0/0"]})
        assert policy(s)["internet"] == "deny"
    finally:
        s.kill()

    closed = Sandbox.create(TEMPLATE, timeout=60, metadata={"run": run_id}, allow_internet_access=False)
    try:
        assert policy(closed)["internet"] == "deny"
    finally:
        closed.kill()


def test_a_command_of_a_killed_sandbox_ends_saying_so(run_id):
    s = Sandbox.create(TEMPLATE, timeout=120, metadata={"run": run_id, "case": "killed-run"})
    cmd = s.commands.run("sleep 60", background=True)
    s.kill()
    with pytest.raises(TimeoutException) as e:
        cmd.wait()
    assert "sandbox was killed or reached its end of life" in str(e.value)


def test_a_command_of_a_paused_sandbox_ends_saying_so(run_id):
    s = Sandbox.create(TEMPLATE, timeout=120, metadata={"run": run_id, "case": "paused-run"})
    try:
        cmd = s.commands.run("sleep 60", background=True)
        s.pause()
        with pytest.raises(TimeoutException) as e:
            cmd.wait()
        assert "the sandbox was paused" in str(e.value)
    finally:
        s.kill()
