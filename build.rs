//! The commit this build is made from, for `/health`, `--version` and every
//! log line (`telemetry`): ACCOUNT_CONNECT_COMMIT when set (a build outside
//! git, as in a container), else `git rev-parse`, else "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The Lambda functions' binaries (Cargo.toml's `[[bin]]`s but the CLI).
const LAMBDA_BINARIES: [&str; 5] = [
    "account-connect-api",
    "account-connect-callback",
    "account-connect-dispatcher",
    "account-connect-recheck",
    "account-connect-relay",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The Lambda functions' release binaries are linked at a fixed address
    // (not position-independent): each start of a PIE relocates its ~38,000
    // pointers in read-only data, about 150 copy-on-write page faults, a
    // third of a function's init (docs/benchmarks.md). Given up for them:
    // randomising the address of the binary's own image (libraries, stack,
    // heap and mappings stay randomised). Other builds stay PIE.
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if linux && std::env::var("PROFILE").as_deref() == Ok("release") {
        for bin in LAMBDA_BINARIES {
            println!("cargo:rustc-link-arg-bin={bin}=-no-pie");
        }
    }
    println!("cargo:rerun-if-env-changed=ACCOUNT_CONNECT_COMMIT");
    let commit = std::env::var("ACCOUNT_CONNECT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ACCOUNT_CONNECT_COMMIT={commit}");
    // Built again when HEAD moves (a commit, a checkout), and only then.
    // Paths that do not exist are left out: cargo would rerun every build.
    let mut watch: Vec<PathBuf> = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(PathBuf::from(&dir).join("HEAD"));
    }
    if let (Some(common), Some(head)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        watch.push(PathBuf::from(&common).join(head));
        watch.push(PathBuf::from(&common).join("packed-refs"));
    }
    for path in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
