#!/usr/bin/env bash
# Builds Warren and installs it. Idempotent; run as root.
#
#   /usr/local/bin/warren                 CLI and daemon (release build)
#   /usr/local/lib/warren/warren-agent    static in-sandbox agent
#
# up.sh starts the daemon with `--agent-binary /usr/local/lib/warren/warren-agent`.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need_root
find_cargo

log "building the workspace (release)"
(cd "$WARREN_ROOT" && cargo build --release --bins)
build_static_agent

install_file "$WARREN_ROOT/target/release/warren" "$WARREN_BIN"
install_file "$STATIC_AGENT" "$WARREN_AGENT"
log "warren: $WARREN_BIN; agent: $WARREN_AGENT"
