//! `warren shell` on a real terminal: a pseudo-terminal pair stands in for
//! the user's terminal, the mock API (see `mock/`) for the daemon. Checks raw
//! mode, the initial size, resize on SIGWINCH and that the terminal settings
//! come back on every way out.

#[allow(dead_code)]
mod mock;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mock::{ID, KEY};
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

fn start(url: &str) -> Session {
    let pty = openpty(&winsize(100, 30), None).unwrap();
    let stdio = || Stdio::from(pty.slave.try_clone().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .env_clear()
        .env("WARREN_URL", url)
        .env("WARREN_API_KEY", KEY)
        .env("WARREN_CONFIG", "/nonexistent/warren-client.json")
        .args(["shell", ID])
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

fn eventually(mut check: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shell_uses_raw_mode_follows_resizes_and_restores_the_terminal() {
    let (url, m) = mock::start();
    let mut s = start(&url);
    s.expect(b"ready");
    assert!(s.raw_mode(), "terminal not in raw mode during the session");
    assert_eq!(m.seen(|x| x.pty_query.clone()).unwrap(), "cols=100&rows=30");

    let ws = winsize(120, 40);
    // SAFETY: TIOCSWINSZ reads one `winsize` from a valid pointer on an open pty fd.
    let rc = unsafe { libc::ioctl(s.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(rc, 0);
    kill(Pid::from_raw(s.child.id() as i32), Signal::SIGWINCH).unwrap();
    eventually(
        || {
            m.seen(|x| {
                x.pty_text
                    .iter()
                    .any(|t| t == r#"{"type":"resize","cols":120,"rows":40}"#)
            })
        },
        "no resize message after SIGWINCH",
    );

    // Keystrokes go through untouched (raw mode: Ctrl-D is a byte, not EOF).
    s.master.write_all(b"hi\x04").unwrap();
    s.expect(b"hi");
    assert_eq!(s.wait(), 7, "remote exit code");
    assert!(!s.raw_mode(), "terminal left in raw mode");
}

#[test]
fn shell_restores_the_terminal_on_sigterm() {
    let (url, _m) = mock::start();
    let mut s = start(&url);
    s.expect(b"ready");
    assert!(s.raw_mode());
    kill(Pid::from_raw(s.child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(s.wait(), 143);
    assert!(!s.raw_mode(), "terminal left in raw mode");
}
