// Warren's dashboard: the fleet of the caller's team, live, and one
// sandbox's page (#/sandbox/ID): its facts, a terminal, its processes, its snapshots and
// the branches started from them, file transfers and its timeline; and the
// audit log (#/audit), each entry checked in the browser (verify.js); and
// usage, costs, budgets and, for admins, keys (#/usage).
//
// The page holds no key: it logs in once (POST /v1/session), and from then
// on the browser sends the HttpOnly session cookie. Every call also carries
// the session's token (X-CSRF-Token; the watch stream, opened by an
// EventSource that cannot set headers, in its query): the cookie alone
// opens nothing. The token is kept in this tab's sessionStorage, so a
// reload keeps the session and another tab logs in on its own. What the
// page offers follows the caller's scopes (GET /v1/whoami); the API
// decides. The fleet comes from GET /v1/sandboxes/watch (server-sent
// events): a full list first, then one event per change. Nothing is
// polled. The terminal is the PTY WebSocket (GET /v1/sandboxes/ID/pty,
// the token in its query as for the watch stream) drawn by term.js.

import { Terminal } from "./term.js";
import { parseExact, plain, verifyEntry } from "./verify.js";
import { play } from "./replay.js";
import { lineChart } from "./chart.js";

const TOKEN = "warren.session-token";
const STATES = ["creating", "running", "pausing", "paused", "resuming", "failed"];

const page = {
  csrf: null,
  scopes: new Set(),
  user: null,
  sandboxes: new Map(),
  watch: null,
  // The sandbox whose page is shown, and its open terminal.
  current: null,
  terminal: null,
  // The recorded session playing (an AbortController).
  replay: null,
  snapshots: null,
  auditKey: null,
  auditNext: null,
};

const $ = (id) => document.getElementById(id);

function show(id, visible) {
  $(id).hidden = !visible;
}

function notify(message) {
  const notice = $("notice");
  notice.textContent = message || "";
  notice.hidden = !message;
}

// A call to the API with the session cookie and token: the answer when it
// succeeded, else an Error with the API's message and the status. A Blob
// body is sent as it is, anything else as JSON.
async function send(method, path, body) {
  const headers = {};
  if (page.csrf) {
    headers["X-CSRF-Token"] = page.csrf;
  }
  const raw = body instanceof Blob;
  if (body !== undefined && !raw) {
    headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined || raw ? body : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!resp.ok) {
    const answer = await resp.json().catch(() => null);
    const error = new Error((answer && answer.message) || `${method} ${path}: ${resp.status}`);
    error.status = resp.status;
    throw error;
  }
  return resp;
}

// `send`, answering the parsed body (or null).
async function api(method, path, body) {
  const text = await (await send(method, path, body)).text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// ---- session ---------------------------------------------------------------

async function resumeSession() {
  page.csrf = window.sessionStorage.getItem(TOKEN);
  if (!page.csrf) {
    showLogin();
    return;
  }
  try {
    await enter(await api("GET", "/v1/session"));
  } catch {
    showLogin();
  }
}

function showLogin() {
  stopWatch();
  closeTerminal();
  page.csrf = null;
  window.sessionStorage.removeItem(TOKEN);
  show("fleet", false);
  show("sandbox", false);
  show("audit", false);
  show("usage", false);
  show("nav", false);
  show("who", false);
  show("logout", false);
  show("login", true);
  $("api-key").focus();
}

async function login(event) {
  event.preventDefault();
  const input = $("api-key");
  const key = input.value.trim();
  input.value = "";
  try {
    const session = await api("POST", "/v1/session", { api_key: key });
    notify("");
    await enter(session);
  } catch (error) {
    notify(`Login failed: ${error.message}`);
  }
}

async function logout() {
  try {
    await api("DELETE", "/v1/session");
  } catch (error) {
    notify(`Logout failed: ${error.message}`);
    return;
  }
  page.sandboxes.clear();
  render();
  showLogin();
}

async function enter(session) {
  page.csrf = session.csrf_token;
  window.sessionStorage.setItem(TOKEN, page.csrf);
  const me = await api("GET", "/v1/whoami");
  page.scopes = new Set(me.scopes);
  page.user = me.user;
  const who = $("who");
  who.textContent = `${me.user_name} · ${me.team_name} · ${me.role}`;
  show("login", false);
  show("who", true);
  show("logout", true);
  show("nav", true);
  show("nav-audit", page.scopes.has("audit:read"));
  startWatch();
  route();
}

// ---- pages -----------------------------------------------------------------

// The page the address names: a sandbox's (#/sandbox/ID) or the fleet.
function route() {
  if (!page.csrf) return;
  const match = /^#\/sandbox\/([A-Za-z0-9]+)$/.exec(window.location.hash);
  const id = match ? match[1] : null;
  const audit = window.location.hash === "#/audit";
  const usage = window.location.hash === "#/usage";
  if (id !== page.current) {
    closeTerminal();
    stopReplay();
    $("replay").hidden = true;
  }
  page.current = id;
  show("fleet", !id && !audit && !usage);
  show("sandbox", Boolean(id));
  show("audit", audit);
  show("usage", usage);
  if (id) openSandbox(id);
  if (audit) loadAudit(null);
  if (usage) loadUsage();
}

async function openSandbox(id) {
  $("sandbox-id").textContent = id;
  renderFacts();
  if (!page.sandboxes.has(id)) {
    try {
      page.sandboxes.set(id, await api("GET", `/v1/sandboxes/${encodeURIComponent(id)}`));
      renderFacts();
    } catch (error) {
      notify(`Sandbox ${id}: ${error.message}`);
    }
  }
  loadTimeline();
  loadLineage();
  loadProcesses();
  loadRecordings();
  loadNetwork();
  loadCharts();
}

function renderFacts() {
  const sandbox = page.sandboxes.get(page.current);
  const facts = $("sandbox-facts");
  facts.replaceChildren();
  if (!sandbox) return;
  const meta = Object.entries(sandbox.metadata || {}).map(([k, v]) => `${k}=${v}`).join(" ");
  const rows = [
    ["State", sandbox.state],
    ["Template", sandbox.template],
    ["Owner", sandbox.owner],
    ["Created", sandbox.created_at],
    ["Metadata", meta || "none"],
  ];
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (name === "State") dd.id = "sandbox-state";
    facts.append(dt, dd);
  }
  $("terminal-toggle").disabled = sandbox.state !== "running" && !page.terminal;
  // What the key may do here; the API decides either way.
  $("terminal-toggle").hidden = !page.scopes.has("sandboxes:exec");
  $("fork-here").hidden = !page.scopes.has("sandboxes:create");
  $("snapshot-form").hidden = !page.scopes.has("sandboxes:exec");
}

async function loadTimeline() {
  const id = page.current;
  const list = $("timeline");
  try {
    const timeline = await api("GET", `/v1/sandboxes/${encodeURIComponent(id)}/timeline`);
    if (id !== page.current) return;
    list.replaceChildren();
    for (const event of timeline.events) {
      const li = document.createElement("li");
      li.dataset.kind = event.kind;
      li.dataset.outcome = event.outcome;
      const time = document.createElement("time");
      time.dateTime = event.time;
      time.textContent = new Date(event.time).toLocaleTimeString();
      li.append(time, event.summary);
      list.appendChild(li);
    }
  } catch (error) {
    list.replaceChildren();
    notify(`Timeline of ${id}: ${error.message}`);
  }
}

// ---- processes -------------------------------------------------------------

async function loadProcesses() {
  const id = page.current;
  const tbody = $("processes").tBodies[0];
  if (!page.scopes.has("sandboxes:exec")) {
    tbody.replaceChildren();
    return;
  }
  try {
    const list = await api("GET", `/v1/sandboxes/${encodeURIComponent(id)}/processes`);
    if (id !== page.current) return;
    tbody.replaceChildren();
    for (const proc of list.processes) {
      const tr = document.createElement("tr");
      tr.dataset.pid = String(proc.pid);
      tr.appendChild(cell(String(proc.pid)));
      tr.appendChild(cell([proc.cmd, ...proc.args].join(" "), "command"));
      tr.appendChild(cell(proc.tag || ""));
      const actions = document.createElement("td");
      const end = document.createElement("button");
      end.type = "button";
      end.className = "danger";
      end.textContent = "End";
      end.setAttribute("aria-label", `End process ${proc.pid}`);
      end.addEventListener("click", () => endProcess(proc.pid));
      actions.appendChild(end);
      tr.appendChild(actions);
      tbody.appendChild(tr);
    }
  } catch (error) {
    tbody.replaceChildren();
    if (error.status !== 409) notify(`Processes of ${id}: ${error.message}`);
  }
}

async function endProcess(pid) {
  const path = `/v1/sandboxes/${encodeURIComponent(page.current)}/processes/${pid}`;
  try {
    await api("DELETE", path);
    notify("");
  } catch (error) {
    notify(`Ending process ${pid} failed: ${error.message}`);
  }
  loadProcesses();
}

// ---- recorded sessions -----------------------------------------------------

async function loadRecordings() {
  const id = page.current;
  const tbody = $("recordings").tBodies[0];
  if (!page.scopes.has("sandboxes:exec")) {
    tbody.replaceChildren();
    return;
  }
  try {
    const list = await api("GET", `/v1/sandboxes/${encodeURIComponent(id)}/recordings`);
    if (id !== page.current) return;
    tbody.replaceChildren();
    for (const rec of list.recordings) {
      const tr = document.createElement("tr");
      tr.dataset.recording = rec.id;
      tr.appendChild(cell(new Date(rec.started_at).toLocaleString()));
      tr.appendChild(cell(rec.title, "command"));
      tr.appendChild(cell(duration(Math.round(rec.duration_s))));
      tr.appendChild(cell(`${bytes(rec.size_bytes)}${rec.truncated ? " (cut at its limit)" : ""}`));
      const actions = document.createElement("td");
      const replay = document.createElement("button");
      replay.type = "button";
      replay.textContent = "Replay";
      replay.setAttribute("aria-label", `Replay the session started ${rec.started_at}`);
      replay.addEventListener("click", () => replaySession(rec));
      actions.appendChild(replay);
      tr.appendChild(actions);
      tbody.appendChild(tr);
    }
  } catch (error) {
    tbody.replaceChildren();
    notify(`Recorded sessions of ${id}: ${error.message}`);
  }
}

async function replaySession(rec) {
  stopReplay();
  const path = `/v1/sandboxes/${encodeURIComponent(page.current)}/recordings/${encodeURIComponent(rec.id)}`;
  const status = $("replay-status");
  try {
    const cast = await (await send("GET", path)).text();
    const controller = new AbortController();
    page.replay = controller;
    $("replay").hidden = false;
    $("replay-stop").hidden = false;
    status.textContent = `replaying ${rec.title}…`;
    await play($("replay"), cast, {
      signal: controller.signal,
      onNote: (note) => (status.textContent = note),
    });
    if (page.replay === controller) {
      status.textContent = controller.signal.aborted ? "replay stopped" : "replay ended";
      $("replay-stop").hidden = true;
      page.replay = null;
    }
  } catch (error) {
    status.textContent = "";
    notify(`Replay of ${rec.id} failed: ${error.message}`);
  }
}

function stopReplay() {
  if (page.replay) page.replay.abort();
  page.replay = null;
  $("replay-stop").hidden = true;
}

// ---- use over time ---------------------------------------------------------

async function loadCharts() {
  const id = page.current;
  const status = $("charts-status");
  try {
    const metrics = await api("GET", `/v1/sandboxes/${encodeURIComponent(id)}/metrics?minutes=60`);
    if (id !== page.current) return;
    const minutes = metrics.minutes;
    status.textContent = minutes.length ? "" : "nothing metered yet";
    const times = minutes.map((m) => new Date(m.minute));
    const pick = (key) => minutes.map((m) => m[key]);
    lineChart($("chart-cpu"), {
      title: "CPU",
      times,
      series: [{ name: "cores", values: pick("cpu_cores"), className: "chart-main" }],
      format: (v) => `${v.toFixed(2)} cores`,
    });
    lineChart($("chart-memory"), {
      title: "Memory",
      times,
      series: [
        { name: "in use", values: pick("memory_mib"), className: "chart-main" },
        { name: "limit", values: pick("memory_limit_mib"), className: "chart-second" },
      ],
      format: (v) => `${Math.round(v)} MiB`,
    });
    lineChart($("chart-network"), {
      title: "Network",
      times,
      series: [
        { name: "out", values: pick("egress_bytes"), className: "chart-main" },
        { name: "in", values: pick("ingress_bytes"), className: "chart-second" },
      ],
      format: (v) => `${bytes(v)}/min`,
    });
  } catch (error) {
    status.textContent = "";
    notify(`Use of ${id}: ${error.message}`);
  }
}

// ---- network and ports -----------------------------------------------------

function sandboxPath(suffix = "") {
  return `/v1/sandboxes/${encodeURIComponent(page.current)}${suffix}`;
}

function renderPolicy(policy) {
  const facts = $("network-policy");
  facts.replaceChildren();
  const list = (items) => (items && items.length ? items.join(", ") : "none");
  const rows = [
    ["Internet", policy.internet],
    ["Allowed", list(policy.allow)],
    ["Denied", list(policy.deny)],
    ["Credentials added for", list((policy.inject || []).map((i) => `${i.host} (${i.secret})`))],
    ["Public ports", policy.all_ports_public ? "all" : list((policy.public_ports || []).map(String))],
  ];
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    facts.append(dt, dd);
  }
  $("network-internet").value = policy.internet;
  $("network-allow").value = (policy.allow || []).join("\n");
  $("network-deny").value = (policy.deny || []).join("\n");
  $("network-public").value = (policy.public_ports || []).join(", ");
  // The API decides either way; the form is for keys that may change it.
  $("network-form").hidden = !page.scopes.has("sandboxes:manage");
  $("port-form").hidden = !page.scopes.has("sandboxes:exec") && !(policy.public_ports || []).length;
}

async function loadNetwork() {
  const id = page.current;
  try {
    const sandbox = await api("GET", sandboxPath());
    if (id !== page.current) return;
    page.sandboxes.set(id, { ...page.sandboxes.get(id), ...sandbox });
    renderPolicy(sandbox.network);
    const events = await api("GET", sandboxPath("/network/events?limit=20"));
    if (id !== page.current) return;
    const tbody = $("network-events").tBodies[0];
    tbody.replaceChildren();
    for (const event of events.events) {
      const tr = document.createElement("tr");
      tr.dataset.verdict = event.verdict;
      const where = [event.name, event.dest && `${event.dest}${event.port ? `:${event.port}` : ""}`]
        .filter(Boolean)
        .join(" → ");
      tr.append(
        cell(new Date(event.at).toLocaleTimeString()),
        cell(event.kind),
        cell(where, "command"),
        cell(event.reason ? `${event.verdict} (${event.reason})` : event.verdict),
      );
      tbody.appendChild(tr);
    }
  } catch (error) {
    notify(`Network of ${id}: ${error.message}`);
  }
}

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

async function applyPolicy(event) {
  event.preventDefault();
  const current = page.sandboxes.get(page.current)?.network || {};
  const ports = $("network-public").value.split(",").map((p) => p.trim()).filter(Boolean);
  const policy = {
    ...current,
    internet: $("network-internet").value,
    allow: lines($("network-allow").value),
    deny: lines($("network-deny").value),
    public_ports: ports.map(Number),
  };
  const status = $("network-status");
  try {
    const sandbox = await api("PUT", sandboxPath("/network"), policy);
    page.sandboxes.set(page.current, sandbox);
    renderPolicy(sandbox.network);
    status.textContent = "policy applied";
    notify("");
  } catch (error) {
    status.textContent = "";
    notify(`The policy was not applied: ${error.message}`);
  }
}

// A link to a port: path style on this origin, with the sandbox's
// traffic token unless the port is public.
function portLink(event) {
  event.preventDefault();
  const port = Number($("port-number").value);
  const sandbox = page.sandboxes.get(page.current) || {};
  const policy = sandbox.network || {};
  const open = policy.all_ports_public || (policy.public_ports || []).includes(port);
  let href = `${window.location.origin}${sandboxPath(`/ports/${port}/`)}`;
  if (!open && sandbox.traffic_token) href += `?warren_token=${encodeURIComponent(sandbox.traffic_token)}`;
  const link = $("port-link");
  link.href = href;
  link.textContent = `port ${port}${open ? " (public)" : ""}`;
  link.hidden = false;
}

// ---- snapshots and branches ------------------------------------------------

// The snapshots of the page's sandbox, each with the sandboxes started from
// it (forks, creates from a snapshot); the ids of those snapshots are kept
// so that a new branch appearing in the fleet redraws the tree.
async function loadLineage() {
  const id = page.current;
  let list;
  try {
    list = await api("GET", `/v1/sandboxes/${encodeURIComponent(id)}/snapshots`);
  } catch (error) {
    notify(`Snapshots of ${id}: ${error.message}`);
    return;
  }
  if (id !== page.current) return;
  page.snapshots = new Set(list.snapshots.map((snap) => snap.id));
  const sandbox = page.sandboxes.get(id);
  const parent = $("lineage-parent");
  parent.hidden = !(sandbox && sandbox.source_snapshot);
  parent.textContent = sandbox && sandbox.source_snapshot ? `Started from snapshot ${sandbox.source_snapshot}.` : "";
  const tree = $("lineage");
  tree.replaceChildren();
  for (const snap of list.snapshots) {
    const li = document.createElement("li");
    li.dataset.snapshot = snap.id;
    li.dataset.kind = snap.kind;
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = snap.kind;
    li.append(kind, snap.name || snap.id, ` · ${new Date(snap.created_at).toLocaleTimeString()}`);
    if (snap.kind === "named" && snap.available && page.scopes.has("sandboxes:manage")) {
      const back = document.createElement("button");
      back.type = "button";
      back.textContent = "Roll back";
      back.dataset.rollback = snap.name || snap.id;
      back.setAttribute("aria-label", `Roll back to ${snap.name || snap.id}`);
      li.appendChild(back);
    }
    if (snap.children.length > 0) {
      const branches = document.createElement("ul");
      for (const child of snap.children) {
        const item = document.createElement("li");
        item.className = "branch";
        item.dataset.id = child;
        const link = document.createElement("a");
        link.href = `#/sandbox/${child}`;
        link.textContent = child;
        const known = page.sandboxes.get(child);
        item.append(link, ` ${known ? known.state : "killed"}`);
        branches.appendChild(item);
      }
      li.appendChild(branches);
    }
    tree.appendChild(li);
  }
}

async function lineageAction(what, call) {
  const status = $("lineage-status");
  status.textContent = `${what}…`;
  try {
    await call();
    status.textContent = `${what}: done`;
    notify("");
  } catch (error) {
    status.textContent = "";
    notify(`${what} failed: ${error.message}`);
  }
  loadLineage();
  loadTimeline();
}

function forkHere() {
  const path = `/v1/sandboxes/${encodeURIComponent(page.current)}/fork`;
  lineageAction("Fork", () => api("POST", path, { count: 1 }));
}

function takeSnapshot(event) {
  event.preventDefault();
  const input = $("snapshot-name");
  const name = input.value.trim();
  const path = `/v1/sandboxes/${encodeURIComponent(page.current)}/snapshots`;
  lineageAction(`Snapshot ${name}`, async () => {
    await api("POST", path, { name });
    input.value = "";
  });
}

function rollBack(event) {
  const button = event.target.closest("button[data-rollback]");
  if (!button) return;
  const snapshot = button.dataset.rollback;
  if (!window.confirm(`Roll back to ${snapshot}? What changed since is lost.`)) return;
  const path = `/v1/sandboxes/${encodeURIComponent(page.current)}/rollback`;
  closeTerminal();
  lineageAction(`Rollback to ${snapshot}`, () => api("POST", path, { snapshot }));
}

// ---- usage, budgets, keys --------------------------------------------------

function money(amount, currency) {
  return `${amount.toFixed(amount < 1 ? 4 : 2)} ${currency}`;
}

function duration(seconds) {
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

// A bar `fraction` wide (0-1), drawn through the CSS object model.
function bar(fraction, over) {
  const td = document.createElement("td");
  td.className = "bar-cell";
  const div = document.createElement("div");
  div.className = over ? "share over" : "share";
  div.style.width = `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
  td.appendChild(div);
  return td;
}

async function loadUsage() {
  const meta = $("usage-meta").value.trim();
  const params = new URLSearchParams({
    group_by: meta ? `metadata.${meta}` : $("usage-group").value,
    since: $("usage-since").value,
  });
  try {
    const report = await api("GET", `/v1/usage?${params}`);
    const tbody = $("usage-groups").tBodies[0];
    tbody.replaceChildren();
    const total = report.total.cost.total;
    for (const group of report.groups) {
      const u = group.usage;
      const tr = document.createElement("tr");
      tr.dataset.group = group.key === null ? "" : group.key;
      tr.appendChild(cell(group.key === null ? "(none)" : group.key, "group"));
      tr.appendChild(cell(String(group.sandboxes)));
      tr.appendChild(cell(duration(u.cpu_seconds)));
      tr.appendChild(cell(`${u.memory_gib_seconds.toFixed(2)} GiB·s`));
      tr.appendChild(cell(duration(u.running_seconds)));
      tr.appendChild(cell(bytes(u.egress_bytes)));
      tr.appendChild(cell(money(u.cost.total, u.cost.currency), "cost"));
      tr.appendChild(bar(total > 0 ? u.cost.total / total : 0, false));
      tbody.appendChild(tr);
    }
    $("usage-total").textContent = `${report.groups.length} groups, ${money(total, report.total.cost.currency)} in all, ${report.since} to ${report.until}.`;
    notify("");
  } catch (error) {
    notify(`Usage: ${error.message}`);
  }
  loadBudgets();
  show("keys-panel", page.scopes.has("keys:manage"));
  if (page.scopes.has("keys:manage")) loadKeys();
}

async function loadBudgets() {
  try {
    const list = await api("GET", "/v1/budgets");
    const tbody = $("budgets").tBodies[0];
    tbody.replaceChildren();
    for (const b of list.budgets) {
      const tr = document.createElement("tr");
      const who = b.key ? `key ${b.key}` : b.user ? `user ${b.user}` : `team ${b.team}`;
      tr.appendChild(cell(who));
      tr.appendChild(cell(b.period));
      tr.appendChild(cell(money(b.spend, b.currency)));
      tr.appendChild(cell(money(b.amount, b.currency)));
      const state = b.exceeded ? (b.lifted ? "exceeded, lifted" : `exceeded: ${b.action}`) : b.warned ? "warned" : "within";
      tr.appendChild(cell(state));
      tbody.appendChild(tr);
    }
    show("budgets-empty", list.budgets.length === 0);
  } catch (error) {
    notify(`Budgets: ${error.message}`);
  }
}

async function loadKeys() {
  try {
    const list = await api("GET", "/v1/keys");
    const tbody = $("keys").tBodies[0];
    tbody.replaceChildren();
    for (const key of list.keys) {
      const tr = document.createElement("tr");
      tr.dataset.key = key.id;
      tr.appendChild(cell(key.name, "name"));
      tr.appendChild(cell(key.user));
      tr.appendChild(cell(key.role));
      tr.appendChild(cell(key.created_at.slice(0, 19).replace("T", " ")));
      tr.appendChild(cell(key.revoked_at ? "revoked" : "active", "key-state"));
      const actions = document.createElement("td");
      if (!key.revoked_at) {
        const revoke = document.createElement("button");
        revoke.type = "button";
        revoke.className = "danger";
        revoke.textContent = "Revoke";
        revoke.setAttribute("aria-label", `Revoke key ${key.name}`);
        revoke.addEventListener("click", () => revokeKey(key));
        actions.appendChild(revoke);
      }
      tr.appendChild(actions);
      tbody.appendChild(tr);
    }
  } catch (error) {
    notify(`Keys: ${error.message}`);
  }
}

async function createKey(event) {
  event.preventDefault();
  const name = $("key-name").value.trim();
  try {
    const made = await api("POST", "/v1/keys", { name, role: $("key-role").value });
    const secret = $("key-secret");
    secret.textContent = `New key ${made.name} (shown once, copy it now): ${made.secret}`;
    secret.hidden = false;
    $("key-name").value = "";
    loadKeys();
  } catch (error) {
    notify(`Creating key ${name} failed: ${error.message}`);
  }
}

async function revokeKey(key) {
  if (!window.confirm(`Revoke key ${key.name}? Whatever uses it stops working.`)) return;
  try {
    await api("DELETE", `/v1/keys/${encodeURIComponent(key.id)}`);
    loadKeys();
  } catch (error) {
    notify(`Revoking ${key.name} failed: ${error.message}`);
  }
}

// ---- audit -----------------------------------------------------------------

// Entries are read as text and parsed exactly (verify.js): their numbers
// must reach the hash as they were sent, not through floating point.
async function fetchExact(path) {
  return parseExact(await (await send("GET", path)).text());
}

// Shows the entries matching the filters from the start, or the next page.
async function loadAudit(after) {
  const tbody = $("audit-entries").tBodies[0];
  if (after === null) tbody.replaceChildren();
  const params = new URLSearchParams({ limit: "100" });
  for (const name of ["sandbox", "action"]) {
    const value = $(`audit-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  if (after !== null) params.set("after", String(after));
  try {
    if (!page.auditKey) {
      page.auditKey = (await api("GET", "/v1/audit/heads")).public_key;
      $("audit-key").textContent = `${page.auditKey.slice(0, 16)}…`;
      $("audit-key").title = page.auditKey;
    }
    const list = await fetchExact(`/v1/audit/entries?${params}`);
    for (const line of list.entries) tbody.appendChild(auditRow(line.entry));
    const next = list.next_after ? plain(list.next_after) : null;
    page.auditNext = next;
    show("audit-more", next !== null);
    notify("");
  } catch (error) {
    notify(`Audit log: ${error.message}`);
  }
}

function auditRow(entry) {
  const shown = plain(entry);
  const tr = document.createElement("tr");
  tr.dataset.index = String(shown.index);
  tr.appendChild(cell(String(shown.index)));
  tr.appendChild(cell(new Date(shown.time_ms).toISOString().replace("T", " ").slice(0, 19)));
  tr.appendChild(cell(shown.actor.join(" → ")));
  tr.appendChild(cell(shown.action, "action"));
  tr.appendChild(cell(shown.target));
  tr.appendChild(cell(shown.outcome));
  const proof = cell("", "proof");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Verify";
  button.setAttribute("aria-label", `Verify entry ${shown.index}`);
  button.addEventListener("click", () => verifyRow(entry, proof));
  proof.appendChild(button);
  tr.appendChild(proof);
  return tr;
}

async function verifyRow(entry, proofCell) {
  const index = plain(entry.index);
  const result = document.createElement("span");
  result.setAttribute("role", "status");
  proofCell.replaceChildren(result);
  result.textContent = "checking…";
  let proof;
  try {
    proof = await fetchExact(`/v1/audit/entries/${index}/proof`);
  } catch (error) {
    result.textContent = error.status === 409 ? "not signed yet: try again in a second" : `no proof: ${error.message}`;
    return;
  }
  const verdict = await verifyEntry(entry, proof, page.auditKey);
  if (verdict.ok) {
    result.className = "verified";
    result.textContent = `✓ in the signed log of ${verdict.size}`;
    result.title = `root ${verdict.root}`;
  } else {
    result.className = "tampered";
    result.textContent = `✗ ${verdict.why}`;
  }
}

// ---- terminal --------------------------------------------------------------

function toggleTerminal() {
  if (page.terminal) closeTerminal();
  else openTerminal();
}

function openTerminal() {
  const id = page.current;
  const element = $("terminal");
  const cols = 100;
  const rows = 30;
  const term = new Terminal(element, { cols, rows });
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const query = `cols=${cols}&rows=${rows}&csrf_token=${encodeURIComponent(page.csrf || "")}`;
  const socket = new WebSocket(`${scheme}://${window.location.host}/v1/sandboxes/${encodeURIComponent(id)}/pty?${query}`);
  socket.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  term.onInput((text) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(text));
  });
  const status = $("terminal-status");
  status.textContent = "connecting…";
  socket.addEventListener("open", () => {
    status.textContent = "connected";
    element.focus();
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") {
      const message = JSON.parse(event.data);
      if (message.type === "exit") status.textContent = `exited with code ${message.exit_code}`;
    } else {
      term.write(new Uint8Array(event.data));
    }
  });
  socket.addEventListener("close", () => {
    // An exit already said how it ended.
    if (!status.textContent.startsWith("exited")) status.textContent = "closed";
    // The session's recording is kept as it closes.
    if (page.current === id) window.setTimeout(loadRecordings, 500);
  });
  page.terminal = { socket, term };
  element.hidden = false;
  $("terminal-toggle").textContent = "Close terminal";
}

function closeTerminal() {
  if (!page.terminal) return;
  page.terminal.socket.close();
  page.terminal = null;
  $("terminal").hidden = true;
  $("terminal").replaceChildren();
  $("terminal-status").textContent = "";
  $("terminal-toggle").textContent = "Open terminal";
}

// ---- files -----------------------------------------------------------------

function filesPath(path) {
  return `/v1/sandboxes/${encodeURIComponent(page.current)}/files?path=${encodeURIComponent(path)}`;
}

async function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  let path = $("upload-path").value.trim();
  if (!file || !path) return;
  if (path.endsWith("/")) path += file.name;
  try {
    await api("PUT", filesPath(path), file);
    notify("");
    loadTimeline();
  } catch (error) {
    notify(`Upload to ${path} failed: ${error.message}`);
  }
}

async function download(event) {
  event.preventDefault();
  const path = $("download-path").value.trim();
  try {
    const resp = await send("GET", filesPath(path));
    const url = URL.createObjectURL(await resp.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = path.split("/").pop() || "download";
    document.body.appendChild(link);
    link.click();
    link.remove();
    URL.revokeObjectURL(url);
    notify("");
  } catch (error) {
    notify(`Download of ${path} failed: ${error.message}`);
  }
}

// ---- the live list ---------------------------------------------------------

function setLive(state, text) {
  const live = $("live");
  live.dataset.state = state;
  live.textContent = text;
}

function startWatch() {
  stopWatch();
  setLive("connecting", "connecting…");
  const token = encodeURIComponent(page.csrf || "");
  const source = new EventSource(`/v1/sandboxes/watch?csrf_token=${token}`);
  page.watch = source;
  source.addEventListener("open", () => setLive("live", "live"));
  source.addEventListener("sandboxes", (event) => {
    const list = JSON.parse(event.data);
    page.sandboxes.clear();
    for (const sandbox of list.sandboxes) {
      page.sandboxes.set(sandbox.id, sandbox);
    }
    render();
  });
  source.addEventListener("sandbox", (event) => {
    const sandbox = JSON.parse(event.data);
    page.sandboxes.set(sandbox.id, sandbox);
    render();
    if (sandbox.id === page.current) renderFacts();
    if (page.snapshots && page.snapshots.has(sandbox.source_snapshot)) loadLineage();
  });
  source.addEventListener("removed", (event) => {
    page.sandboxes.delete(JSON.parse(event.data).id);
    render();
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (the session ended, or too many watches): see which.
      setLive("down", "disconnected");
      resumeSession();
    } else {
      setLive("connecting", "reconnecting…");
    }
  });
}

function stopWatch() {
  if (page.watch) {
    page.watch.close();
    page.watch = null;
  }
}

// ---- rendering -------------------------------------------------------------

function age(createdAt) {
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(createdAt)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// The actions the caller's scopes allow on a sandbox in its state.
function actionsFor(sandbox) {
  const manage = page.scopes.has("sandboxes:manage");
  const create = page.scopes.has("sandboxes:create");
  const actions = [];
  if (manage && sandbox.state === "running") actions.push("pause");
  if (manage && sandbox.state === "paused") actions.push("resume");
  if (create && (sandbox.state === "running" || sandbox.state === "paused")) actions.push("fork");
  if (manage) actions.push("kill");
  return actions;
}

const LABELS = { pause: "Pause", resume: "Resume", fork: "Fork", kill: "Kill" };

function row(sandbox) {
  const tr = document.createElement("tr");
  tr.dataset.id = sandbox.id;
  tr.dataset.state = sandbox.state;
  const id = cell("", "id");
  const link = document.createElement("a");
  link.href = `#/sandbox/${sandbox.id}`;
  link.textContent = sandbox.id;
  id.appendChild(link);
  tr.appendChild(id);
  tr.appendChild(cell(sandbox.template));
  tr.appendChild(cell(sandbox.state, "state"));
  const owner = cell(sandbox.owner === page.user ? "you" : sandbox.owner, "owner");
  owner.title = sandbox.owner;
  tr.appendChild(owner);
  const when = cell(age(sandbox.created_at), "age");
  when.dataset.created = sandbox.created_at;
  when.title = sandbox.created_at;
  tr.appendChild(when);
  const meta = Object.entries(sandbox.metadata || {})
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  tr.appendChild(cell(meta, "meta"));
  const actions = document.createElement("td");
  actions.className = "actions";
  for (const action of actionsFor(sandbox)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = LABELS[action];
    button.dataset.action = action;
    button.dataset.id = sandbox.id;
    button.setAttribute("aria-label", `${LABELS[action]} ${sandbox.id}`);
    if (action === "kill") button.className = "danger";
    actions.appendChild(button);
  }
  tr.appendChild(actions);
  return tr;
}

function fillSelect(select, values) {
  const chosen = select.value;
  const wanted = ["", ...values];
  const have = [...select.options].map((o) => o.value);
  if (have.join("\n") === wanted.join("\n")) return;
  select.replaceChildren();
  for (const value of wanted) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value || "all";
    select.appendChild(option);
  }
  select.value = wanted.includes(chosen) ? chosen : "";
}

function render() {
  const all = [...page.sandboxes.values()];
  const templates = [...new Set(all.map((s) => s.template))].sort();
  fillSelect($("filter-template"), templates);

  const counts = $("counts");
  counts.replaceChildren();
  for (const state of STATES) {
    const n = all.filter((s) => s.state === state).length;
    if (n === 0 && state !== "running") continue;
    const li = document.createElement("li");
    li.dataset.state = state;
    li.textContent = `${state} ${n}`;
    counts.appendChild(li);
  }

  const state = $("filter-state").value;
  const template = $("filter-template").value;
  const shown = all
    .filter((s) => (!state || s.state === state) && (!template || s.template === template))
    .sort((a, b) => b.created_at.localeCompare(a.created_at) || a.id.localeCompare(b.id));
  place(shown);
  show("empty", shown.length === 0);
}

// The table's rows by sandbox id, with what each shows: a row is rebuilt
// only when that changes, and moved only when the order does, so that an
// update elsewhere in the fleet leaves the focus where it is.
const rows = new Map();

function place(shown) {
  const tbody = $("sandboxes").tBodies[0];
  const wanted = new Set(shown.map((s) => s.id));
  for (const [id, entry] of rows) {
    if (!wanted.has(id)) {
      entry.tr.remove();
      rows.delete(id);
    }
  }
  shown.forEach((sandbox, index) => {
    const shape = JSON.stringify([
      sandbox.state,
      sandbox.template,
      sandbox.owner,
      page.user,
      sandbox.created_at,
      sandbox.metadata,
      actionsFor(sandbox),
    ]);
    let entry = rows.get(sandbox.id);
    if (!entry || entry.shape !== shape) {
      const tr = row(sandbox);
      if (entry) entry.tr.replaceWith(tr);
      entry = { tr, shape };
      rows.set(sandbox.id, entry);
    }
    const here = tbody.children[index] || null;
    if (here !== entry.tr) tbody.insertBefore(entry.tr, here);
  });
}

function refreshAges() {
  for (const td of document.querySelectorAll("td.age")) {
    td.textContent = age(td.dataset.created);
  }
}

// ---- actions ---------------------------------------------------------------

async function act(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { action, id } = button.dataset;
  if (action === "kill" && !window.confirm(`Kill ${id}? Its files and state are lost.`)) return;
  const path = `/v1/sandboxes/${encodeURIComponent(id)}`;
  button.disabled = true;
  try {
    if (action === "kill") await api("DELETE", path);
    if (action === "pause") await api("POST", `${path}/pause`);
    if (action === "resume") await api("POST", `${path}/resume`);
    if (action === "fork") await api("POST", `${path}/fork`, { count: 1 });
    notify("");
  } catch (error) {
    notify(`${LABELS[action]} ${id} failed: ${error.message}`);
    if (error.status === 401) showLogin();
  } finally {
    button.disabled = false;
  }
}

// ---- start -----------------------------------------------------------------

function init() {
  fillSelect($("filter-state"), STATES);
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("filters").addEventListener("change", render);
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("sandboxes").addEventListener("click", act);
  $("terminal-toggle").addEventListener("click", toggleTerminal);
  $("upload-form").addEventListener("submit", upload);
  $("download-form").addEventListener("submit", download);
  $("timeline-refresh").addEventListener("click", loadTimeline);
  $("fork-here").addEventListener("click", forkHere);
  $("processes-refresh").addEventListener("click", loadProcesses);
  $("recordings-refresh").addEventListener("click", loadRecordings);
  $("network-refresh").addEventListener("click", loadNetwork);
  $("charts-refresh").addEventListener("click", loadCharts);
  $("network-form").addEventListener("submit", applyPolicy);
  $("port-form").addEventListener("submit", portLink);
  $("replay-stop").addEventListener("click", stopReplay);
  $("snapshot-form").addEventListener("submit", takeSnapshot);
  $("lineage").addEventListener("click", rollBack);
  $("audit-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAudit(null);
  });
  $("audit-more").addEventListener("click", () => loadAudit(page.auditNext));
  $("usage-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadUsage();
  });
  $("key-form").addEventListener("submit", createKey);
  window.addEventListener("hashchange", route);
  window.setInterval(refreshAges, 10000);
  resumeSession();
}

init();
