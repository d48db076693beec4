//! Lifecycle end to end: restart with live sandboxes, isolation, limits, and
//! leak-free teardown.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;
use warren_api_types::Sandbox;
use warren_e2e::Daemon;

/// The sandbox's own IPv4 address, asked from inside (a UDP connect sends
/// nothing).
async fn inside_ip(d: &Daemon, id: &str) -> String {
    let out = d.sh_root(id,
        "python3 -c \"import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.connect(('192.0.2.1',9));print(s.getsockname()[0])\"",
    )
    .await;
    out.stdout_str().trim().to_owned()
}

#[tokio::test]
async fn sandbox_survives_daemon_restart() {
    let mut d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    d.sh_root(&sb.id, "echo kept > /tmp/state; (sleep 1000 &) ; true")
        .await;

    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        d.stop_with(signal).unwrap();
        d.restart().await.unwrap();
        let info: Sandbox = d.get_json(&format!("/v1/sandboxes/{}", sb.id)).await;
        assert_eq!(info.state, "running", "after {signal}:\n{}", d.log());
        let out = d
            .sh_root(
                &sb.id,
                "cat /tmp/state; pgrep -x sleep >/dev/null && echo alive",
            )
            .await;
        assert_eq!(out.stdout_str(), "kept\nalive\n", "after {signal}");
    }
}

#[tokio::test]
async fn sandbox_isolation() {
    let d = Daemon::with_base().await;
    let a = d.create_sandbox(json!({})).await;
    let b = d.create_sandbox(json!({})).await;

    // Files and processes.
    d.sh_root(&a.id, "echo secret > /tmp/a-only; (sleep 4242 &); true")
        .await;
    let out = d.sh_root(&b.id, "cat /tmp/a-only 2>&1; ps -eo args").await;
    assert!(
        out.stdout_str().contains("No such file"),
        "{}",
        out.stdout_str()
    );
    assert!(
        !out.stdout_str().contains("sleep 4242"),
        "B sees A's process"
    );
    for host_only in ["warren serve", "runsc", "cargo", "systemd"] {
        assert!(
            !out.stdout_str().contains(host_only),
            "sandbox sees host process {host_only}:\n{}",
            out.stdout_str()
        );
    }

    // Network: B cannot reach A's server, the host, or cloud metadata.
    d.sh_root(
        &a.id,
        "(python3 -m http.server 8000 --bind 0.0.0.0 >/dev/null 2>&1 &); sleep 1",
    )
    .await;
    let a_ip = inside_ip(&d, &a.id).await;
    let b_ip = inside_ip(&d, &b.id).await;
    assert_ne!(a_ip, b_ip);
    let ok = d
        .sh_root(
            &a.id,
            "curl -s -m 3 -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/",
        )
        .await;
    assert_eq!(ok.stdout_str(), "200", "A's own server should answer");

    let host = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    let gateway = {
        let mut octets: Vec<u8> = b_ip.split('.').map(|o| o.parse().unwrap()).collect();
        octets[3] -= 1;
        format!("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3])
    };
    for target in [
        format!("http://{a_ip}:8000/"),
        "http://169.254.169.254/".to_owned(),
        format!("http://{gateway}:{host_port}/"),
    ] {
        let out = d
            .sh_root(
                &b.id,
                &format!("curl -s -m 3 -o /dev/null -w '%{{http_code}}' {target}; echo \" rc=$?\""),
            )
            .await;
        assert!(
            !out.stdout_str().starts_with("200") && !out.stdout_str().contains("rc=0"),
            "B reached {target}: {}",
            out.stdout_str()
        );
    }
}

#[tokio::test]
async fn sandbox_memory_limit_kills_inside_only() {
    let d = Daemon::with_base().await;
    let small = d.create_sandbox(json!({"memory_mb": 128})).await;
    let other = d.create_sandbox(json!({})).await;
    let out = d
        .sh_root(&small.id, "awk '/MemTotal/ {print $2}' /proc/meminfo")
        .await;
    let kb: u64 = out.stdout_str().trim().parse().unwrap();
    assert!(kb <= 160 * 1024, "MemTotal {kb} kB for a 128 MiB sandbox");

    let resp = d
        .post(&format!("/v1/sandboxes/{}/exec", small.id))
        .json(&json!({"cmd": ["python3", "-c", "x = bytearray(600 * 1024 * 1024); print('survived')"]}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap_or_default();
    assert!(
        !text.contains("survived"),
        "allocation beyond the limit succeeded"
    );

    // The daemon and the other sandbox are unaffected.
    assert_unaffected(&d, &other.id).await;
}

/// The daemon answers and `other` still runs commands.
async fn assert_unaffected(d: &Daemon, other: &str) {
    let health = d
        .http
        .get(format!("{}/v1/health", d.url))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    assert_eq!(d.sh_root(other, "echo fine").await.stdout_str(), "fine\n");
}

/// Waits until no host-side trace of `ids` is left, failing after `limit`.
async fn wait_until_clean(ids: &BTreeSet<String>, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = traces(ids);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "teardown leaked:\n{}",
            left.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Host-side traces of a sandbox id: network namespaces, interfaces, cgroup
/// directories and processes.
fn traces(ids: &BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let prefixes: Vec<&str> = ids.iter().map(|id| &id[..10]).collect();
    let mut check = |what: &str, text: &str| {
        for p in &prefixes {
            if text.contains(p) {
                found.push(format!("{what} still mentions {p}"));
            }
        }
    };
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    check("ip netns", &run("ip", &["netns", "list"]));
    check("ip link", &run("ip", &["-o", "link"]));
    check("ps", &run("ps", &["-eo", "args"]));
    check(
        "cgroups",
        &run("find", &["/sys/fs/cgroup", "-maxdepth", "4", "-type", "d"]),
    );
    check(
        "mounts",
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
    );
    found
}

#[tokio::test]
async fn sandbox_create_kill_cycles_leave_nothing_behind() {
    let d = Daemon::with_base().await;
    let mut ids = BTreeSet::new();
    for _ in 0..100 {
        let sb = d.create_sandbox(json!({})).await;
        let resp = d
            .delete(&format!("/v1/sandboxes/{}", sb.id))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        ids.insert(sb.id);
    }
    wait_until_clean(&ids, Duration::from_secs(180)).await;
    let runsc_root = d.data_dir().join("runtime/runsc");
    let listed = std::process::Command::new("runsc")
        .arg("--root")
        .arg(&runsc_root)
        .arg("list")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.lines().count() <= 1,
        "runsc still lists containers:\n{listed}"
    );
}

#[tokio::test]
async fn sandbox_fork_bomb_stays_inside() {
    let d = Daemon::with_base().await;
    let bombed = d.create_sandbox(json!({})).await;
    let other = d.create_sandbox(json!({})).await;
    // The pids limit stops the bomb; the exec may end either way.
    let _ = d
        .post(&format!("/v1/sandboxes/{}/exec", bombed.id))
        .json(&json!({"cmd": ["bash", "-c", "bomb() { bomb | bomb & }; bomb; sleep 5"]}))
        .timeout(Duration::from_secs(45))
        .send()
        .await;
    assert_unaffected(&d, &other.id).await;
    // The bombed sandbox can still be killed and torn down.
    let resp = d
        .delete(&format!("/v1/sandboxes/{}", bombed.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let ids = BTreeSet::from([bombed.id.clone()]);
    wait_until_clean(&ids, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn sandbox_a_second_daemon_on_one_data_directory_is_refused() {
    let d = Daemon::start().await.expect("daemon starts");
    let out = std::process::Command::new(Daemon::warren_bin())
        .args(["serve", "--listen", "127.0.0.1:1", "--data-dir"])
        .arg(d.data_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("another warren daemon") && text.contains(&d.pid().unwrap().to_string()),
        "{text}"
    );
    // The first one is untouched.
    let health = d.get("/v1/health").send().await.unwrap();
    assert!(health.status().is_success());
}
