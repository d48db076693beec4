# Shared helpers for the scripts in this directory; source it, do not run it.
# shellcheck shell=bash

set -euo pipefail

WARREN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where scripts/build.sh installs the binaries; up.sh and the daemon use them.
WARREN_BIN=/usr/local/bin/warren
WARREN_AGENT=/usr/local/lib/warren/warren-agent
# The static agent as cargo leaves it (a separate target dir: the
# crt-static RUSTFLAGS never invalidate the normal build).
STATIC_TARGET=x86_64-unknown-linux-gnu
STATIC_AGENT="$WARREN_ROOT/target/$STATIC_TARGET/release/warren-agent"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$(basename "$0") must run as root (sandboxes need runsc, namespaces and nftables): sudo $0"
}

# Puts cargo on PATH, also under sudo (which resets PATH).
find_cargo() {
    command -v cargo >/dev/null 2>&1 && return 0
    local home
    for home in "${CARGO_HOME:-}" "$HOME/.cargo" ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo"}; do
        if [ -n "$home" ] && [ -x "$home/bin/cargo" ]; then
            export PATH="$home/bin:$PATH"
            return 0
        fi
    done
    die "cargo not found; install Rust (https://rustup.rs) or put cargo on PATH"
}

# Builds the agent as a static binary and checks that it is one.
build_static_agent() {
    log "building the static agent"
    (cd "$WARREN_ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release -p warren-agent --target "$STATIC_TARGET")
    local kind
    kind="$(file -b "$STATIC_AGENT")"
    case "$kind" in
        *"statically linked"* | *"static-pie linked"*) ;;
        *) die "$STATIC_AGENT is not static ($kind); it must run inside any root filesystem" ;;
    esac
}

# Copies $1 to $2 atomically (a running binary can be replaced), only when it changed.
install_file() {
    local src="$1" dest="$2"
    if cmp -s "$src" "$dest" 2>/dev/null; then
        return 0
    fi
    mkdir -p "$(dirname "$dest")"
    install -m 0755 "$src" "$dest.new"
    mv -f "$dest.new" "$dest"
    log "installed $dest"
}
