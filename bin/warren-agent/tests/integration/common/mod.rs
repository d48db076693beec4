//! Starts the real agent binary on 127.0.0.1 with a free port.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use warren_envd::EnvdClient;

pub struct Agent {
    child: Child,
    pub url: String,
    /// The agent's `--root` (unless the test gave its own): what `/init`
    /// writes lands here, never on the host's `/run`.
    pub root: tempfile::TempDir,
}

impl Agent {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts the agent with `extra` arguments.
    pub async fn start_with(extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren-agent"));
        cmd.args(["--listen", "127.0.0.1", "--port", &port.to_string()]);
        if !extra.contains(&"--root") {
            cmd.arg("--root").arg(root.path());
        }
        let child = cmd
            .args(extra)
            .env("WARREN_AGENT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start warren-agent");
        let agent = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            root,
        };
        let client = agent.client();
        for _ in 0..200 {
            if client.health().await.is_ok() {
                return agent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("agent did not become healthy");
    }

    pub fn client(&self) -> EnvdClient {
        EnvdClient::new(&self.url).unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
