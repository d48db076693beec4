//! The fuzzing harness every parser of untrusted bytes is tested with, on
//! the stable toolchain, as ordinary tests.
//!
//! A [`Target`] names a parser, the directory holding its corpus (seed
//! inputs and every input that once crashed it, kept in the repository) and
//! optional tokens of its format. [`Target::run`] first replays every corpus
//! file, then feeds the parser inputs made by mutating corpus entries
//! (bit flips, interesting integers, inserted tokens, deletions,
//! duplications, splices of two entries, random bytes, and for inputs that
//! are JSON, edits of one value) until its budget is spent. The property checked is the one the closure asserts; a panic is
//! always a failure. A failing input is shrunk (fewer and smaller
//! mutations), written to a file under the system's temporary directory and
//! reported; it belongs in the corpus and in a named regression test.
//!
//! An input that keeps the parser busy for longer than the hang limit ends
//! the process with the input printed: a parser must never hang.
//!
//! Budget and reproduction, from the environment:
//! - `WARREN_FUZZ_SECONDS`: time spent mutating per target (default 2).
//! - `WARREN_FUZZ_ITERATIONS`: a cap on mutated executions (default none).
//! - `WARREN_FUZZ_SEED`: the random seed (default fixed, so a CI run is
//!   reproducible; any u64 explores other inputs).
//! - `WARREN_FUZZ_HANG_SECONDS`: the hang limit for one input (default 10).
//!
//! Each run prints `fuzz <target>: <n> executions …` to standard error.

mod json;
mod mutate;
mod watchdog;

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

pub use json::has_float;
pub use mutate::Mutation;

/// Longest input a mutation produces unless a target says otherwise.
pub const DEFAULT_MAX_LEN: usize = 64 * 1024;
const DEFAULT_SECONDS: f64 = 2.0;
const DEFAULT_SEED: u64 = 0x5741_5252_454e;
const DEFAULT_HANG_SECONDS: u64 = 10;
/// Cases per proptest runner; the budget is checked between batches.
const BATCH: u32 = 64;

/// One parser under test.
#[derive(Debug, Clone)]
pub struct Target {
    name: String,
    corpus_dir: PathBuf,
    seeds: Vec<Vec<u8>>,
    tokens: Vec<Vec<u8>>,
    max_len: usize,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Corpus files replayed.
    pub corpus: usize,
    /// Mutated inputs executed.
    pub executions: u64,
}

impl Target {
    /// A target whose corpus lives in `corpus_dir` (every regular file is
    /// one input; the directory may be missing).
    pub fn new(name: &str, corpus_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: name.to_owned(),
            corpus_dir: corpus_dir.into(),
            seeds: Vec::new(),
            tokens: Vec::new(),
            max_len: DEFAULT_MAX_LEN,
        }
    }

    /// Adds an input built in code (e.g. a valid encoding) to mutate from.
    pub fn seed(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.seeds.push(input.into());
        self
    }

    /// Adds tokens of the format that mutations insert or overwrite with.
    pub fn tokens<T: AsRef<[u8]>>(mut self, tokens: impl IntoIterator<Item = T>) -> Self {
        self.tokens
            .extend(tokens.into_iter().map(|t| t.as_ref().to_vec()));
        self
    }

    /// The longest input mutations produce.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Replays the corpus, then fuzzes for the configured budget. Panics
    /// (failing the test) with the input when `check` panics or hangs.
    pub fn run(self, check: impl Fn(&[u8])) -> Report {
        let budget = Budget::from_env();
        let corpus = self.load_corpus();
        let guard = watchdog::Watchdog::start(&self.name, budget.hang);
        let quiet = mutate::QuietPanics::enter();

        for (path, input) in &corpus {
            guard.begin(input);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
            guard.end();
            if let Err(panic) = outcome {
                drop(quiet);
                panic!(
                    "fuzz {}: corpus file {} fails: {}",
                    self.name,
                    path.display(),
                    panic_text(&*panic)
                );
            }
        }

        let mut seeds: Vec<Vec<u8>> = corpus.into_iter().map(|(_, input)| input).collect();
        seeds.extend(self.seeds.iter().cloned());
        if seeds.is_empty() {
            seeds.push(Vec::new());
        }
        let inputs = mutate::inputs(Arc::new(seeds), Arc::new(self.tokens.clone()), self.max_len);

        let started = Instant::now();
        let executions = Cell::new(0u64);
        let mut batch = 0u64;
        while started.elapsed() < budget.time
            && budget.iterations.is_none_or(|cap| executions.get() < cap)
        {
            let cases = budget.iterations.map_or(BATCH, |cap| {
                (cap - executions.get()).min(u64::from(BATCH)) as u32
            });
            let config = Config {
                cases,
                failure_persistence: None,
                max_shrink_iters: 4096,
                ..Config::default()
            };
            let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(budget.seed, batch));
            let mut runner = TestRunner::new_with_rng(config, rng);
            let result = runner.run(&inputs, |input| {
                executions.set(executions.get() + 1);
                guard.begin(&input);
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
                guard.end();
                match outcome {
                    Ok(()) => Ok(()),
                    Err(panic) => Err(TestCaseError::fail(panic_text(&*panic))),
                }
            });
            match result {
                Ok(()) => {}
                Err(TestError::Fail(reason, input)) => {
                    drop(quiet);
                    let saved = save_failure(&self.name, &input);
                    panic!(
                        "fuzz {}: input {} fails (seed {}, batch {batch}): {reason}\n\
                         saved to {}; add it to {} and to a named regression test",
                        self.name,
                        preview(&input),
                        budget.seed,
                        saved.display(),
                        self.corpus_dir.display(),
                    );
                }
                Err(TestError::Abort(reason)) => {
                    drop(quiet);
                    panic!("fuzz {}: aborted: {reason}", self.name)
                }
            }
            batch += 1;
        }
        drop(quiet);
        drop(guard);

        let report = Report {
            corpus: self.corpus_len(),
            executions: executions.get(),
        };
        eprintln!(
            "fuzz {}: {} executions in {:.1} s after {} corpus files (seed {})",
            self.name,
            report.executions,
            started.elapsed().as_secs_f64(),
            report.corpus,
            budget.seed,
        );
        report
    }

    fn corpus_len(&self) -> usize {
        self.corpus_files().len()
    }

    fn corpus_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.corpus_dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        files.sort();
        files
    }

    fn load_corpus(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.corpus_files()
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("reading corpus file {}: {e}", path.display()));
                (path, bytes)
            })
            .collect()
    }
}

/// The corpus directory of `target` in a crate: `<crate>/fuzz/<target>`.
pub fn corpus_dir(manifest_dir: &str, target: &str) -> PathBuf {
    Path::new(manifest_dir).join("fuzz").join(target)
}

/// The run's budget, from the environment.
#[derive(Debug, Clone, Copy)]
struct Budget {
    time: Duration,
    iterations: Option<u64>,
    seed: u64,
    hang: Duration,
}

impl Budget {
    fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
            let raw = std::env::var(name).ok()?;
            Some(
                raw.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={raw:?} is not a number")),
            )
        }
        let iterations = var::<u64>("WARREN_FUZZ_ITERATIONS");
        let seconds = var::<f64>("WARREN_FUZZ_SECONDS").unwrap_or(if iterations.is_some() {
            f64::INFINITY
        } else {
            DEFAULT_SECONDS
        });
        Self {
            time: Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX),
            iterations,
            seed: var("WARREN_FUZZ_SEED").unwrap_or(DEFAULT_SEED),
            hang: Duration::from_secs(
                var("WARREN_FUZZ_HANG_SECONDS").unwrap_or(DEFAULT_HANG_SECONDS),
            ),
        }
    }
}

fn seed_bytes(seed: u64, batch: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&seed.to_le_bytes());
    out[8..16].copy_from_slice(&batch.to_le_bytes());
    out[16..].copy_from_slice(b"warren-fuzz-seed");
    out
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic without a message".to_owned()
    }
}

/// The input as a Rust byte-string literal (shortened when long).
pub fn preview(input: &[u8]) -> String {
    const MAX: usize = 512;
    let mut out = String::from("b\"");
    for &b in input.iter().take(MAX) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if input.len() > MAX {
        let _ = write!(out, " ({} bytes, first {MAX} shown)", input.len());
    }
    out
}

fn save_failure(name: &str, input: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join("warren-fuzz");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in input {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{name}-{hash:016x}"));
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_parser_is_caught_with_its_input() {
        let target = Target::new("selftest", "/nonexistent").seed(b"hello".to_vec());
        let outcome = std::panic::catch_unwind(|| {
            target.run(|input| assert!(!input.contains(&b'!'), "saw a bang"))
        });
        let message = panic_text(&*outcome.unwrap_err());
        assert!(message.contains("saw a bang"), "{message}");
        assert!(message.contains('!'), "{message}");
    }

    #[test]
    fn a_sound_parser_runs_its_budget() {
        let report = Target::new("selftest-ok", "/nonexistent")
            .seed(b"hello".to_vec())
            .run(|input| {
                let _ = std::str::from_utf8(input);
            });
        assert!(report.executions > 0);
    }

    /// Run in a child process (a hang can only end the process): the
    /// parent checks the child died and named the input.
    #[test]
    fn a_hanging_parser_ends_the_process_with_its_input() {
        if std::env::var_os("WARREN_FUZZ_HANG_CHILD").is_some() {
            Target::new("selftest-hang", "/nonexistent")
                .seed(b"hello".to_vec())
                .run(|input| {
                    while input.contains(&b'!') {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                });
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::a_hanging_parser_ends_the_process_with_its_input",
                "--nocapture",
            ])
            .env("WARREN_FUZZ_HANG_CHILD", "1")
            .env("WARREN_FUZZ_HANG_SECONDS", "1")
            .env("WARREN_FUZZ_SECONDS", "30")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "{:?}\n{stdout}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("(a hang)") && stderr.contains('!'),
            "{stderr}"
        );
    }

    #[test]
    fn previews_are_byte_string_literals() {
        assert_eq!(preview(b"a\"\\\x00\xff"), "b\"a\\\"\\\\\\x00\\xff\"");
    }
}
