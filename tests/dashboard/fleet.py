"""The dashboard's fleet and sandbox pages in Debian's Chromium, driven by Playwright,
against a real daemon (see crates/e2e/tests/integration/sandbox_dashboard.rs).

Environment: WARREN_URL, WARREN_ADMIN_KEY, WARREN_VIEWER_KEY (a viewer of
the admin's team), WARREN_DB (the daemon's SQLite store, edited to tamper
with an audit entry), DASHBOARD_ARTIFACTS (a directory for screenshots and
accessibility reports), AXE_JS (axe-core's axe.min.js), CHROMIUM (default
/usr/bin/chromium). No browser is downloaded.

The pages under test run under the daemon's Content-Security-Policy, and
must not break it. axe-core is injected into a page of its own context,
which lets it past that policy; it must find no serious or critical
violation on the login page or the fleet.

Every wait is for something to appear or go, bounded only so that a broken
page fails instead of hanging; nothing is timed.
"""

import base64
import json
import os
import re
import sqlite3
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

URL = os.environ["WARREN_URL"].rstrip("/")
ADMIN = os.environ["WARREN_ADMIN_KEY"]
VIEWER = os.environ["WARREN_VIEWER_KEY"]
DB = os.environ["WARREN_DB"]
ARTIFACTS = Path(os.environ["DASHBOARD_ARTIFACTS"])
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = Path(os.environ["AXE_JS"])
# A bound on each wait, in milliseconds: a sandbox starts in seconds.
WAIT = 60_000


def api(method, path, key, body=None):
    """Calls the API with a key; answers (status, parsed body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text else None


def exec_stdout(sid, argv):
    """Runs argv in the sandbox through the API; answers its stdout."""
    events = exec_events(sid, argv)
    out = b"".join(base64.b64decode(e["data"]) for e in events if e["type"] == "stdout")
    return out.decode()


def exec_events(sid, argv):
    """Runs argv in the sandbox through the API; answers its events."""
    req = urllib.request.Request(
        f"{URL}/v1/sandboxes/{sid}/exec",
        data=json.dumps({"cmd": argv}).encode(),
        method="POST",
    )
    req.add_header("Authorization", f"Bearer {ADMIN}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=400) as resp:
        return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def check_sandbox_page(page, sid):
    """A sandbox's page: facts, a terminal that runs a command, an upload
    read back inside, a download, and the timeline."""
    page.locator(f'tr[data-id="{sid}"] td.id a').click()
    expect(page.locator("#sandbox-id")).to_have_text(sid, timeout=WAIT)
    expect(page.locator("#sandbox-state")).to_have_text("running", timeout=WAIT)

    page.get_by_role("button", name="Open terminal").click()
    expect(page.locator("#terminal-status")).to_have_text("connected", timeout=WAIT)
    terminal = page.get_by_role("application", name=re.compile("Terminal"))
    expect(terminal).to_be_focused()
    # The shell's prompt first, then the command typed key by key.
    expect(terminal).to_contain_text("$", timeout=WAIT)
    page.keyboard.type("echo hi-from-the-$((6*7))")
    page.keyboard.press("Enter")
    answer = terminal.locator(".term-row").filter(has_text=re.compile(r"^hi-from-the-42\s*$"))
    expect(answer).to_have_count(1, timeout=WAIT)
    shot(page, "7-sandbox-terminal")
    page.get_by_role("button", name="Close terminal").click()
    expect(terminal).to_be_hidden()

    # The session was recorded, and the page plays it back.
    recorded = page.locator("#recordings tbody tr")
    expect(recorded).to_have_count(1, timeout=WAIT)
    recorded.get_by_role("button", name=re.compile("^Replay")).click()
    replay = page.get_by_role("img", name=re.compile("Replay of a recorded"))
    replayed = replay.locator(".term-row").filter(has_text=re.compile(r"^hi-from-the-42\s*$"))
    expect(replayed).to_have_count(1, timeout=WAIT)
    expect(page.locator("#replay-status")).to_have_text("replay ended", timeout=WAIT)
    shot(page, "7b-sandbox-replay")

    # A command started through the API shows in the processes, and the
    # page ends it: its exec stream ends killed.
    ended = {}
    runner = threading.Thread(
        target=lambda: ended.update(out=exec_events(sid, ["sleep", "300"])), daemon=True
    )
    runner.start()
    sleeper = page.locator("#processes tbody tr").filter(has_text="sleep 300")
    for _ in range(30):
        page.locator("#processes-refresh").click()
        if sleeper.count() == 1:
            break
        page.wait_for_timeout(500)
    expect(sleeper).to_have_count(1)
    pid = sleeper.get_attribute("data-pid")
    page.get_by_role("button", name=f"End process {pid}").click()
    runner.join(timeout=60)
    exit_event = [e for e in ended["out"] if e["type"] == "exit"][0]
    assert exit_event.get("signal") == "killed", ended["out"]
    expect(sleeper).to_have_count(0, timeout=WAIT)

    # Use over time: the meter's minutes drawn as charts.
    cpu = page.locator("#chart-cpu")
    for _ in range(30):
        page.locator("#charts-refresh").click()
        page.wait_for_timeout(500)
        if cpu.locator("polyline").count() == 1 and not page.locator("#charts-status").text_content():
            break
    expect(cpu.locator("figcaption")).to_contain_text(re.compile(r"CPU: [0-9.]+ cores now"))
    expect(page.locator("#chart-memory polyline")).to_have_count(2)
    expect(page.locator("#charts-status")).to_have_text("")

    # Network: the policy shown and changed live from the page; a refused
    # lookup among the events; a port's link reaching a server inside.
    expect(page.locator("#network-policy")).to_contain_text("deny", timeout=WAIT)
    page.get_by_label("Allow (one domain or CIDR a line)").fill("example.com")
    page.get_by_label("Public ports (comma-separated)").fill("8000")
    page.get_by_role("button", name="Apply policy").click()
    expect(page.locator("#network-status")).to_have_text("policy applied", timeout=WAIT)
    status, detail = api("GET", f"/v1/sandboxes/{sid}", ADMIN)
    policy = detail["network"]
    assert status == 200 and policy["allow"] == ["example.com"] and policy["public_ports"] == [8000], policy
    exec_stdout(sid, ["sh", "-c", "getent hosts refused.example.org || true"])
    refused = page.locator("#network-events tr[data-verdict='deny']").filter(
        has_text="refused.example.org"
    )
    for _ in range(30):
        page.locator("#network-refresh").click()
        if refused.count() > 0:
            break
        page.wait_for_timeout(500)
    expect(refused.first).to_be_visible()
    exec_stdout(
        sid,
        ["sh", "-c", "(python3 -m http.server 8000 >/dev/null 2>&1 &); "
         "for i in $(seq 50); do curl -sf localhost:8000/ >/dev/null && exit 0; sleep 0.1; done"],
    )
    page.get_by_label("Open port").fill("8000")
    page.get_by_role("button", name="Get link").click()
    link = page.locator("#port-link")
    expect(link).to_have_text("port 8000 (public)")
    assert page.request.get(link.get_attribute("href")).status == 200
    shot(page, "7c-sandbox-network")

    content = "written from the dashboard\n"
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "note.txt", "mimeType": "text/plain", "buffer": content.encode()}]
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#timeline li[data-kind='file_written']")).to_have_count(1, timeout=WAIT)
    assert exec_stdout(sid, ["cat", "/home/user/note.txt"]) == content
    assert not page.locator("#notice").is_visible(), page.locator("#notice").text_content()

    page.get_by_label("Download", exact=True).fill("/home/user/note.txt")
    with page.expect_download(timeout=WAIT) as download:
        page.get_by_role("button", name="Download", exact=True).click()
    assert Path(download.value.path()).read_text() == content
    assert download.value.suggested_filename == "note.txt"

    # A named snapshot, a file written after it, a fork: the tree shows
    # the snapshot and the branch; a rollback to the snapshot drops the file.
    page.get_by_label("Snapshot name").fill("before-change")
    page.get_by_role("button", name="Take snapshot").click()
    named = page.locator("#lineage li[data-kind='named']")
    expect(named).to_contain_text("before-change", timeout=WAIT)
    exec_stdout(sid, ["touch", "/home/user/after-snapshot"])
    page.get_by_role("button", name="Fork", exact=True).click()
    branch = page.locator("#lineage li[data-kind='fork'] li.branch")
    expect(branch).to_have_count(1, timeout=WAIT)
    bid = branch.get_attribute("data-id")
    expect(branch).to_contain_text("running", timeout=WAIT)
    shot(page, "9-sandbox-lineage")
    page.get_by_role("button", name="Roll back to before-change").click()
    status = page.locator("#lineage-status")
    expect(status).to_have_text("Rollback to before-change: done", timeout=WAIT)
    gone = exec_stdout(sid, ["sh", "-c", "test -e /home/user/after-snapshot && echo kept || echo gone"])
    assert gone == "gone\n", gone
    # The branch is a sandbox of its own, reached from the tree.
    branch.locator("a").click()
    expect(page.locator("#sandbox-id")).to_have_text(bid, timeout=WAIT)
    expect(page.locator("#lineage-parent")).to_contain_text("Started from snapshot")
    api("DELETE", f"/v1/sandboxes/{bid}", ADMIN)
    page.go_back()
    expect(page.locator("#sandbox-id")).to_have_text(sid, timeout=WAIT)

    expect(page.locator("#timeline li[data-kind='created']")).to_have_count(1)
    expect(page.locator("#timeline li[data-kind='command_ended']")).to_have_count(1)
    expect(page.locator("#timeline li[data-kind='terminal']")).not_to_have_count(0)
    shot(page, "8-sandbox-page")
    page.get_by_role("link", name="← Fleet").click()
    expect(page.locator(f'tr[data-id="{sid}"]')).to_be_visible(timeout=WAIT)


def check_audit_page(page, sid):
    """The audit page proves an entry in the browser, and shows an entry
    edited in the daemon's database as changed."""
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible(timeout=WAIT)
    page.get_by_label("Sandbox", exact=True).fill(sid)
    page.get_by_role("button", name="Show").click()
    create = page.locator("#audit-entries tbody tr").filter(
        has=page.locator("td.action", has_text=re.compile("^sandbox.create$"))
    )
    expect(create).to_have_count(1, timeout=WAIT)
    index = int(create.get_attribute("data-index"))
    create.get_by_role("button", name=f"Verify entry {index}").click()
    verdict = create.locator("td.proof")
    expect(verdict).to_contain_text("✓ in the signed log", timeout=WAIT)
    shot(page, "10-audit-verified")

    # Someone with the database edits the entry: the page, which hashes
    # what it is shown, finds it is not the entry the signed tree holds.
    with sqlite3.connect(DB, timeout=30) as db:
        changed = db.execute(
            "UPDATE audit_entries SET target = 'someone-else' WHERE idx = ?", (index,)
        ).rowcount
    assert changed == 1, changed
    page.get_by_role("button", name="Show").click()
    create = page.locator(f'#audit-entries tbody tr[data-index="{index}"]')
    expect(create).to_contain_text("someone-else", timeout=WAIT)
    create.get_by_role("button", name=f"Verify entry {index}").click()
    verdict = create.locator("td.proof")
    expect(verdict).to_contain_text("✗", timeout=WAIT)
    expect(verdict).to_contain_text("it was changed")
    shot(page, "11-audit-tampered")
    page.get_by_role("link", name="Fleet").click()
    expect(page.locator(f'tr[data-id="{sid}"]')).to_be_visible(timeout=WAIT)


def check_usage_page(page):
    """Usage by template with its cost, and keys made and revoked by an
    admin from the page."""
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage and costs")).to_be_visible(timeout=WAIT)
    page.get_by_label("By", exact=True).select_option("template")
    base = page.locator('#usage-groups tbody tr[data-group="base"]')
    # The meter samples every second; a row appears once one has counted.
    for _ in range(30):
        page.get_by_role("button", name="Show").click()
        if base.count() == 1:
            break
        page.wait_for_timeout(1000)
    expect(base).to_have_count(1)
    expect(base.locator("td.cost")).to_contain_text("USD")
    shot(page, "12-usage")

    page.get_by_label("Name", exact=True).fill("made-in-the-page")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#key-secret")
    expect(secret).to_contain_text("wrn_", timeout=WAIT)
    key = re.search(r"(wrn_\S+)$", secret.text_content()).group(1)
    status, me = api("GET", "/v1/whoami", key)
    assert status == 200 and me["role"] == "viewer", (status, me)
    page.get_by_role("button", name="Revoke key made-in-the-page").click()
    row = page.locator("#keys tbody tr").filter(has_text="made-in-the-page")
    expect(row.locator("td.key-state")).to_have_text("revoked", timeout=WAIT)
    status, _ = api("GET", "/v1/whoami", key)
    assert status == 401, status
    page.get_by_role("link", name="Fleet").click()


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(page, key):
    page.goto(URL + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT)
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#live")).to_have_text("live", timeout=WAIT)


def watch_policy(page, violations):
    """Collects the page's Content-Security-Policy violations."""
    page.on(
        "console",
        lambda m: violations.append(m.text)
        if "Content Security Policy" in m.text
        else None,
    )


def check_accessibility(page, name):
    """Runs axe-core on the page; fails on serious or critical findings."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ")),
            }));
        }"""
    )
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(found, indent=2))
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not bad, f"accessibility of {name}: {bad}"


def fetch_status(page, method, path, csrf):
    """`method path` from the page with its cookie; with the CSRF token
    unless `csrf` is None. Answers [status, body]."""
    return page.evaluate(
        """async ([method, path, csrf]) => {
            const headers = {"Content-Type": "application/json"};
            if (csrf !== null) headers["X-CSRF-Token"] = csrf;
            const body = method === "POST" ? "{}" : undefined;
            const r = await fetch(path, {method, headers, body});
            const text = await r.text();
            return [r.status, text ? JSON.parse(text) : null];
        }""",
        [method, path, csrf],
    )


def csrf_of(page):
    """The session token the dashboard keeps in its tab."""
    return page.evaluate("sessionStorage.getItem('warren.session-token')")


def main():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        violations = []
        admin = browser.new_context().new_page()
        admin.on("dialog", lambda dialog: dialog.accept())
        watch_policy(admin, violations)
        login(admin, ADMIN)
        # A reload keeps the session (the tab keeps the token).
        admin.reload()
        expect(admin.locator("#live")).to_have_text("live", timeout=WAIT)
        shot(admin, "1-fleet-logged-in")

        # Created through the API, shown without a reload.
        status, sandbox = api(
            "POST", "/v1/sandboxes", ADMIN, {"metadata": {"from": "dashboard-test"}}
        )
        assert status == 201, (status, sandbox)
        sid = sandbox["id"]
        row = admin.locator(f'tr[data-id="{sid}"]')
        expect(row).to_be_visible(timeout=WAIT)
        expect(row.locator("td.state")).to_have_text("running", timeout=WAIT)
        expect(row.locator("td.meta")).to_have_text("from=dashboard-test")
        expect(row.locator("td.owner")).to_have_text("you")
        expect(admin.locator('#counts li[data-state="running"]')).to_have_text(
            "running 1"
        )
        for action in ("pause", "fork", "kill"):
            expect(row.locator(f'button[data-action="{action}"]')).to_have_count(1)
        # Filters hide and show it.
        admin.get_by_label("State", exact=True).select_option("paused")
        expect(row).to_have_count(0)
        expect(admin.locator("#empty")).to_be_visible()
        admin.get_by_label("State", exact=True).select_option("")
        admin.get_by_label("Template", exact=True).select_option(sandbox["template"])
        expect(row).to_be_visible()
        shot(admin, "2-fleet-with-sandbox")

        # Accessibility of the login page and of the fleet with a sandbox.
        a11y = browser.new_context(bypass_csp=True).new_page()
        a11y.goto(URL + "/")
        expect(a11y.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT)
        check_accessibility(a11y, "login")
        login(a11y, ADMIN)
        expect(a11y.locator(f'tr[data-id="{sid}"]')).to_be_visible(timeout=WAIT)
        check_accessibility(a11y, "fleet")
        a11y.goto(f"{URL}/#/sandbox/{sid}")
        expect(a11y.locator("#sandbox-state")).to_have_text("running", timeout=WAIT)
        expect(a11y.locator("#timeline li").first).to_be_visible(timeout=WAIT)
        check_accessibility(a11y, "sandbox")
        a11y.goto(f"{URL}/#/audit")
        expect(a11y.locator("#audit-entries tbody tr").first).to_be_visible(timeout=WAIT)
        check_accessibility(a11y, "audit")
        a11y.context.close()

        check_sandbox_page(admin, sid)
        check_audit_page(admin, sid)
        check_usage_page(admin)

        # Calls with the cookie but without the token are refused, reads
        # too: another page on this origin has the cookie, never the token.
        status, body = fetch_status(admin, "POST", "/v1/sandboxes", None)
        assert status == 403 and body["code"] == "permission_denied", (status, body)
        for path in ("/v1/sandboxes", "/v1/session", "/v1/sandboxes/watch"):
            status, body = fetch_status(admin, "GET", path, None)
            assert status == 403, (path, status, body)
        status, body = fetch_status(admin, "GET", "/v1/whoami", csrf_of(admin))
        assert status == 200 and body["role"] == "admin", (status, body)
        status, body = fetch_status(admin, "DELETE", f"/v1/sandboxes/{sid}", "wrong")
        assert status == 403, (status, body)

        # A viewer sees the sandbox live, with no actions, and the API
        # refuses the kill it may try with its cookie and token anyway.
        viewer = browser.new_context().new_page()
        watch_policy(viewer, violations)
        login(viewer, VIEWER)
        vrow = viewer.locator(f'tr[data-id="{sid}"]')
        expect(vrow).to_be_visible(timeout=WAIT)
        expect(vrow.locator("button")).to_have_count(0)
        # The viewer key is the admin user's own (a second key): still "you".
        expect(vrow.locator("td.owner")).to_have_text("you")
        status, body = fetch_status(
            viewer, "DELETE", f"/v1/sandboxes/{sid}", csrf_of(viewer)
        )
        assert status == 403 and body["code"] == "permission_denied", (status, body)
        shot(viewer, "3-fleet-as-viewer")

        # Pause, resume and fork from the page; each change shows live.
        row.locator('button[data-action="pause"]').click()
        expect(row.locator("td.state")).to_have_text("paused", timeout=WAIT)
        expect(vrow.locator("td.state")).to_have_text("paused", timeout=WAIT)
        row.locator('button[data-action="resume"]').click()
        expect(row.locator("td.state")).to_have_text("running", timeout=WAIT)
        row.locator('button[data-action="fork"]').click()
        branch = admin.locator(f'#sandboxes tbody tr:not([data-id="{sid}"])')
        expect(branch).to_have_count(1, timeout=WAIT)
        expect(branch.locator("td.state")).to_have_text("running", timeout=WAIT)
        bid = branch.get_attribute("data-id")
        expect(admin.locator('#counts li[data-state="running"]')).to_have_text(
            "running 2"
        )
        shot(admin, "4-fleet-with-branch")
        branch.locator('button[data-action="kill"]').click()
        expect(admin.locator(f'tr[data-id="{bid}"]')).to_have_count(0, timeout=WAIT)
        assert not admin.locator("#notice").is_visible(), admin.locator("#notice").text_content()

        # The kill button kills it: gone from both pages, without a reload.
        row.locator('button[data-action="kill"]').click()
        expect(row).to_have_count(0, timeout=WAIT)
        expect(vrow).to_have_count(0, timeout=WAIT)
        status, body = api("GET", f"/v1/sandboxes/{sid}", ADMIN)
        assert status == 404, (status, body)
        shot(admin, "5-fleet-after-kill")

        # Logging out ends the session: the page asks for a key again.
        admin.get_by_role("button", name="Log out").click()
        expect(admin.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT)
        status, body = fetch_status(admin, "GET", "/v1/whoami", None)
        assert status == 401, (status, body)
        shot(admin, "6-logged-out")
        assert not violations, f"the pages broke their own policy: {violations}"
        browser.close()
    print(json.dumps({"ok": True, "sandbox": sid}))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"dashboard check failed: {e}", file=sys.stderr)
        raise
