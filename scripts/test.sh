#!/usr/bin/env bash
# Runs every check and test: dependencies, build, rustfmt, clippy, then
# `cargo nextest` with the `ci` profile (.config/nextest.toml). Run as root:
# sandbox tests start real gVisor sandboxes. The nextest summary is the last
# thing printed; the exit status is non-zero if any step failed.
#
# Tests find their inputs through:
#   WARREN_BIN              target/debug/warren
#   WARREN_TEST_AGENT       the static agent (release, crt-static)
#   WARREN_TEST_TEMPLATES   target/test-templates, filled here once with the
#                           `tiny`, `base` and `code-interpreter` templates by the template crate's
#                           `build-template` example. Tests that need another
#                           template build it there through the same locked
#                           store, so concurrent tests never build twice.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need_root
find_cargo
cd "$WARREN_ROOT"

bash scripts/deps.sh

# A one-off build gains nothing from incremental caches, which would double
# the target directory's size.
export CARGO_INCREMENTAL=0

log "building the workspace (debug)"
cargo build --workspace --bins
build_static_agent

export WARREN_BIN="$WARREN_ROOT/target/debug/warren"
export WARREN_TEST_AGENT="$STATIC_AGENT"
export WARREN_TEST_TEMPLATES="$WARREN_ROOT/target/test-templates"
log "preparing test templates in $WARREN_TEST_TEMPLATES (base takes 20-60 s the first time, code-interpreter 1-2 min more)"
cargo run -q -p warren-template --example build-template -- "$WARREN_TEST_TEMPLATES" tiny base code-interpreter >/dev/null

failed=()
log "cargo fmt --check"
cargo fmt --all -- --check || failed+=(rustfmt)
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings || failed+=(clippy)
if [ "${#failed[@]}" -gt 0 ]; then
    log "FAILED: ${failed[*]} (running the tests anyway; the run will fail)"
fi

log "cargo nextest (profile ci)"
status=0
cargo nextest run --workspace --no-fail-fast --profile ci || status=$?
if [ "${#failed[@]}" -gt 0 ] && [ "$status" -eq 0 ]; then
    status=1
fi
exit "$status"
