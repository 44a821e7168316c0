"""Init time of each Lambda binary beside the bare runtime (scripts/bench-init):
from exec to its first next-invocation request against a stand-in Lambda
Runtime API on loopback (rehearse/runtime_api.py, the rehearsal's), median
of --runs, the binaries interleaved so drifts in load hit all alike.

Beside the wall time, the CPU time the process (all its threads) ran until
then (/proc/PID/task/*/schedstat): the load of other processes stretches the
wall time on a busy machine, not that.

Each starts with the settings its function has in AWS (stand-in values: no
call leaves the machine before the first event, which never comes) and
Lambda's own variables. Prints per binary the median, min and max and its
ratio to examples/bare_lambda.

    python init_times.py --bin-dir target/debug --runs 5
"""

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "rehearse"))
from runtime_api import Runtime  # noqa: E402

LAMBDA = {
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIAINITBENCH", "AWS_SECRET_ACCESS_KEY": "init-bench", "AWS_SESSION_TOKEN": "init-bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/init-bench", "AWS_LAMBDA_LOG_STREAM_NAME": "init-bench",
    "AWS_EC2_METADATA_DISABLED": "true", "PATH": "/usr/bin:/bin",
}
SERVICE = {
    "ACCOUNT_CONNECT_STORE": "dynamodb://account-connect-init-bench",
    "ACCOUNT_CONNECT_JWT_SECRET": "init-bench-secret-0123456789abcdef0123456789",
    "ACCOUNT_CONNECT_CALLBACK_KEY": "init-bench-callback-key-0123456789abcdef0123",
    "ACCOUNT_CONNECT_CURSOR_KEY": "init-bench-cursor-key-0123456789abcdef012345",
}
# Binary (under --bin-dir) -> its function's own settings.
FUNCTIONS = {
    "examples/bare_lambda": {},
    "account-connect": SERVICE,
    "account-connect-callback": SERVICE,
    "account-connect-dispatcher": dict(
        SERVICE,
        ACCOUNT_CONNECT_EVENT_BUS="account-connect-init-bench",
        ACCOUNT_CONNECT_WEBHOOK_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/init-bench-attempts",
    ),
    "account-connect-recheck": dict(
        SERVICE,
        ACCOUNT_CONNECT_RECHECK_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/init-bench-recheck",
    ),
    "account-connect-relay": {
        "ACCOUNT_CONNECT_RELAY_URL": "https://api.example.com/v1/relay/aws-us-gov",
        "ACCOUNT_CONNECT_RELAY_KEY_SECRET": "account-connect-relay-key",
    },
}


def cpu_ms(pid):
    """CPU time all the process's threads ran, in ms."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e6


def once(binary, env, log_dir):
    runtime = Runtime(os.path.basename(binary), "arn:aws:lambda:us-east-1:123456789012:function:init-bench", 30)
    try:
        runtime.start(binary, dict(LAMBDA, AWS_LAMBDA_FUNCTION_NAME=os.path.basename(binary), **env),
                      os.path.join(log_dir, os.path.basename(binary) + ".log"))
        ms = runtime.init_ms(wait_s=20)
        if ms is None:
            with open(os.path.join(log_dir, os.path.basename(binary) + ".log"), "rb") as f:
                raise SystemExit(f"{binary} never asked for an event: {f.read().decode('utf-8', 'replace')[-500:]}")
        return ms, cpu_ms(runtime.process.pid)
    finally:
        runtime.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    times = {name: [] for name in FUNCTIONS}
    cpu = {name: [] for name in FUNCTIONS}
    with tempfile.TemporaryDirectory() as logs:
        for _ in range(args.runs):
            for name, env in FUNCTIONS.items():
                wall, ran = once(os.path.abspath(os.path.join(args.bin_dir, name)), env, logs)
                times[name].append(wall)
                cpu[name].append(ran)
    bare = statistics.median(times["examples/bare_lambda"])
    bare_cpu = statistics.median(cpu["examples/bare_lambda"])
    for name, xs in times.items():
        med, ran = statistics.median(xs), statistics.median(cpu[name])
        print(f"  {name:<28} median {med:6.2f} ms   min {min(xs):6.2f}   max {max(xs):6.2f}   "
              f"{med / bare:4.2f}x bare   CPU {ran:6.2f} ms ({ran / bare_cpu:4.2f}x) ({len(xs)} runs)")
    worst = max(statistics.median(xs) / bare for xs in times.values())
    print(f"  worst ratio to bare_lambda: {worst:.2f} (target <= 1.5: {'met' if worst <= 1.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
