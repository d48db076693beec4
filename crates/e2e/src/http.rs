use base64::Engine;
use warren_api_types::ExecEvent;

/// Collected result of an `exec` stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: Option<i32>,
    pub pid: Option<u32>,
    pub events: usize,
}

impl ExecOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Decodes a whole NDJSON `exec` response body.
pub fn decode_exec(body: &str) -> anyhow::Result<ExecOutput> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = ExecOutput::default();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        out.events += 1;
        match serde_json::from_str::<ExecEvent>(line)? {
            ExecEvent::Start { pid } => out.pid = Some(pid),
            ExecEvent::Stdout { data } => out.stdout.extend(b64.decode(data)?),
            ExecEvent::Stderr { data } => out.stderr.extend(b64.decode(data)?),
            ExecEvent::Exit { exit_code, .. } => out.exit_code = Some(exit_code),
        }
    }
    Ok(out)
}
