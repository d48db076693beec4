use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

/// `target/` of this workspace.
pub fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn env_path(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
}

/// A running `warren serve` owned by one test; killed and cleaned up on drop.
pub struct Daemon {
    pub url: String,
    pub key: String,
    pub addr: SocketAddr,
    /// Where sandboxes reach the daemon with their tokens.
    pub sandbox_api_port: u16,
    pub cidr: String,
    /// Keeps `cidr` this daemon's alone (see `unique_cidr`).
    _cidr_lock: std::fs::File,
    pub http: reqwest::Client,
    /// Host ports of the sandboxes' resolver and egress proxy.
    pub dns_port: u16,
    pub proxy_port: u16,
    data: TempDir,
    /// The daemon's output: `daemon.log` in the data directory, or beside
    /// it in the system's temporary directory when the data directory is
    /// on a filesystem of the test's own (which may fill up).
    log_path: PathBuf,
    child: Option<Child>,
    /// Extra `warren serve` flags, kept across restarts.
    serve_args: Vec<String>,
    /// `--templates-dir`.
    templates: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A sandbox range no other test daemon on this host uses while the
/// returned lock file is held: one of 512 /20s of 10.96.0.0/11 (see
/// [`crate::slot`]), so parallel tests and test runs never share addresses.
fn unique_cidr() -> anyhow::Result<(String, std::fs::File)> {
    let start = std::process::id() * 8 + NEXT.fetch_add(1, Ordering::Relaxed);
    let Some((n, lock)) = crate::slot::claim("cidr", 512, start)? else {
        bail!("every test sandbox range is in use");
    };
    let second = 96 + (n / 16);
    let third = (n % 16) * 16;
    Ok((format!("10.{second}.{third}.0/20"), lock))
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

impl Daemon {
    pub fn warren_bin() -> PathBuf {
        env_path("WARREN_BIN", workspace_target().join("debug/warren"))
    }

    pub fn agent_bin() -> PathBuf {
        env_path(
            "WARREN_TEST_AGENT",
            workspace_target().join("x86_64-unknown-linux-gnu/release/warren-agent"),
        )
    }

    pub fn templates_dir() -> PathBuf {
        env_path(
            "WARREN_TEST_TEMPLATES",
            workspace_target().join("test-templates"),
        )
    }

    /// The root filesystem of the shared test template `name`'s latest
    /// version.
    pub fn template_rootfs(name: &str) -> anyhow::Result<PathBuf> {
        let store = warren_template::TemplateStore::new(Self::templates_dir())?;
        Ok(store.ready(name)?.rootfs)
    }

    /// Starts a daemon with a fresh data directory.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// [`Self::start`] with extra `warren serve` flags.
    ///
    /// The ports are found free by binding and releasing them, so another
    /// test can take one in between: a daemon that could not listen is
    /// started again, from scratch, on new ports.
    pub async fn start_with(serve_args: &[&str]) -> anyhow::Result<Self> {
        Self::start_in(&Self::templates_dir(), serve_args).await
    }

    /// A templates directory of its own holding hard-linked copies of the
    /// shared templates `names` (their index copied, so it can be
    /// rewritten), which a test may build into, rebuild or remove from.
    pub fn private_templates(names: &[&str]) -> anyhow::Result<tempfile::TempDir> {
        let dir = tempfile::tempdir()?;
        let shared = Self::templates_dir();
        for name in names {
            let status = Command::new("cp")
                .arg("-al")
                .arg(shared.join(name))
                .arg(dir.path().join(name))
                .status()?;
            anyhow::ensure!(status.success(), "could not link the shared {name}");
            let index = dir.path().join(name).join("index.json");
            std::fs::remove_file(&index)?;
            std::fs::copy(shared.join(name).join("index.json"), &index)?;
        }
        Ok(dir)
    }

    /// [`Self::start_with`] over the templates directory `templates`
    /// instead of the shared one (for tests that make templates).
    pub async fn start_in(templates: &Path, serve_args: &[&str]) -> anyhow::Result<Self> {
        Self::start_under(&std::env::temp_dir(), templates, serve_args).await
    }

    /// [`Self::start_in`] with the data directory made inside `parent`
    /// (for a test that puts it on a filesystem of its own).
    pub async fn start_under(
        parent: &Path,
        templates: &Path,
        serve_args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(parent, templates, serve_args).await {
                Err(e) if attempt < 5 && format!("{e:#}").contains("Address already in use") => {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(
        parent: &Path,
        templates: &Path,
        serve_args: &[&str],
    ) -> anyhow::Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("warren-e2e-")
            .tempdir_in(parent)?;
        let (cidr, cidr_lock) = unique_cidr()?;
        let log_path = match parent == std::env::temp_dir() {
            true => data.path().join("daemon.log"),
            false => std::env::temp_dir().join(format!(
                "{}.log",
                data.path()
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            )),
        };
        let mut d = Self {
            url: String::new(),
            key: String::new(),
            addr: free_port()?,
            sandbox_api_port: free_port()?.port(),
            cidr,
            _cidr_lock: cidr_lock,
            http: reqwest::Client::new(),
            dns_port: free_port()?.port(),
            proxy_port: free_port()?.port(),
            data,
            log_path,
            child: None,
            serve_args: serve_args.iter().map(|a| a.to_string()).collect(),
            templates: templates.to_path_buf(),
        };
        d.spawn()?;
        d.wait_healthy().await?;
        let client: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.data.path().join("client.json")).context("client.json")?,
        )?;
        d.key = client["api_key"].as_str().context("api_key")?.to_owned();
        d.url = client["url"].as_str().context("url")?.to_owned();
        Ok(d)
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let child = Command::new(Self::warren_bin())
            .arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(self.data.path())
            .arg("--templates-dir")
            .arg(&self.templates)
            .arg("--agent-binary")
            .arg(Self::agent_bin())
            .arg("--sandbox-cidr")
            .arg(&self.cidr)
            .arg("--sandbox-api-port")
            .arg(self.sandbox_api_port.to_string())
            .arg("--dns-port")
            .arg(self.dns_port.to_string())
            .arg("--egress-proxy-port")
            .arg(self.proxy_port.to_string())
            .args(&self.serve_args)
            // Template snapshots only where a test asks for them: a daemon
            // making one boots a code-interpreter sandbox at start.
            .args(
                (!self.serve_args.iter().any(|a| a == "--template-snapshots"))
                    .then_some(["--template-snapshots", "false"])
                    .into_iter()
                    .flatten(),
            )
            .env("WARREN_LOG", "info,warren=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", Self::warren_bin().display()))?;
        self.child = Some(child);
        self.url = format!("http://{}", self.addr);
        Ok(())
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("daemon exited with {status}:\n{}", self.log());
            }
            let health = self
                .http
                .get(format!("{}/v1/health", self.url))
                .send()
                .await;
            if matches!(health, Ok(ref r) if r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("daemon did not become healthy:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The daemon's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends `signal` to the daemon and waits for it to exit.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)?;
            child.wait()?;
        }
        Ok(())
    }

    /// Replaces the extra `warren serve` flags the next [`Self::restart`]
    /// starts the daemon with.
    pub fn set_serve_args(&mut self, serve_args: &[&str]) {
        self.serve_args = serve_args.iter().map(|a| a.to_string()).collect();
    }

    /// Starts the daemon again on the same data directory and ports.
    ///
    /// Another test may have taken the API or sandbox-API port while this
    /// daemon was down (ports are found free by binding and releasing
    /// them): then it starts again on new ones, and `url` follows.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        // A daemon still running is stopped first: two on one data
        // directory are refused, and the first would be left behind.
        if let Some(child) = self.child.as_mut()
            && child.try_wait()?.is_none()
        {
            self.stop_with(nix::sys::signal::Signal::SIGTERM)?;
        }
        let mut attempt = 1;
        loop {
            self.spawn()?;
            match self.wait_healthy().await {
                Err(e) if attempt < 5 && format!("{e:#}").contains("Address already in use") => {
                    attempt += 1;
                    self.addr = free_port()?;
                    self.sandbox_api_port = free_port()?.port();
                }
                result => return result,
            }
        }
    }

    /// Makes sure `name` is built in the shared templates directory.
    pub async fn ensure_template(&self, name: &str) -> anyhow::Result<()> {
        if Self::template_rootfs(name).is_ok() {
            return Ok(());
        }
        let resp = self
            .post(&format!("/v1/templates/{name}/build"))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() || !body.lines().any(|l| l.contains("\"type\":\"done\"")) {
            bail!("building template {name} failed ({status}):\n{body}");
        }
        Ok(())
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .put(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .delete(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
    }

    /// `method path` with `key` and an optional JSON body; the status and
    /// the JSON answer (a string when the answer is not JSON).
    pub async fn call(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.url);
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Mints a key with `admin` (`body` is the `POST /v1/keys` request);
    /// returns its secret.
    pub async fn mint(&self, admin: &str, body: serde_json::Value) -> String {
        let (status, key) = self.call(admin, "POST", "/v1/keys", Some(body)).await;
        assert_eq!(status, 201, "{key}");
        serde_json::from_value::<warren_api_types::NewKey>(key)
            .unwrap()
            .secret
    }

    /// Runs the CLI against this daemon to its end, stdin closed.
    pub fn run_cli(&self, args: &[&str]) -> std::process::Output {
        self.cli()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("warren runs")
    }

    /// Runs the CLI against this daemon.
    pub fn cli(&self) -> Command {
        let mut c = Command::new(Self::warren_bin());
        c.env("WARREN_URL", &self.url)
            .env("WARREN_API_KEY", &self.key)
            .env_remove("WARREN_CONFIG");
        c
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Kill every sandbox this daemon still has (and drain its pools),
        // then stop it, so no test leaves sandboxes behind.
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                // Died under the test: nothing kills its sandboxes now, or
                // takes its host network away.
                force_delete_containers(&self.data.path().join("runtime/runsc"));
                remove_host_network(&self.data.path().join("runtime"), &self.cidr);
                return;
            }
            let url = self.url.clone();
            let key = self.key.clone();
            let _ = std::thread::spawn(move || kill_all(&url, &key)).join();
            // Teardown runs in the background: wait for it, or the data
            // directory (and runsc's state in it) vanishes under live
            // sandboxes.
            wait_for_no_containers(&self.data.path().join("runtime/runsc"));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
            // What the kills could not end (a daemon that cannot write its
            // store refuses them).
            force_delete_containers(&self.data.path().join("runtime/runsc"));
            remove_host_network(&self.data.path().join("runtime"), &self.cidr);
        }
        keep_log(&self.log_path);
        if !self.log_path.starts_with(self.data.path()) {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// Copies a daemon's log into `$WARREN_E2E_KEEP_LOGS` (a directory), when
/// set, before its data directory goes: for reading a benchmark's phase
/// timings afterwards.
fn keep_log(log: &Path) {
    let Some(dir) = std::env::var_os("WARREN_E2E_KEEP_LOGS") else {
        return;
    };
    let name = log
        .parent()
        .and_then(Path::file_name)
        .map(|n| format!("{}.log", n.to_string_lossy()))
        .unwrap_or_else(|| "daemon.log".into());
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::copy(log, Path::new(&dir).join(name));
}

/// Waits (at most two minutes) until runsc lists no container under `root`.
/// Each `runsc list` gets 5 s (coreutils `timeout`): it waits as long as a
/// sandbox is frozen by the cgroup freezer, which a teardown thaws first.
fn wait_for_no_containers(root: &Path) {
    const TIMED_OUT: i32 = 124;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let listed = Command::new("timeout")
            .args(["5", "runsc", "--root"])
            .arg(root)
            .args(["list", "-quiet"])
            .output();
        match listed {
            Ok(out)
                if out.status.code() == Some(TIMED_OUT)
                    || (out.status.success()
                        && !out.stdout.iter().all(u8::is_ascii_whitespace)) =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            // Empty, or no runsc state at all (the daemon never got that far).
            _ => return,
        }
    }
}

/// Stops every runsc container under `root` (a dead daemon's), so no
/// sandbox process outlives its test.
fn force_delete_containers(root: &Path) {
    let Ok(out) = Command::new("runsc")
        .arg("--root")
        .arg(root)
        .args(["list", "-quiet"])
        .output()
    else {
        return;
    };
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = Command::new("runsc")
            .arg("--root")
            .arg(root)
            .args(["delete", "-force", id])
            .output();
    }
}

/// Removes what a daemon whose state lives in `runtime` left of the host's
/// network once it is gone: its firewall table (its rules close the
/// daemon's port numbers, which later tests may be given) and each
/// sandbox's namespace and source guard. A daemon that stopped cleanly
/// left none of them.
fn remove_host_network(runtime: &Path, cidr: &str) {
    if let (Ok(state_dir), Ok(pool)) = (runtime.canonicalize(), cidr.parse()) {
        let _ = warren_net::Firewall::new(&state_dir, pool).remove_blocking();
    }
    let Ok(sandboxes) = std::fs::read_dir(runtime.join("sandboxes")) else {
        return;
    };
    for entry in sandboxes.flatten() {
        let Ok(id) = entry
            .file_name()
            .to_string_lossy()
            .parse::<warren_core::SandboxId>()
        else {
            continue;
        };
        let netns = warren_net::SandboxNames::new(&id, "").netns;
        if Path::new(warren_net::NETNS_DIR).join(&netns).exists() {
            let _ = Command::new("ip")
                .args(["netns", "delete", &netns])
                .output();
        }
        let guard = warren_net::source_guard_table(&warren_net::host_iface_name(&id));
        let _ = Command::new("nft")
            .args(["delete", "table", "netdev", &guard])
            .stderr(Stdio::null())
            .output();
    }
}

/// Kills every sandbox of a daemon (blocking; used from `Drop`).
fn kill_all(url: &str, key: &str) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let http = reqwest::Client::new();
        let Ok(resp) = http
            .get(format!("{url}/v1/sandboxes"))
            .bearer_auth(key)
            .send()
            .await
        else {
            return;
        };
        let Ok(list) = resp.json::<warren_api_types::SandboxList>().await else {
            return;
        };
        for sb in list.sandboxes {
            let _ = http
                .delete(format!("{url}/v1/sandboxes/{}", sb.id))
                .bearer_auth(key)
                .send()
                .await;
        }
        // Pools' sandboxes are no team's: deleting the pools drains them.
        let pools = http
            .get(format!("{url}/v1/pools"))
            .bearer_auth(key)
            .send()
            .await;
        if let Ok(resp) = pools
            && let Ok(list) = resp.json::<warren_api_types::PoolList>().await
        {
            for pool in list.pools {
                let _ = http
                    .delete(format!("{url}/v1/pools/{}", pool.template))
                    .bearer_auth(key)
                    .send()
                    .await;
            }
        }
    });
}

/// Sandbox helpers every end-to-end test uses; they panic with the daemon's
/// log on failure, which is what a failing test should show.
impl Daemon {
    /// A daemon with the `base` template ready.
    pub async fn with_base() -> Self {
        Self::with_base_and(&[]).await
    }

    /// [`Self::with_base`] with extra `warren serve` flags.
    pub async fn with_base_and(serve_args: &[&str]) -> Self {
        let d = Self::start_with(serve_args).await.expect("daemon starts");
        d.ensure_template("base").await.expect("base template");
        d
    }

    /// Creates a sandbox; `body` is the create request.
    pub async fn create_sandbox(&self, body: serde_json::Value) -> warren_api_types::Sandbox {
        self.created_as(&self.key, "/v1/sandboxes", body).await
    }

    /// Runs an exec request to its end.
    pub async fn exec(&self, id: &str, body: serde_json::Value) -> crate::ExecOutput {
        let resp = self
            .post(&format!("/v1/sandboxes/{id}/exec"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 200, "exec failed: {text}");
        crate::decode_exec(&text).unwrap()
    }

    /// GETs `path` and returns the body as text, whatever the status.
    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).send().await.unwrap().text().await.unwrap()
    }

    /// POSTs `body` to `path` with `key`, expects 201 and decodes the answer.
    pub async fn created_as<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        path: &str,
        body: serde_json::Value,
    ) -> T {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 201, "POST {path} failed: {text}\n{}", self.log());
        serde_json::from_str(&text).unwrap()
    }

    /// GETs `path` and decodes the JSON answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let resp = self.get(path).send().await.unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// Runs a bash script as `user`.
    pub async fn sh(&self, id: &str, script: &str) -> crate::ExecOutput {
        self.exec(id, serde_json::json!({"cmd": ["bash", "-c", script]}))
            .await
    }

    /// Starts the Python program `source` in the background as `user` and
    /// waits until `http://localhost:{port}/` answers inside the sandbox.
    pub async fn start_python_server(&self, id: &str, source: &str, port: u16) {
        let script = format!(
            "cat > /tmp/srv.py <<'EOF'\n{source}\nEOF\n\
             (python3 /tmp/srv.py >/tmp/srv.log 2>&1 &)\n\
             for i in $(seq 100); do curl -sf localhost:{port}/ >/dev/null && exit 0; sleep 0.1; done\n\
             cat /tmp/srv.log; exit 1"
        );
        let out = self.sh(id, &script).await;
        assert_eq!(
            out.exit_code,
            Some(0),
            "server did not start: {}",
            out.stdout_str()
        );
    }

    /// Ids of the runsc containers this daemon's runtime has (`runsc list`,
    /// given 5 s: it waits while a sandbox is frozen).
    pub fn runsc_containers(&self) -> Vec<String> {
        let out = Command::new("timeout")
            .args(["5", "runsc", "--root"])
            .arg(self.data_dir().join("runtime/runsc"))
            .args(["list", "-quiet"])
            .output()
            .expect("runsc runs");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// Runs a bash script as root.
    pub async fn sh_root(&self, id: &str, script: &str) -> crate::ExecOutput {
        self.exec(
            id,
            serde_json::json!({"cmd": ["bash", "-c", script], "user": "root"}),
        )
        .await
    }
}
