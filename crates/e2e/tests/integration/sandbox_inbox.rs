//! Events reach processes inside real sandboxes: taken with the sandbox
//! token in order, acknowledged once, handed out again until then; a
//! paused sandbox (standby and image) is woken by an event unless its wake
//! policy says otherwise; an `on_event` handler runs per event and
//! acknowledges by exiting 0; 1,000 events arrive in order, none lost and
//! none again after acknowledgement, while the daemon is killed with
//! SIGKILL at points of the run.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use warren_e2e::Daemon;

/// A client of the inbox inside the sandbox: `take AFTER WAIT` prints the
/// answer of `GET /v1/self/events`, `ack SEQ` acknowledges.
const INBOX_PY: &str = r#"
import json, os, sys, urllib.request
def call(method, path, body=None):
    token = open(os.environ["WARREN_SANDBOX_TOKEN_FILE"]).read().strip()
    req = urllib.request.Request(
        os.environ["WARREN_API_URL"] + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=90) as r:
        return json.load(r)
if sys.argv[1] == "take":
    print(json.dumps(call("GET", "/v1/self/events?after=%s&wait=%s" % (sys.argv[2], sys.argv[3]))))
else:
    print(json.dumps(call("POST", "/v1/self/events/ack", {"seq": int(sys.argv[2])})))
"#;

async fn install_client(d: &Daemon, id: &str) {
    let out = d
        .sh(id, &format!("cat > /tmp/inbox.py <<'EOF'\n{INBOX_PY}\nEOF"))
        .await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
}

/// Runs the in-sandbox client; its JSON answer.
async fn inside(d: &Daemon, id: &str, args: &[&str]) -> Value {
    let mut cmd = vec!["python3", "/tmp/inbox.py"];
    cmd.extend(args);
    let out = d.exec(id, json!({ "cmd": cmd })).await;
    assert_eq!(out.exit_code, Some(0), "{}\n{}", out.stderr_str(), d.log());
    serde_json::from_str(&out.stdout_str()).unwrap()
}

async fn send(d: &Daemon, id: &str, kind: &str, data: Value) -> u64 {
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{id}/events"),
            Some(json!({"type": kind, "source": "test", "data": data})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body["seq"].as_u64().unwrap()
}

fn seqs(answer: &Value) -> Vec<u64> {
    answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

async fn state(d: &Daemon, id: &str) -> String {
    let info: Value = d.get_json(&format!("/v1/sandboxes/{id}")).await;
    info["state"].as_str().unwrap().to_owned()
}

async fn until_state(d: &Daemon, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while state(d, id).await != want {
        assert!(
            Instant::now() < deadline,
            "sandbox {id} never became {want}:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sandbox_events_are_taken_inside_in_order_and_acknowledged_once() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    install_client(&d, &sb.id).await;
    for i in 1..=3 {
        assert_eq!(send(&d, &sb.id, "ci.finished", json!({"run": i})).await, i);
    }
    let first = inside(&d, &sb.id, &["take", "0", "0"]).await;
    assert_eq!(seqs(&first), [1, 2, 3]);
    assert_eq!(first["events"][1]["data"]["run"], 2);
    assert_eq!(first["events"][0]["type"], "ci.finished");

    let acked = inside(&d, &sb.id, &["ack", "2"]).await;
    assert_eq!(acked["acked_seq"], 2);
    let again = inside(&d, &sb.id, &["take", "0", "0"]).await;
    assert_eq!(
        seqs(&again),
        [3],
        "what is not acknowledged is handed out again, what is is not"
    );
    let listed: Value = d.get_json(&format!("/v1/sandboxes/{}/events", sb.id)).await;
    let states: Vec<&str> = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["delivery"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["acknowledged", "acknowledged", "delivered"]);

    // A long-poll returns when the next event arrives.
    let waiter = inside(&d, &sb.id, &["take", "3", "30"]);
    let sender = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        send(&d, &sb.id, "review.comment", json!({"body": "lgtm"})).await
    };
    let (woken, seq) = tokio::join!(waiter, sender);
    assert_eq!(seqs(&woken), [seq]);
    assert_eq!(woken["events"][0]["data"]["body"], "lgtm");

    // An API key cannot take a sandbox's events; a sandbox cannot ack
    // beyond its inbox.
    let (status, _) = d.call(&d.key, "GET", "/v1/self/events", None).await;
    assert_eq!(status, 403);
    let out = d
        .exec(
            &sb.id,
            json!({"cmd": ["python3", "/tmp/inbox.py", "ack", "99"]}),
        )
        .await;
    assert_ne!(out.exit_code, Some(0));
    assert!(out.stderr_str().contains("400"), "{}", out.stderr_str());
}

async fn woken_by_an_event(standby: &str) {
    let d = Daemon::with_base_and(&["--standby", standby]).await;
    let sb = d.create_sandbox(json!({"persistent": true})).await;
    install_client(&d, &sb.id).await;
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/pause", sb.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seq = send(&d, &sb.id, "ci.finished", json!({"ok": true})).await;
    until_state(&d, &sb.id, "running").await;
    let got = inside(&d, &sb.id, &["take", "0", "10"]).await;
    assert_eq!(seqs(&got), [seq], "standby {standby}");

    // A wake policy that does not name the type leaves it asleep; the event
    // waits for the next resume.
    let (status, body) = d
        .call(
            &d.key,
            "PUT",
            &format!("/v1/sandboxes/{}/wake", sb.id),
            Some(json!({"on": ["github.*"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["on"], json!(["github.*"]));
    let (status, _) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/pause", sb.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let quiet = send(&d, &sb.id, "reminder", json!({})).await;
    let woke = send(&d, &sb.id, "github.check_suite", json!({})).await;
    until_state(&d, &sb.id, "running").await;
    let got = inside(&d, &sb.id, &["take", &seq.to_string(), "0"]).await;
    assert_eq!(seqs(&got), [quiet, woke], "standby {standby}");
}

#[tokio::test]
async fn sandbox_paused_in_standby_is_woken_by_an_event() {
    woken_by_an_event("60s").await;
}

#[tokio::test]
async fn sandbox_paused_to_an_image_is_woken_by_an_event() {
    woken_by_an_event("0").await;
}

/// Waits until every event of the inbox is acknowledged; the listing.
async fn until_all_acknowledged(d: &Daemon, id: &str, count: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed: Value = d
            .get_json(&format!("/v1/sandboxes/{id}/events?limit=1000"))
            .await;
        let events = listed["events"].as_array().unwrap();
        if events.len() == count && events.iter().all(|e| e["delivery"] == "acknowledged") {
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "not all acknowledged: {listed}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sandbox_handler_runs_per_event_in_order_and_retries_until_it_succeeds() {
    let d = Daemon::with_base().await;
    // The handler appends each event to a file; it fails while
    // /tmp/closed exists.
    let handler =
        "test ! -e /tmp/closed || exit 3; cat >> /tmp/events.jsonl; echo >> /tmp/events.jsonl";
    let sb = d
        .create_sandbox(json!({"on_event": {"cmd": ["bash", "-c", handler]}}))
        .await;
    for i in 0..5 {
        send(&d, &sb.id, "ci.step", json!({"i": i})).await;
    }
    until_all_acknowledged(&d, &sb.id, 5).await;
    let lines = d.sh(&sb.id, "cat /tmp/events.jsonl").await.stdout_str();
    let handled: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let order: Vec<(u64, u64)> = handled
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e["data"]["i"].as_u64().unwrap()))
        .collect();
    assert_eq!(order, [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)]);

    // A failing handler leaves its event unacknowledged and runs again.
    d.sh(&sb.id, "touch /tmp/closed").await;
    send(&d, &sb.id, "ci.step", json!({"i": 5})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed: Value = d
        .get_json(&format!("/v1/sandboxes/{}/events?after=5", sb.id))
        .await;
    assert_ne!(listed["events"][0]["delivery"], "acknowledged", "{listed}");
    d.sh(&sb.id, "rm /tmp/closed").await;
    until_all_acknowledged(&d, &sb.id, 6).await;
    let count = d
        .sh(&sb.id, "grep -c . /tmp/events.jsonl")
        .await
        .stdout_str();
    assert_eq!(count.trim(), "6", "the sixth ran once it succeeded");
}

/// Long-polls, records each event the first time it sees it, acknowledges
/// each batch, and counts any event handed out again after it was
/// acknowledged. Daemon restarts are connection errors: it retries.
const CONSUMER_PY: &str = r#"
import json, os, time, urllib.request
def call(method, path, body=None):
    token = open(os.environ["WARREN_SANDBOX_TOKEN_FILE"]).read().strip()
    req = urllib.request.Request(
        os.environ["WARREN_API_URL"] + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=40) as r:
        return json.load(r)
seen, acked, violations = [], 0, 0
out = open("/tmp/seen", "a")
while len(seen) < TOTAL:
    try:
        got = call("GET", "/v1/self/events?wait=20&limit=200")["events"]
        for e in got:
            if e["seq"] <= acked:
                violations += 1
            elif not seen or e["seq"] > seen[-1]:
                seen.append(e["seq"])
                out.write("%d %d\n" % (e["seq"], e["data"]["i"]))
        out.flush()
        if got:
            acked = max(acked, call("POST", "/v1/self/events/ack", {"seq": got[-1]["seq"]})["acked_seq"])
    except Exception as e:
        time.sleep(0.2)
open("/tmp/violations", "w").write(str(violations))
"#;

#[tokio::test]
async fn sandbox_thousand_events_arrive_in_order_once_through_daemon_kills() {
    const TOTAL: u64 = 1000;
    let mut d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({"timeout_s": 3600})).await;
    let consumer = CONSUMER_PY.replace("TOTAL", &TOTAL.to_string());
    let start = format!(
        "cat > /tmp/consumer.py <<'EOF'\n{consumer}\nEOF\n\
         (python3 /tmp/consumer.py >/tmp/consumer.log 2>&1 &)"
    );
    assert_eq!(d.sh(&sb.id, &start).await.exit_code, Some(0));

    // Kill points spread over the run, different each run.
    let salt = u64::from(std::process::id()) % 97;
    let kills = [150 + salt, 480 + 2 * salt, 820 + salt];
    let path = format!("/v1/sandboxes/{}/events", sb.id);
    for i in 0..TOTAL {
        if kills.contains(&i) {
            d.stop_with(Signal::SIGKILL).unwrap();
            d.restart().await.unwrap();
        }
        let body = json!({"type": "load", "source": "test", "data": {"i": i},
                          "dedupe_key": format!("load-{i}")});
        loop {
            let sent = d.post(&path).json(&body).send().await;
            match sent {
                Ok(resp) if resp.status() == 202 => {
                    let got: Value = resp.json().await.unwrap();
                    assert_eq!(got["seq"], i + 1, "numbers follow the sends");
                    break;
                }
                Ok(resp) if resp.status().is_server_error() => {}
                Ok(resp) => panic!("send {i}: {} {}", resp.status(), d.log()),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = d.sh(&sb.id, "cat /tmp/violations 2>/dev/null").await;
        if !out.stdout_str().is_empty() {
            assert_eq!(
                out.stdout_str(),
                "0",
                "events handed out again after acknowledgement"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "consumer did not finish: {}",
            d.sh(&sb.id, "tail -3 /tmp/seen; cat /tmp/consumer.log")
                .await
                .stdout_str()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seen = d.sh(&sb.id, "cat /tmp/seen").await.stdout_str();
    let pairs: Vec<(u64, u64)> = seen
        .lines()
        .map(|l| {
            let (s, i) = l.split_once(' ').unwrap();
            (s.parse().unwrap(), i.parse().unwrap())
        })
        .collect();
    let want: Vec<(u64, u64)> = (0..TOTAL).map(|i| (i + 1, i)).collect();
    assert_eq!(pairs, want, "every event once, in order");
    let inbox: Value = d.get_json(&format!("{path}?after={}", TOTAL - 1)).await;
    assert_eq!(inbox["events"][0]["delivery"], "acknowledged");
}

#[tokio::test]
async fn sandbox_fork_branches_read_on_from_the_parents_inbox_and_then_apart() {
    let d = Daemon::with_base().await;
    let parent = d.create_sandbox(json!({})).await;
    install_client(&d, &parent.id).await;
    for i in 1..=3 {
        send(&d, &parent.id, "ci.step", json!({"i": i})).await;
    }
    inside(&d, &parent.id, &["ack", "1"]).await;
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/fork", parent.id),
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let branch = body["sandboxes"][0]["id"].as_str().unwrap().to_owned();

    // The branch holds what its parent had not acknowledged, under the
    // same numbers, and numbers on from there.
    let got = inside(&d, &branch, &["take", "0", "0"]).await;
    assert_eq!(seqs(&got), [2, 3]);
    assert_eq!(got["acked_seq"], 1);
    let to_parent = send(&d, &parent.id, "parent.only", json!({})).await;
    let to_branch = send(&d, &branch, "branch.only", json!({})).await;
    assert_eq!((to_parent, to_branch), (4, 4));
    let got = inside(&d, &branch, &["take", "3", "0"]).await;
    assert_eq!(got["events"][0]["type"], "branch.only");
    let got = inside(&d, &parent.id, &["take", "3", "0"]).await;
    assert_eq!(got["events"][0]["type"], "parent.only");
    assert_eq!(seqs(&got), [4]);
}
