//! The hang detector: a thread that watches the input being executed and
//! ends the process, printing the input, when one runs past the limit. A
//! hang cannot be unwound, so the process is the unit that fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Shared {
    current: Mutex<Option<(Instant, Vec<u8>)>>,
    stop: AtomicBool,
}

pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Option<(Instant, Vec<u8>)>> {
    shared
        .current
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Watchdog {
    pub(crate) fn start(name: &str, limit: Duration) -> Self {
        let shared = Arc::new(Shared::default());
        let watched = Arc::clone(&shared);
        let name = name.to_owned();
        let tick = (limit / 10).clamp(Duration::from_millis(10), Duration::from_millis(200));
        let thread = std::thread::spawn(move || {
            while !watched.stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                let current = lock(&watched);
                if let Some((since, input)) = current.as_ref()
                    && since.elapsed() > limit
                {
                    let saved = crate::save_failure(&name, input);
                    eprintln!(
                        "fuzz {name}: input {} ran for more than {limit:?} (a hang); saved to {}",
                        crate::preview(input),
                        saved.display()
                    );
                    std::process::abort();
                }
            }
        });
        Self {
            shared,
            thread: Some(thread),
        }
    }

    pub(crate) fn begin(&self, input: &[u8]) {
        *lock(&self.shared) = Some((Instant::now(), input.to_vec()));
    }

    pub(crate) fn end(&self) {
        *lock(&self.shared) = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
