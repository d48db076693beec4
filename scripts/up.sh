#!/usr/bin/env bash
# Runs Warren on this machine: dependencies, build, daemon, base template.
# Idempotent: with the daemon already up it only prints where things are.
# Run as root.
#
# Environment (optional): WARREN_LISTEN (default 127.0.0.1:8700),
# WARREN_DATA_DIR (default /var/lib/warren).

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need_root

LISTEN="${WARREN_LISTEN:-127.0.0.1:8700}"
DATA_DIR="${WARREN_DATA_DIR:-/var/lib/warren}"
LOG_FILE="$DATA_DIR/warren.log"
PID_FILE="$DATA_DIR/warren.pid"
URL="http://$LISTEN"

healthy() { curl -fsS --max-time 2 "$URL/v1/health" >/dev/null 2>&1; }

running_pid() {
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # A recycled pid is not our daemon (a replaced binary reads "... (deleted)").
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
        "$WARREN_BIN" | "$WARREN_BIN (deleted)") echo "$pid" ;;
        *) return 1 ;;
    esac
}

start_daemon() {
    FIRST_START=""
    [ -f "$DATA_DIR/client.json" ] || FIRST_START=1
    mkdir -p "$DATA_DIR"
    # The log is the operator's alone (0600), like everything in DATA_DIR.
    (umask 077 && touch "$LOG_FILE")
    chmod 600 "$LOG_FILE"
    log "starting warren serve on $LISTEN (log: $LOG_FILE)"
    # setsid: the daemon outlives this script and its terminal.
    setsid "$WARREN_BIN" serve --listen "$LISTEN" --data-dir "$DATA_DIR" \
        --agent-binary "$WARREN_AGENT" </dev/null >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    local pid=$! i
    for i in $(seq 1 100); do
        if healthy; then
            show_new_admin_key
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOG_FILE" >&2; die "warren serve exited; see $LOG_FILE"; }
        sleep 0.2
    done
    die "warren serve did not answer $URL/v1/health within 20 s; see $LOG_FILE"
}

# On the first start the daemon writes the admin key to client.json only
# (never to its log); show it here, once, on the terminal.
show_new_admin_key() {
    [ -n "$FIRST_START" ] && [ -f "$DATA_DIR/client.json" ] || return 0
    local key
    key="$(sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p' "$DATA_DIR/client.json")"
    [ -n "$key" ] && echo "Admin API key (shown once; kept in $DATA_DIR/client.json): $key"
    return 0
}

# Ready iff its index tags a version `latest` (docs/templates.md).
base_ready() {
    grep -qs '"latest"' "$DATA_DIR/templates/base/index.json"
}

print_addresses() {
    echo
    echo "Warren is running (pid $(running_pid || echo '?'))."
    echo "  API:           $URL   (OpenAPI: $URL/v1/openapi.json)"
    echo "  client config: $DATA_DIR/client.json   (url and admin API key; the warren CLI reads it)"
    if curl -fsS --max-time 2 -o /dev/null "$URL/" 2>/dev/null; then
        echo "  dashboard:     $URL/"
    else
        echo "  dashboard:     not served by this build"
    fi
    echo "  log:           $LOG_FILE"
    echo "Try: warren create   (then: warren exec ID -- uname -a)"
}

main() {
    if running_pid >/dev/null && healthy && base_ready; then
        print_addresses
        return 0
    fi
    bash "$WARREN_ROOT/scripts/deps.sh"
    bash "$WARREN_ROOT/scripts/build.sh"
    if running_pid >/dev/null && healthy; then
        log "daemon already running"
    elif healthy; then
        die "something else answers on $LISTEN; stop it or set WARREN_LISTEN"
    else
        start_daemon
    fi
    if ! base_ready; then
        log "building the base template (about 20-60 s)"
        WARREN_CONFIG="$DATA_DIR/client.json" "$WARREN_BIN" template build base
    fi
    print_addresses
}

main "$@"
