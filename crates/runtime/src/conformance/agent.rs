//! The checks' view of an instance: its agent, spoken to over envd as
//! `root`, every call bounded so a dead or frozen instance fails a check
//! instead of hanging it.

use std::time::Duration;

use futures::StreamExt;
use warren_envd::EnvdClient;
use warren_envd::process::{
    DataEvent, ProcessConfig, ProcessEvent, ProcessSelector, Signal, StartRequest,
};

use super::{ConformanceError, Step};
use crate::Instance;

/// Bound of one call that must succeed on a busy host.
pub(super) const CALL: Duration = Duration::from_secs(20);
/// How long an agent that must not answer is given to answer anyway.
pub(super) const SILENT: Duration = Duration::from_secs(2);

/// What a finished command printed and how it ended.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A client for one instance's agent.
pub(super) struct Agent {
    pub client: EnvdClient,
    url: String,
}

impl Agent {
    pub fn new(instance: &Instance) -> Result<Self, ConformanceError> {
        let url = format!("http://{}", instance.agent_addr);
        let client = EnvdClient::new(&url)
            .step(format!("a client for {url}"))?
            .with_user("root");
        Ok(Self { client, url })
    }

    /// The same agent, sending `token` as the access token.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            client: self.client.clone().with_access_token(token),
            url: self.url.clone(),
        }
    }

    /// Waits until `/health` answers, for at most `within`.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), ConformanceError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.answers_within(Duration::from_secs(2)).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ConformanceError::Violated(format!(
                    "the agent at {} did not answer within {within:?}",
                    self.url
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether `/health` answers within `bound`.
    pub async fn answers_within(&self, bound: Duration) -> bool {
        // A fresh client: a pooled connection must not stand in for the
        // instance answering.
        let Ok(fresh) = EnvdClient::new(&self.url) else {
            return false;
        };
        matches!(
            tokio::time::timeout(bound, fresh.health()).await,
            Ok(Ok(()))
        )
    }

    /// Runs `cmd args…` to its end within `bound`.
    pub async fn run(
        &self,
        cmd: &str,
        args: &[&str],
        bound: Duration,
    ) -> Result<Output, ConformanceError> {
        match self.run_bounded(cmd, args, bound).await? {
            Some(out) => Ok(out),
            None => Err(ConformanceError::Violated(format!(
                "`{cmd} {}` did not end within {bound:?}",
                args.join(" ")
            ))),
        }
    }

    /// Runs `cmd args…`; `None` (and the process killed) when it has not
    /// ended within `bound`.
    pub async fn run_bounded(
        &self,
        cmd: &str,
        args: &[&str],
        bound: Duration,
    ) -> Result<Option<Output>, ConformanceError> {
        let step = format!("running `{cmd} {}`", args.join(" "));
        let req = start_request(cmd, args, None);
        let mut events = tokio::time::timeout(CALL, self.client.start(&req, None))
            .await
            .map_err(|_| ConformanceError::Harness(format!("{step}: no answer")))?
            .step(&step)?;
        let mut out = Output::default();
        let mut pid = None;
        let collect = async {
            while let Some(event) = events.next().await {
                match event.step(&step)? {
                    ProcessEvent::Start(s) => pid = Some(s.pid),
                    ProcessEvent::Data(DataEvent::Stdout(b)) => {
                        out.stdout.push_str(&String::from_utf8_lossy(&b));
                    }
                    ProcessEvent::Data(DataEvent::Stderr(b) | DataEvent::Pty(b)) => {
                        out.stderr.push_str(&String::from_utf8_lossy(&b));
                    }
                    ProcessEvent::End(end) => {
                        out.exit_code = end.exit_code;
                        return Ok(true);
                    }
                    ProcessEvent::Keepalive(_) => {}
                }
            }
            Err(ConformanceError::Violated(format!(
                "{step}: the stream ended without an end event"
            )))
        };
        match tokio::time::timeout(bound, collect).await {
            Ok(Ok(_)) => Ok(Some(out)),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                if let Some(pid) = pid {
                    let kill = self
                        .client
                        .send_signal(ProcessSelector::Pid(pid), Signal::Sigkill);
                    let _ = tokio::time::timeout(CALL, kill).await;
                }
                Ok(None)
            }
        }
    }

    /// Starts `cmd args…` under `tag`, leaves it running and returns its
    /// pid.
    pub async fn spawn_tagged(
        &self,
        tag: &str,
        cmd: &str,
        args: &[&str],
    ) -> Result<u32, ConformanceError> {
        let step = format!("starting `{cmd} {}` as {tag}", args.join(" "));
        let req = start_request(cmd, args, Some(tag));
        let first = async {
            let mut events = self.client.start(&req, None).await.step(&step)?;
            match events.next().await {
                Some(Ok(ProcessEvent::Start(s))) => Ok(s.pid),
                other => Err(ConformanceError::Violated(format!(
                    "{step}: expected the start event, got {other:?}"
                ))),
            }
        };
        tokio::time::timeout(CALL, first)
            .await
            .map_err(|_| ConformanceError::Harness(format!("{step}: no answer")))?
    }

    /// The pid of the running process tagged `tag`, if any.
    pub async fn tagged_pid(&self, tag: &str) -> Result<Option<u32>, ConformanceError> {
        let list = tokio::time::timeout(CALL, self.client.list())
            .await
            .map_err(|_| ConformanceError::Harness("listing processes: no answer".into()))?
            .step("listing processes")?;
        Ok(list
            .into_iter()
            .find(|p| p.tag.as_deref() == Some(tag))
            .map(|p| p.pid))
    }

    pub async fn write(&self, path: &str, data: &str) -> Result<(), ConformanceError> {
        let step = format!("writing {path}");
        tokio::time::timeout(CALL, self.client.write_file(path, data.to_owned()))
            .await
            .map_err(|_| ConformanceError::Harness(format!("{step}: no answer")))?
            .step(step)
            .map(drop)
    }

    pub async fn read(&self, path: &str) -> Result<String, ConformanceError> {
        let step = format!("reading {path}");
        let bytes = tokio::time::timeout(CALL, self.client.read_file_to_vec(path))
            .await
            .map_err(|_| ConformanceError::Harness(format!("{step}: no answer")))?
            .step(step)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn start_request(cmd: &str, args: &[&str], tag: Option<&str>) -> StartRequest {
    StartRequest {
        process: Some(ProcessConfig {
            cmd: cmd.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..ProcessConfig::default()
        }),
        pty: None,
        tag: tag.map(str::to_owned),
        stdin: Some(false),
    }
}
