# scripts/common.sh: set-up shared by scripts/test and scripts/try-local
# (sourced, not run): the pinned virtualenv and moto on a free loopback port.
# Expects ROOT (the repo) and runs from it.

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
REQUIREMENTS="tests/requirements.txt"
STAMP="$VENV/.requirements.sha256"
MOTO_LOG="$ROOT/target/moto.log"
MOTO_START_TIMEOUT=30   # seconds
MOTO_SERVE="${MOTO_SERVE:-$ROOT/tests/tools/moto_serve.py}"   # start_moto's launcher
MOTO_PID=""
PARTITION_MOTO_PIDS=()
SERVE_PID=""   # scripts/test's readme_serve

log() { printf '%s\n' "$*"; }
die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# run_step "title" function [args...]: header, run, elapsed seconds.
run_step() {
    local title="$1"; shift
    local start="$EPOCHREALTIME"
    log ""
    log "==> $title"
    "$@"
    log "<== $title: $(elapsed "$start") s"
}

elapsed() {
    local start="$1"
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# stop_pid PID [NAME]: TERM, up to 5 s, then KILL.
stop_pid() {
    local pid="$1" name="${2:-moto_server}"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        # Give it up to 5 s to exit, then force.
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        log "$name (pid $pid) stopped"
    fi
}

cleanup() {
    local status=$?
    stop_pid "$SERVE_PID" "account-connect serve"
    stop_pid "$MOTO_PID"
    for pid in "${PARTITION_MOTO_PIDS[@]}"; do stop_pid "$pid"; done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- steps -----------------------------------------------------------------

setup_venv() {
    [[ -f "$REQUIREMENTS" ]] || die "$REQUIREMENTS not found"
    local want have=""
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    if [[ "$want" == "$have" ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
        log ".venv is up to date with $REQUIREMENTS ($want)"
        return
    fi
    log "building .venv from $REQUIREMENTS ($want) with $("$PYTHON" --version 2>&1)"
    # From scratch, so packages dropped from the requirements go too.
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        "$VENV/bin/python" -m pip install --quiet --requirement "$REQUIREMENTS"
    "$VENV/bin/python" -m pip check
    check_tools
    printf '%s\n' "$want" >"$STAMP"
}

# Each tool the tests rely on must start; run once after (re)building .venv.
check_tools() {
    local bin="$VENV/bin"
    "$bin/moto_server" --help >/dev/null
    "$bin/cfn-lint" --version
    SAM_CLI_TELEMETRY=0 "$bin/sam" --version
    # The binary is a cargo subcommand: its first argument must be "lambda".
    "$bin/cargo-lambda" lambda --version
    "$bin/python" -c 'import policy_sentry, parliament, spotinst_sdk2, schemathesis'
    log "moto_server, cfn-lint, sam, cargo-lambda, policy_sentry, parliament, spotinst_sdk2, schemathesis: ok"
}

lint() {
    local sam_home="$ROOT/target/sam-cli"
    mkdir -p "$sam_home"
    # sam keeps its settings in $__SAM_CLI_APP_DIR/metadata.json; a fresh
    # lastVersionCheck stops `sam validate` asking PyPI for a newer release.
    printf '{"telemetryEnabled": false, "lastVersionCheck": %s.0}\n' "$(date +%s)" \
        >"$sam_home/metadata.json"
    local -a lint_env=(env -u AWS_PROFILE -u AWS_ENDPOINT_URL
        AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
        SAM_CLI_TELEMETRY=0 "__SAM_CLI_APP_DIR=$sam_home")
    log "--- cfn-lint template.yaml"
    "${lint_env[@]}" "$VENV/bin/cfn-lint" template.yaml
    log "--- sam validate --lint --template template.yaml"
    "${lint_env[@]}" "$VENV/bin/sam" validate --lint --template template.yaml
    # The relay runs in GovCloud and China: linted for their regions.
    log "--- cfn-lint infra/partition-relay.yaml (us-gov-west-1, cn-north-1)"
    "${lint_env[@]}" "$VENV/bin/cfn-lint" --regions us-gov-west-1 cn-north-1 -- infra/partition-relay.yaml
}

free_port() {
    "$VENV/bin/python" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# wait_moto PID URL LOG: until moto answers, or die.
wait_moto() {
    local pid="$1" url="$2" logfile="$3" deadline
    deadline=$((SECONDS + MOTO_START_TIMEOUT))
    until curl --silent --fail --noproxy '*' --max-time 2 -o /dev/null "$url/moto-api/"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$logfile" >&2 || true
            die "moto_server exited before answering on $url (log: $logfile)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$logfile" >&2 || true
            die "moto_server did not answer on $url within ${MOTO_START_TIMEOUT}s (log: $logfile)"
        fi
        sleep 0.2
    done
    log "moto_server pid $pid answering on $url (log: $logfile)"
}

start_moto() {
    local port url
    port="$(free_port)"
    url="http://127.0.0.1:$port"
    mkdir -p "$(dirname "$MOTO_LOG")"
    # moto_server with DynamoDB taken one request at a time (tests/tools/moto_serve.py says why).
    "$VENV/bin/python" "$MOTO_SERVE" -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 </dev/null &
    MOTO_PID=$!
    wait_moto "$MOTO_PID" "$url" "$MOTO_LOG"

    export AWS_ENDPOINT_URL="$url"
    export AWS_ACCESS_KEY_ID=testing
    export AWS_SECRET_ACCESS_KEY=testing
    export AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true
    export ACCOUNT_CONNECT_TEST_VENV="$VENV"
    export ACCOUNT_CONNECT_TEST_MOTO=1
    unset AWS_PROFILE AWS_SESSION_TOKEN
    # Never send loopback traffic through a proxy someone has set.
    export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
    export no_proxy="$NO_PROXY"
}


# Two more moto servers, for GovCloud and China, each refusing any key but
# its partition's (tests/tools/moto_serve.py --access-key), and the AWS
# config files that reach all three: commercial through the default
# profile, the others through the profiles ACCOUNT_CONNECT_PROFILE_* name.
# Run after start_moto. The tests run without AWS_ENDPOINT_URL (see
# without_endpoint_env), which would send every profile to one server.
start_partition_motos() {
    local dir="$ROOT/target/aws-test" partition profile region key port url logfile
    mkdir -p "$dir"
    {
        printf '[default]\nregion = us-east-1\nendpoint_url = %s\n' "$AWS_ENDPOINT_URL"
    } >"$dir/config"
    printf '[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n' >"$dir/credentials"
    export ACCOUNT_CONNECT_TEST_MOTO_URL="$AWS_ENDPOINT_URL"
    for partition in AWS_US_GOV AWS_CN; do
        case "$partition" in
            AWS_US_GOV) profile=govcloud region=us-gov-west-1 key=AKIAGOVCLOUDVENDOR01 ;;
            AWS_CN) profile=china region=cn-north-1 key=AKIACHINAVENDOR00001 ;;
        esac
        port="$(free_port)"
        url="http://127.0.0.1:$port"
        logfile="$ROOT/target/moto-$profile.log"
        "$VENV/bin/python" "$ROOT/tests/tools/moto_serve.py" -H 127.0.0.1 -p "$port" --access-key "$key" \
            >"$logfile" 2>&1 </dev/null &
        PARTITION_MOTO_PIDS+=("$!")
        wait_moto "$!" "$url" "$logfile"
        printf '[profile %s]\nregion = %s\nendpoint_url = %s\n' "$profile" "$region" "$url" >>"$dir/config"
        printf '[%s]\naws_access_key_id = %s\naws_secret_access_key = %s-secret\n' "$profile" "$key" "$profile" \
            >>"$dir/credentials"
        export "ACCOUNT_CONNECT_TEST_PROFILE_$partition=$profile"
        export "ACCOUNT_CONNECT_TEST_KEY_$partition=$key"
        export "ACCOUNT_CONNECT_TEST_MOTO_URL_$partition=$url"
    done
    export AWS_CONFIG_FILE="$dir/config"
    export AWS_SHARED_CREDENTIALS_FILE="$dir/credentials"
}

# Runs a command reaching moto through the config files only.
without_endpoint_env() {
    env -u AWS_ENDPOINT_URL -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=default "$@"
}
