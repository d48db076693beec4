//! The dashboard in a real browser against a real daemon and real
//! sandboxes: `tests/dashboard/fleet.py` drives Debian's Chromium through
//! Playwright (both installed by `scripts/deps.sh`; no browser download).
//! It logs in with the admin key, sees a sandbox created through the API
//! appear live, kills it with the page's button, checks that a viewer gets
//! no kill button and a 403 from the API, that the page's calls without
//! the CSRF token are refused, and logs out; the pages keep to their
//! Content-Security-Policy, and axe-core finds no serious or critical
//! accessibility violation. Screenshots and axe's reports go to
//! `target/dashboard-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use warren_e2e::{Daemon, workspace_target};

const CHROMIUM: &str = "/usr/bin/chromium";

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/dashboard")
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_dashboard_fleet_in_a_browser() {
    let python = workspace_target().join("dashboard-venv/bin/python");
    let axe = workspace_target().join("dashboard-node/node_modules/axe-core/axe.min.js");
    assert!(
        python.exists() && axe.exists() && Path::new(CHROMIUM).exists(),
        "{}, {} or {CHROMIUM} is missing: run scripts/deps.sh",
        python.display(),
        axe.display()
    );
    // A meter sampling every second, so the usage page has figures.
    let d = Daemon::with_base_and(&["--meter-interval", "1s"]).await;
    let viewer = d
        .mint(
            &d.key,
            json!({"name": "dashboard-viewer", "role": "viewer"}),
        )
        .await;
    let artifacts = workspace_target().join("dashboard-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let out = tokio::task::block_in_place(|| {
        Command::new(&python)
            .arg("fleet.py")
            .current_dir(suite_dir())
            .env("WARREN_URL", &d.url)
            .env("WARREN_ADMIN_KEY", &d.key)
            .env("WARREN_VIEWER_KEY", &viewer)
            .env("WARREN_DB", d.data_dir().join("warren.db"))
            .env("DASHBOARD_ARTIFACTS", &artifacts)
            .env("CHROMIUM", CHROMIUM)
            .env("AXE_JS", &axe)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()))
    });
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "fleet.py failed ({}):\n{text}\nscreenshots: {}\n--- daemon log ---\n{}",
        out.status,
        artifacts.display(),
        d.log()
    );
    assert!(text.contains(r#""ok": true"#), "{text}");
}
