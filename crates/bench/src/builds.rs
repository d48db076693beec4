//! Template builds: the `base` recipe built from the Debian mirror, and a
//! three-step Dockerfile `FROM base` (an apt install, a COPY, a RUN) built
//! in full, rebuilt unchanged, rebuilt with its last step changed (the
//! first two replay from the step cache) and rebuilt with `--no-cache`.
//!
//! Every build goes through the CLI against a daemon over its own
//! templates directory (the shared `base` linked in, so nothing shared is
//! written). The baseline of the Dockerfile figures is the floor of any
//! build from `base`: `cp -a` of its tree, the copy a build starts with.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use warren_e2e::Daemon;

use crate::stats::{Row, ms, percentile};

fn dockerfile(last: &str) -> String {
    format!(
        "FROM base\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq\nCOPY app.txt /srv/app.txt\nRUN echo {last} > /srv/last.txt\n"
    )
}

/// Runs `warren template build` with `args`; how long it took.
fn build(d: &Daemon, args: &[&str]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = d.run_cli(&[&["template", "build"], args].concat());
    let took = t.elapsed();
    if !out.status.success() {
        bail!(
            "warren template build {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// `cp -a` of `tree` into a scratch directory; how long it took.
fn copy_tree(tree: &Path) -> anyhow::Result<Duration> {
    let scratch = tempfile::tempdir()?;
    let t = Instant::now();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(tree)
        .arg(scratch.path().join("rootfs"))
        .status()?;
    let took = t.elapsed();
    if !status.success() {
        bail!("cp -a {} failed", tree.display());
    }
    Ok(took)
}

pub async fn run(runs: usize, with_base: bool) -> anyhow::Result<Vec<Row>> {
    let work = tempfile::tempdir()?;
    let templates = Daemon::private_templates(&["base"])?;
    let d = Daemon::start_in(templates.path(), &[]).await?;
    let base_tree = Daemon::template_rootfs("base")?;
    let context = work.path().join("ctx");
    std::fs::create_dir(&context)?;
    std::fs::write(context.join("app.txt"), "hello\n")?;
    let file = context.join("Dockerfile");
    let (file_s, ctx_s) = (
        file.to_str().context("path")?.to_owned(),
        context.to_str().context("path")?.to_owned(),
    );

    let mut rows = Vec::new();
    let blocking = |f: &dyn Fn() -> anyhow::Result<Duration>| tokio::task::block_in_place(f);
    if with_base {
        let took = blocking(&|| build(&d, &["base", "--rebuild"]))?;
        rows.push(Row::new(
            "base recipe build (debootstrap and more)",
            "s",
            took.as_secs_f64(),
            None,
        ));
    }
    let (mut full, mut unchanged, mut last_changed, mut no_cache, mut floor) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let name = format!("bench-{run}");
        std::fs::write(&file, dockerfile("first"))?;
        let args = [name.as_str(), "-f", &file_s, &ctx_s];
        full.push(blocking(&|| {
            build(&d, &[&args[..], &["--no-cache"]].concat())
        })?);
        unchanged.push(blocking(&|| build(&d, &args))?);
        std::fs::write(&file, dockerfile(&format!("changed-{run}")))?;
        last_changed.push(blocking(&|| build(&d, &args))?);
        no_cache.push(blocking(&|| {
            build(&d, &[&args[..], &["--no-cache"]].concat())
        })?);
        floor.push(blocking(&|| copy_tree(&base_tree))?);
    }
    let p50 = |v: &mut Vec<Duration>| ms(percentile(v, 50.0));
    let floor = p50(&mut floor);
    for (figure, samples) in [
        (
            "3-step Dockerfile FROM base, full build (apt install, COPY, RUN)",
            &mut full,
        ),
        (
            "the same, rebuilt unchanged (whole-build cache)",
            &mut unchanged,
        ),
        (
            "the same, last step changed (2 steps replayed from the step cache)",
            &mut last_changed,
        ),
        ("the same, --no-cache", &mut no_cache),
    ] {
        rows.push(Row::new(
            format!("{figure}, p50, vs cp -a of base's tree"),
            "ms",
            p50(samples),
            Some(floor),
        ));
    }
    Ok(rows)
}
