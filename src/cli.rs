//! The binary's commands: the Lambda entry point, `serve`, and operator tools.

use crate::api::{router, AppState};
use crate::config::Config;
use crate::domain::Partition;
use crate::policy::{render, Permissions, Selection};
use std::process::ExitCode;

const USAGE: &str = "usage:
  account-connect serve [--addr 127.0.0.1:3000]   run the API locally
  account-connect policy --partition aws [--products a,b] [--integrations c,d]
                                                  print the rendered policies
In AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it serves API Gateway events.";

pub fn main(args: Vec<String>) -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let result = match args.first().map(String::as_str) {
        None if in_lambda => run_lambda(),
        Some("serve") => serve(&args[1..]),
        Some("policy") => policy(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` pairs after a command.
fn flags(
    args: &[String],
    allowed: &[&str],
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let name = a
            .strip_prefix("--")
            .filter(|n| allowed.contains(n))
            .ok_or_else(|| format!("unknown argument {a:?}\n{USAGE}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_owned(), value.clone());
    }
    Ok(out)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn run_lambda() -> Result<(), String> {
    crate::telemetry::init(true);
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let app = router(AppState::new(config));
    runtime()?
        .block_on(lambda_http::run(app))
        .map_err(|e| e.to_string())
}

fn serve(args: &[String]) -> Result<(), String> {
    crate::telemetry::init(false);
    let f = flags(args, &["addr"])?;
    let addr = f
        .get("addr")
        .map(String::as_str)
        .unwrap_or("127.0.0.1:3000")
        .to_owned();
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let app = router(AppState::new(config));
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("account-connect listening on http://{local}");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())
    })
}

fn list(v: Option<&String>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

fn policy(args: &[String]) -> Result<(), String> {
    let f = flags(args, &["partition", "products", "integrations"])?;
    let partition: Partition = f
        .get("partition")
        .map(String::as_str)
        .unwrap_or("aws")
        .parse()
        .map_err(|e: crate::domain::ParseError| e.message)?;
    let permissions = if f.contains_key("products") || f.contains_key("integrations") {
        Permissions::Custom {
            products: list(f.get("products")),
            integrations: list(f.get("integrations")),
        }
    } else {
        Permissions::Default
    };
    let selection = Selection::resolve(partition, &permissions).map_err(|e| e.to_string())?;
    let rendered = render(&selection).map_err(|e| e.to_string())?;
    let out = serde_json::to_string_pretty(&rendered).map_err(|e| e.to_string())?;
    println!("{out}");
    Ok(())
}
