#!/usr/bin/env bash
# Counts restores that report epoll events for registrations deleted before
# the checkpoint (see stale-epoll.c and docs/runtime.md). Run as root:
#
#   scripts/runsc-epoll-check/check.sh [TRIALS] [RUNSC] [runsc flags...]
#
# Each trial starts a fresh container that makes a few loopback connections,
# checkpoints it with --leave-running 0.5 s later, restores the image under a
# new id and looks for "STALE" in the restored output; once with TCP and once
# with unix sockets (the control: no netstack). Everything lives in a
# temporary directory with its own runsc --root and is removed at the end.
set -euo pipefail

trials=${1:-10}
runsc=${2:-runsc}
shift $(( $# > 2 ? 2 : $# ))
flags=("$@")
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d /tmp/runsc-epoll-check.XXXXXX)"
root="$work/runsc"
R() { "$runsc" --root "$root" --network=none "${flags[@]}" "$@"; }
cleanup() {
    for c in $(R list -q 2>/dev/null); do R delete --force "$c" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/bundle/rootfs" "$root"
gcc -O2 -static -pthread -o "$work/bundle/rootfs/stale-epoll" "$here/stale-epoll.c"

run_trials() {
    local kind=$1 stale=0 i
    (cd "$work/bundle" && rm -f config.json && "$runsc" spec -- /stale-epoll "$kind" 10)
    for i in $(seq "$trials"); do
        R run --detach --bundle "$work/bundle" "a$kind$i" >"$work/run.log" 2>&1
        sleep 0.5
        R checkpoint --leave-running --compression=none --image-path="$work/img" "a$kind$i" >/dev/null
        R kill "a$kind$i" KILL >/dev/null 2>&1 || true
        R restore --detach --bundle "$work/bundle" --image-path="$work/img" "b$kind$i" >"$work/restored.log" 2>&1
        sleep 0.5
        if grep -aq STALE "$work/restored.log"; then stale=$((stale + 1)); fi
        R kill "b$kind$i" KILL >/dev/null 2>&1 || true
        R delete --force "a$kind$i" "b$kind$i" >/dev/null 2>&1 || true
        rm -rf "$work/img"
    done
    echo "$kind: $stale of $trials restores reported a deleted registration ($("$runsc" --version | head -1), flags: ${flags[*]:-none})"
}

run_trials tcp
run_trials unix
