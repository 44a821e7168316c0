#!/usr/bin/env bash
# tests/browser/run.sh: the browser tests of the connect wizard.
#
#   ACCOUNT_CONNECT_BIN=target/debug/account-connect AWS_ENDPOINT_URL=http://127.0.0.1:PORT tests/browser/run.sh [files...]
#
# Installs Debian's Chromium if /usr/bin/chromium is missing, runs `npm ci`
# when node_modules is missing or older than package-lock.json, then runs
# Node's test runner on every *.test.js here (or the files given). The
# environment (AWS_* for moto, ACCOUNT_CONNECT_BIN) passes through to the
# tests and the servers they start. Exits non-zero if any test fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CHROMIUM=/usr/bin/chromium
STAMP="$HERE/node_modules/.package-lock.json"   # npm ci writes it; its age tells staleness

die() { printf 'tests/browser/run.sh: error: %s\n' "$*" >&2; exit 1; }

if [[ ! -x "$CHROMIUM" ]]; then
    echo "installing Debian's chromium (no browser downloads: the network only reaches package registries)"
    SUDO=""
    [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
fi

command -v node >/dev/null || die "node is not on PATH"
# A relative ACCOUNT_CONNECT_BIN means relative to the caller's directory: fix it before cd.
if [[ -n "${ACCOUNT_CONNECT_BIN:-}" && "$ACCOUNT_CONNECT_BIN" != /* ]]; then
    ACCOUNT_CONNECT_BIN="$PWD/$ACCOUNT_CONNECT_BIN"
fi
# Test files may be named from the caller's directory or from this one.
files=()
for f in "$@"; do
    if [[ "$f" != /* && -f "$f" ]]; then files+=("$PWD/$f"); else files+=("$f"); fi
done
cd "$HERE"
if [[ ! -d node_modules || ! -f "$STAMP" || package-lock.json -nt "$STAMP" || package.json -nt "$STAMP" ]]; then
    echo "npm ci (playwright-core and axe-core, pinned in package-lock.json)"
    # --ignore-scripts: nothing to build, and no install hook may fetch a browser.
    npm ci --ignore-scripts --no-audit --no-fund
fi

export ACCOUNT_CONNECT_BIN="${ACCOUNT_CONNECT_BIN:-$ROOT/target/debug/account-connect}"
[[ -x "$ACCOUNT_CONNECT_BIN" ]] || die "no server binary at $ACCOUNT_CONNECT_BIN (cargo build first)"
[[ -n "${AWS_ENDPOINT_URL:-}" ]] || die "AWS_ENDPOINT_URL is not set: the tests need moto (scripts/test starts it)"
# The servers talk to moto only: fake credentials when none are given, and
# never a wait on the EC2 metadata service for real ones.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
# Loopback traffic must never go through a proxy someone has set.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

[[ ${#files[@]} -gt 0 ]] || files=(*.test.js)
# One file at a time: each starts a server and a browser, and the timing
# figures mean more on an otherwise idle machine. node --test exits 1 when
# any test fails; `exec` hands that status to the caller.
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
