//! The meter against real gVisor sandboxes (docs/metering.md): CPU burnt
//! inside is metered as the sandbox's own clock counts it, a download is
//! counted as ingress and an upload as egress, a paused sandbox accrues
//! paused time and no CPU,
//! the sums survive a daemon restart without counting twice, and a task's
//! cost adds up across its forks, and a spent budget pauses the team's
//! sandboxes and refuses new ones.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_e2e::Daemon;
use warren_e2e::internet::Internet;

const NAMES: &[(&str, u8)] = &[("files.example.test", 2)];

/// Spins on one CPU for `{s}` seconds of wall time, and prints the CPU
/// time the sandbox's kernel counted for it.
const BURN: &str = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass\nprint(time.process_time())";

async fn usage(d: &Daemon, id: &str) -> Value {
    let info: Value = d.get_json(&format!("/v1/sandboxes/{id}")).await;
    info["usage"].clone()
}

fn f(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

/// The CPU time the host's cgroup accounting gives sandbox `id`'s cgroup
/// (v2 or v1), read directly: what the meter must agree with.
fn host_cpu_seconds(id: &str) -> f64 {
    let v2 = format!("/sys/fs/cgroup/warren-{id}/cpu.stat");
    if let Ok(text) = std::fs::read_to_string(&v2) {
        let usec: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
            .expect("usage_usec in cpu.stat");
        return usec / 1e6;
    }
    for hierarchy in ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"] {
        let v1 = format!("/sys/fs/cgroup/{hierarchy}/warren-{id}/cpuacct.usage");
        if let Ok(text) = std::fs::read_to_string(&v1) {
            return text.trim().parse::<f64>().expect("cpuacct.usage") / 1e9;
        }
    }
    panic!("no cgroup for sandbox {id}");
}

fn wall(u: &Value) -> f64 {
    f(u, "running_seconds") + f(u, "standby_seconds") + f(u, "paused_seconds")
}

/// The sandbox's usage once the meter (sampling every second here) has
/// counted at least 3 s more of its wall time than when this was called:
/// a sample taken after everything that happened before the call.
async fn settled(d: &Daemon, id: &str) -> Value {
    let start = wall(&usage(d, id).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = usage(d, id).await;
        if wall(&now) >= start + 3.0 {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the meter took no sample in a minute: {now}"
        );
    }
}

#[tokio::test]
async fn sandbox_metering_counts_what_sandboxes_use() {
    let net = Internet::start(NAMES).await.expect("test internet");
    net.wait_ready().await.expect("test servers");
    let upstream = net.dns.to_string();
    let mut d = Daemon::start_with(&["--dns-upstream", &upstream, "--meter-interval", "1s"])
        .await
        .expect("daemon starts");
    d.ensure_template("base").await.expect("base template");
    let sb = d
        .create_sandbox(json!({
            "metadata": {"task": "t-42"},
            "network": {"allow": ["files.example.test"]},
        }))
        .await;
    let id = sb.id.as_str();

    // CPU: spinning for 8 s is metered as the host's cgroup accounting
    // counts it (gVisor's own clock counts the time the host preempted
    // it too), and at most 8 s and a little: its one CPU cannot do more.
    let host_before = host_cpu_seconds(id);
    let before = settled(&d, id).await;
    let out = d
        .sh(id, &format!("python3 -c '{}'", BURN.replace("{s}", "8")))
        .await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    let inside: f64 = out.stdout_str().trim().parse().unwrap();
    let host = host_cpu_seconds(id) - host_before;
    let after = settled(&d, id).await;
    let metered = f(&after, "cpu_seconds") - f(&before, "cpu_seconds");
    assert!(
        (metered - host).abs() <= 0.5 && metered > 1.0 && metered <= 9.0,
        "metered {metered} CPU-s for 8 s spinning; the host counted {host}, gVisor {inside}"
    );
    assert!(f(&after, "running_seconds") > 5.0, "{after}");
    assert!(f(&after, "memory_gib_seconds") > 0.0, "{after}");
    assert!(f(&after, "disk_gib_hours") > 0.0, "{after}");

    // Traffic: a 20 MB download is counted within 5 % (headers included).
    let out = d
        .sh(
            id,
            "curl -sS -m 60 -o /tmp/blob http://files.example.test/bytes/20000000 && stat -c %s /tmp/blob",
        )
        .await;
    assert_eq!(out.stdout_str().trim(), "20000000", "{}", out.stderr_str());
    let traffic = settled(&d, id).await;
    let received = traffic["ingress_bytes"].as_u64().unwrap() as f64;
    assert!(
        (received - 20e6).abs() <= 0.05 * 20e6,
        "20 MB downloaded, {received} bytes metered"
    );

    // An upload goes through the egress proxy: its bytes are counted as
    // egress when the connection ends (payload only, no headers).
    let sent_before = traffic["egress_bytes"].as_u64().unwrap() as f64;
    let out = d
        .sh(
            id,
            "head -c 10000000 /dev/zero > /tmp/up && curl -sS -m 60 --data-binary @/tmp/up http://files.example.test/upload",
        )
        .await;
    assert_eq!(
        out.stdout_str().trim(),
        "received=10000000",
        "{}",
        out.stderr_str()
    );
    let traffic = settled(&d, id).await;
    let sent = traffic["egress_bytes"].as_u64().unwrap() as f64 - sent_before;
    assert!(
        (sent - 10e6).abs() <= 0.05 * 10e6,
        "10 MB uploaded, {sent} bytes metered"
    );

    // The proxy's decisions and relayed bytes are in /metrics.
    let metrics = d.get_text("/metrics").await;
    let relayed_sent: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("warren_egress_relayed_bytes_total{kind=\"http\",direction=\"sent\"} ")
        })
        .unwrap_or_else(|| panic!("no relayed bytes in {metrics}"))
        .parse()
        .unwrap();
    assert!(relayed_sent >= 10e6, "{relayed_sent}");
    assert!(
        metrics
            .contains("warren_egress_decisions_total{kind=\"http\",verdict=\"allow\",reason=\"\"}"),
        "{metrics}"
    );

    // A daemon restart keeps the sums and does not count CPU twice.
    let cpu_before_restart = f(&traffic, "cpu_seconds");
    d.restart().await.expect("daemon restarts");
    let restarted = settled(&d, id).await;
    let cpu = f(&restarted, "cpu_seconds");
    assert!(
        cpu >= cpu_before_restart && cpu < cpu_before_restart + 1.0,
        "{cpu_before_restart} CPU-s before the restart, {cpu} after"
    );

    // Paused: time accrues as paused (or standby), CPU does not.
    let (status, body) = d
        .call(&d.key, "POST", &format!("/v1/sandboxes/{id}/pause"), None)
        .await;
    assert!((200..300).contains(&status), "{body}");
    let paused_at = settled(&d, id).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = settled(&d, id).await;
    let asleep = |u: &Value| f(u, "paused_seconds") + f(u, "standby_seconds");
    assert!(
        asleep(&later) - asleep(&paused_at) >= 3.0,
        "{paused_at} then {later}"
    );
    assert!(
        (f(&later, "cpu_seconds") - f(&paused_at, "cpu_seconds")).abs() < 0.05,
        "{paused_at} then {later}"
    );
    assert!(f(&later, "snapshot_gib_hours") > 0.0, "{later}");
    let (status, body) = d
        .call(&d.key, "POST", &format!("/v1/sandboxes/{id}/resume"), None)
        .await;
    assert!((200..300).contains(&status), "{body}");

    // Forks meter on their own; the task's cost is the sum of its sandboxes'.
    let (status, forked) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{id}/fork"),
            Some(json!({"count": 2})),
        )
        .await;
    assert!((200..300).contains(&status), "{forked}");
    let branches: Vec<String> = forked["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let out = d
        .sh(
            &branches[0],
            &format!("python3 -c '{}'", BURN.replace("{s}", "2")),
        )
        .await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    let branch = settled(&d, &branches[0]).await;
    assert!(f(&branch, "cpu_seconds") >= 1.5, "{branch}");
    let mut all = vec![id.to_owned()];
    all.extend(branches);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let by_task: Value = d
        .get_json("/v1/usage?group_by=metadata.task&since=1h")
        .await;
    let by_sandbox: Value = d.get_json("/v1/usage?group_by=sandbox&since=1h").await;
    let task = by_task["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "t-42")
        .unwrap_or_else(|| panic!("no t-42 in {by_task}"));
    assert_eq!(task["sandboxes"], 3, "{by_task}");
    let (mut cpu_sum, mut cost_sum) = (0.0, 0.0);
    for g in by_sandbox["groups"].as_array().unwrap() {
        if all.iter().any(|id| g["key"] == id.as_str()) {
            cpu_sum += f(&g["usage"], "cpu_seconds");
            cost_sum += f(&g["usage"]["cost"], "total");
        }
    }
    // The meter may take a sample between the two reports: a little slack.
    let task_cpu = f(&task["usage"], "cpu_seconds");
    assert!((task_cpu - cpu_sum).abs() < 0.3, "{task_cpu} vs {cpu_sum}");
    let task_cost = f(&task["usage"]["cost"], "total");
    assert!(
        (task_cost - cost_sum).abs() <= 0.02 * cost_sum,
        "{task_cost} vs {cost_sum}"
    );

    // The CLI prints the same report as a table.
    let out = d.run_cli(&["usage", "--by", "metadata.task", "--since", "1h"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("t-42") && text.contains("USD"), "{text}");

    // A budget already spent, set with the CLI: the meter's next sample
    // pauses the team's running sandboxes, and a create is refused (402).
    let out = d.run_cli(&[
        "budget", "create", "--period", "day", "--amount", "0.000001", "--action", "pause",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running: Value = d.get_json("/v1/sandboxes?state=running").await;
        if running["sandboxes"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {running}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, body) = d
        .call(&d.key, "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["code"], "budget_exceeded", "{body}");
    let out = d.run_cli(&["budget", "ls"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("EXCEEDED"), "{text}");
}

/// The rules that fired on sandbox `id`, as its timeline tells them.
async fn fired(d: &Daemon, id: &str) -> Vec<String> {
    let timeline: Value = d.get_json(&format!("/v1/sandboxes/{id}/timeline")).await;
    timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rule")
        .map(|e| e["summary"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until sandbox `id` is in `state` (`gone` once it is killed: the
/// API no longer lists it).
async fn reaches(d: &Daemon, id: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, info) = d
            .call(&d.key, "GET", &format!("/v1/sandboxes/{id}"), None)
            .await;
        let now = if status == 404 {
            "gone"
        } else {
            info["state"].as_str().unwrap_or("?")
        };
        if now == state {
            return;
        }
        assert!(Instant::now() < deadline, "not {state}: {status} {info}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn sandbox_rules_act_on_cpu_denials_process_age_and_forks() {
    let d = Daemon::start_with(&["--meter-interval", "1s"])
        .await
        .expect("daemon starts");
    d.ensure_template("base").await.expect("base template");
    let out = d.run_cli(&[
        "rules",
        "set",
        "--rule",
        "cpu:0.5:3:pause",
        "--rule",
        "egress_denials:20:0:kill",
        "--rule",
        "process_age:4:0:notify",
        "--rule",
        "forks:2:0:notify",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calm = d.create_sandbox(json!({})).await;
    let busy = d.create_sandbox(json!({})).await;
    let noisy = d.create_sandbox(json!({})).await;
    let sleeper = d.create_sandbox(json!({})).await;
    let spin = "nohup python3 -c 'while True: pass' >/dev/null 2>&1 &";
    let out = d.sh(busy.id.as_str(), spin).await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    // Names the default policy refuses, asked for again and again.
    let knock =
        "for i in $(seq 200); do curl -s -m 1 http://blocked$i.example.test/ >/dev/null; done";
    let _ = d
        .exec(
            noisy.id.as_str(),
            json!({"cmd": ["bash", "-c", format!("nohup bash -c '{knock}' >/dev/null 2>&1 &")]}),
        )
        .await;
    // A command that runs on (its exec call waits in the background).
    let long = d
        .post(&format!("/v1/sandboxes/{}/exec", sleeper.id))
        .json(&json!({"cmd": ["sleep", "600"]}))
        .send();
    let _long = tokio::spawn(long);

    // CPU pegged for 3 s: paused.
    reaches(&d, busy.id.as_str(), "paused").await;
    let busy_fired = fired(&d, busy.id.as_str()).await;
    assert_eq!(
        busy_fired
            .iter()
            .filter(|s| s.starts_with("rule cpu fired"))
            .count(),
        1,
        "{busy_fired:?}"
    );
    // Refused lookups at more than 20 a minute: killed.
    reaches(&d, noisy.id.as_str(), "gone").await;
    let noisy_fired = fired(&d, noisy.id.as_str()).await;
    assert!(
        noisy_fired
            .iter()
            .any(|s| s.starts_with("rule egress_denials fired")),
        "{noisy_fired:?}"
    );
    // A command running for more than 4 s: noticed, left running; then a
    // burst of forks of the same sandbox.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fired(&d, sleeper.id.as_str())
        .await
        .iter()
        .any(|s| s.starts_with("rule process_age fired"))
    {
        assert!(Instant::now() < deadline, "process_age never fired");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, forked) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/fork", sleeper.id),
            Some(json!({"count": 3})),
        )
        .await;
    assert_eq!(status, 201, "{forked}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fired(&d, sleeper.id.as_str())
        .await
        .iter()
        .any(|s| s.starts_with("rule forks fired"))
    {
        assert!(Instant::now() < deadline, "forks never fired");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let info: Value = d.get_json(&format!("/v1/sandboxes/{}", sleeper.id)).await;
    assert_eq!(info["state"], "running", "notify leaves it running: {info}");
    // The idle sandbox is left alone.
    let info: Value = d.get_json(&format!("/v1/sandboxes/{}", calm.id)).await;
    assert_eq!(info["state"], "running", "{info}");
    assert_eq!(fired(&d, calm.id.as_str()).await, Vec::<String>::new());
}
