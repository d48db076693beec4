//! What a gone sandbox may not leave on the host, and orphans of the
//! daemon's own state: looked for until none is left or [`SETTLE`] has
//! passed (teardown runs in the background after a restart).
//!
//! For each gone sandbox `id`: `/run/netns/warren-<id>`, its host veth
//! (`wv` and the id's first characters), a runsc container named `id` in
//! the daemon's runsc root (`<data>/runtime/runsc`), a mount or a loop
//! device backed by a file under `<data>/runtime/sandboxes/<id>`, and that
//! directory. For the daemon: a runsc container of a sandbox the store
//! does not list as running, and an image directory under
//! `<data>/snapshots/images` that no snapshot row (nor template snapshot)
//! names.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Daemon;

const SETTLE: Duration = Duration::from_secs(30);

/// The leaks still there after waiting for them to go.
pub async fn settled(
    d: &Daemon,
    gone: &BTreeSet<String>,
    running: &HashSet<String>,
) -> Vec<String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let found = leaks(d, gone, running);
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn leaks(d: &Daemon, gone: &BTreeSet<String>, running: &HashSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let data = d.data_dir();
    let containers = runsc_containers(&data.join("runtime/runsc"));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let loops = host("losetup", &["-a"]);
    for id in gone {
        let dir = data.join("runtime/sandboxes").join(id);
        let dir_s = dir.to_string_lossy();
        if Path::new("/run/netns")
            .join(format!("warren-{id}"))
            .exists()
        {
            found.push(format!("{id}: network namespace warren-{id}"));
        }
        let veth: String = format!("wv{}", &id[..id.len().min(13)]);
        if Path::new("/sys/class/net").join(&veth).exists() {
            found.push(format!("{id}: veth {veth}"));
        }
        if containers.contains(id) {
            found.push(format!("{id}: runsc container"));
        }
        for m in mounts.lines() {
            if m.split(' ').nth(4).is_some_and(|p| p.starts_with(&*dir_s)) {
                found.push(format!("{id}: mount {m}"));
            }
        }
        for l in loops.lines().filter(|l| l.contains(&*dir_s)) {
            found.push(format!("{id}: loop device {l}"));
        }
        if dir.exists() {
            found.push(format!("{id}: directory {}", dir.display()));
        }
    }
    for c in &containers {
        if !running.contains(c) && !gone.contains(c) {
            found.push(format!("runsc container {c} of no running sandbox"));
        }
    }
    let named: HashSet<String> = host(
        "sqlite3",
        &[
            "-readonly",
            &data.join("warren.db").to_string_lossy(),
            "SELECT id FROM snapshots WHERE deleted_at IS NULL \
             UNION SELECT snapshot FROM template_snapshots",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect();
    if let Ok(images) = std::fs::read_dir(data.join("snapshots/images")) {
        for image in images.flatten() {
            let name = image.file_name().to_string_lossy().into_owned();
            if !named.contains(&name) {
                found.push(format!("snapshot image {name} no row names"));
            }
        }
    }
    found
}

/// Container ids runsc lists under `root`.
fn runsc_containers(root: &Path) -> HashSet<String> {
    host(
        "timeout",
        &[
            "5",
            "runsc",
            "--root",
            &root.to_string_lossy(),
            "list",
            "-quiet",
        ],
    )
    .lines()
    .map(|l| l.trim().to_owned())
    .filter(|l| !l.is_empty())
    .collect()
}

/// Runs a host tool; its standard output (empty when it cannot run).
fn host(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
