//! Builds templates into a directory without a daemon (used by
//! `scripts/test.sh` to fill `WARREN_TEST_TEMPLATES` once).
//!
//! Usage: `build-template DIR NAME...` — ready templates are reused; each
//! is built under its lock, so concurrent runs are safe.

use std::process::ExitCode;

use tokio::sync::mpsc;
use warren_template::TemplateStore;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((dir, names)) = args.split_first().filter(|(_, n)| !n.is_empty()) else {
        eprintln!("usage: build-template DIR NAME...");
        return ExitCode::from(2);
    };
    let store = match TemplateStore::new(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for name in names {
        let (tx, mut rx) = mpsc::channel(256);
        let printer = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                eprintln!("{line}");
            }
        });
        let result = store
            .build(name, warren_template::Rebuild::IfMissing, tx)
            .await;
        let _ = printer.await;
        match result {
            Ok(t) => println!("{}", t.rootfs.display()),
            Err(e) => {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                eprintln!("error: {msg}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
