//! `warren shell` on a real terminal: a pseudo-terminal pair stands in for
//! the user's terminal, the daemon's own API in process over the fake
//! runtime (`warren_server::testing`) for the daemon; the fake's terminal
//! says its size at start and at every resize, and echoes keystrokes.
//! Checks raw mode, the initial size, resize on SIGWINCH and that the
//! terminal settings come back on every way out.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};
use nix::sys::signal::{Signal, kill};
use nix::sys::termios::{LocalFlags, tcgetattr};
use nix::unistd::Pid;

struct Session {
    child: Child,
    master: File,
    slave: OwnedFd,
    output: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

fn winsize(cols: u16, rows: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A Warren on a socket with one sandbox; its runtime serves until the
/// test ends.
struct Daemon {
    url: String,
    key: String,
    id: String,
    _dir: tempfile::TempDir,
    _server: warren_server::testing::InProcess,
    _runtime: tokio::runtime::Runtime,
}

impl Daemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (server, addr) = runtime.block_on(async {
            let fake = std::sync::Arc::new(warren_runtime::fake::FakeRuntime::new());
            let server = warren_server::testing::InProcess::start(dir.path(), fake)
                .await
                .unwrap();
            let addr = server.serve().await.unwrap();
            (server, addr)
        });
        let url = format!("http://{addr}");
        let key = server.admin_key.clone().unwrap();
        let created = Command::new(env!("CARGO_BIN_EXE_warren"))
            .env_clear()
            .env("WARREN_URL", &url)
            .env("WARREN_API_KEY", &key)
            .env("WARREN_CONFIG", "/nonexistent/warren-client.json")
            .arg("create")
            .output()
            .unwrap();
        assert!(created.status.success(), "{created:?}");
        let id = String::from_utf8(created.stdout).unwrap().trim().to_owned();
        Self {
            url,
            key,
            id,
            _dir: dir,
            _server: server,
            _runtime: runtime,
        }
    }
}

fn start(d: &Daemon) -> Session {
    let pty = openpty(&winsize(100, 30), None).unwrap();
    let stdio = || Stdio::from(pty.slave.try_clone().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .env_clear()
        .env("WARREN_URL", &d.url)
        .env("WARREN_API_KEY", &d.key)
        .env("WARREN_CONFIG", "/nonexistent/warren-client.json")
        .args(["shell", &d.id])
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio())
        .spawn()
        .unwrap();
    let master = File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let (tx, output) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    Session {
        child,
        master,
        slave: pty.slave,
        output,
        seen: Vec::new(),
    }
}

impl Session {
    /// Waits until the terminal has shown `needle`.
    fn expect(&mut self, needle: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.seen.windows(needle.len()).any(|w| w == needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!(
                    "terminal never showed {:?}; it showed {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    fn raw_mode(&self) -> bool {
        let t = tcgetattr(&self.slave).unwrap();
        !t.local_flags.contains(LocalFlags::ICANON) && !t.local_flags.contains(LocalFlags::ECHO)
    }

    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited normally");
            }
            assert!(Instant::now() < deadline, "warren shell did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn shell_uses_raw_mode_follows_resizes_and_restores_the_terminal() {
    let d = Daemon::start();
    let mut s = start(&d);
    s.expect(b"terminal 100x30");
    assert!(s.raw_mode(), "terminal not in raw mode during the session");

    let ws = winsize(120, 40);
    // SAFETY: TIOCSWINSZ reads one `winsize` from a valid pointer on an open pty fd.
    let rc = unsafe { libc::ioctl(s.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(rc, 0);
    kill(Pid::from_raw(s.child.id() as i32), Signal::SIGWINCH).unwrap();
    s.expect(b"resized to 120x40");

    // Keystrokes go through untouched (raw mode: Enter is `\r`, not `\n`).
    s.master.write_all(b"hi\rexit 7\r").unwrap();
    s.expect(b"hi\rexit 7");
    assert_eq!(s.wait(), 7, "remote exit code");
    assert!(!s.raw_mode(), "terminal left in raw mode");
}

#[test]
fn shell_restores_the_terminal_on_sigterm() {
    let d = Daemon::start();
    let mut s = start(&d);
    s.expect(b"terminal 100x30");
    assert!(s.raw_mode());
    kill(Pid::from_raw(s.child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(s.wait(), 143);
    assert!(!s.raw_mode(), "terminal left in raw mode");
}
