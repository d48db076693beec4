//! The official E2B SDKs against a real daemon and real sandboxes: the
//! suites in `tests/e2b/` drive Warren only through the SDK, configured by
//! the environment alone (`E2B_API_URL`, `E2B_SANDBOX_URL`, `E2B_API_KEY`).
//! The SDK environments are made by `scripts/deps.sh` under `target/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use warren_e2e::{Daemon, workspace_target};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2b")
}

/// Runs `program args…` with the SDK pointed at `d`; panics with its output
/// (and the daemon's log) unless it succeeds.
fn run_sdk(d: &Daemon, program: &Path, args: &[&str]) {
    assert!(
        program.exists(),
        "{} is missing: run scripts/deps.sh to create the E2B SDK environments",
        program.display()
    );
    let out = Command::new(program)
        .args(args)
        .current_dir(suite_dir())
        .env("E2B_API_URL", &d.url)
        .env("E2B_SANDBOX_URL", &d.url)
        .env("E2B_API_KEY", &d.key)
        .env_remove("E2B_DEBUG")
        .env_remove("E2B_DOMAIN")
        .env_remove("E2B_ACCESS_TOKEN")
        .output()
        .expect("the SDK suite starts");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{text}\n--- daemon log ---\n{}",
        program.display(),
        out.status,
        d.log()
    );
    println!("{text}");
}

fn pytest(venv: &str) -> PathBuf {
    workspace_target().join(venv).join("bin/pytest")
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_python_sdk() {
    let d = Daemon::with_base().await;
    tokio::task::block_in_place(|| run_sdk(&d, &pytest("e2b-venv"), &[]));
}
