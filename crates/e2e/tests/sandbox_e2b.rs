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

/// `key` spelled `e2b_<hex>`, as SDKs of the 2.4x era require.
fn e2b_spelling(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("e2b_{hex}")
}

/// Runs `cmd` with the SDK pointed at `d`; panics with its output (and the
/// daemon's log) unless it succeeds.
fn run_sdk(d: &Daemon, mut cmd: Command) {
    if !cmd.get_envs().any(|(k, _)| k == "E2B_API_KEY") {
        cmd.env("E2B_API_KEY", &d.key);
    }
    let program = PathBuf::from(cmd.get_program());
    assert!(
        program.is_relative() || program.exists(),
        "{} is missing: run scripts/deps.sh to create the E2B SDK environments",
        program.display()
    );
    let out = cmd
        .env("E2B_API_URL", &d.url)
        .env("E2B_SANDBOX_URL", &d.url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("E2B_DEBUG")
        .env_remove("E2B_DOMAIN")
        .env_remove("E2B_ACCESS_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}\n--- daemon log ---\n{}",
        out.status,
        d.log()
    );
    println!("{text}");
}

fn pytest(venv: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(workspace_target().join(venv).join("bin/pytest"));
    cmd.args(args).current_dir(suite_dir());
    cmd
}

/// Both Python SDK generations against one daemon: the whole suite (sync
/// and async) with the current `e2b`, then the core flow with 2.45.x (which
/// insists on keys spelled `e2b_<hex>`: the daemon takes that spelling too).
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_python_sdk() {
    let d = Daemon::with_base().await;
    tokio::task::block_in_place(|| {
        run_sdk(&d, pytest("e2b-venv", &[]));
        let mut old = pytest("e2b-venv-2.45", &["test_core.py"]);
        old.env("E2B_API_KEY", e2b_spelling(&d.key));
        run_sdk(&d, old);
    });
}

/// The core flow through the npm `e2b` package under node.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_node_sdk() {
    let d = Daemon::with_base().await;
    let modules = workspace_target().join("e2b-node/node_modules");
    assert!(
        modules.join("e2b").exists(),
        "{} is missing: run scripts/deps.sh",
        modules.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg("core.cjs")
        .current_dir(suite_dir().join("node"))
        .env("NODE_PATH", &modules);
    tokio::task::block_in_place(|| run_sdk(&d, cmd));
}
