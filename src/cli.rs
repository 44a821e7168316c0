//! The binary's commands: the Lambda entry point, `serve`, and operator tools.

use crate::api::{router, AppState};
use crate::config::Config;
use crate::domain::Partition;
use crate::policy::{render, Permissions, Selection};
use std::process::ExitCode;

const USAGE: &str = "usage:
  account-connect serve [--addr 127.0.0.1:3000]   run the API locally
  account-connect token --org ORG [--accounts act-1,act-2|'*'] [--sub USER] [--hours 12]
                                                  mint a bearer token (ACCOUNT_CONNECT_JWT_SECRET)
  account-connect init-table                      create the DynamoDB table ACCOUNT_CONNECT_STORE names
  account-connect stack-callback --connection ID --role-arn ARN --stack-id ARN [--request-type Create]
                                                  deliver the request a customer's stack sends (local runs)
  account-connect policy --partition aws [--products a,b] [--integrations c,d]
                                                  print the rendered policies
  account-connect recheck [--concurrency N]        re-check every connected connection now
In AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it serves API Gateway events.";

pub fn main(args: Vec<String>) -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let result = match args.first().map(String::as_str) {
        None if in_lambda => run_lambda(),
        Some("serve") => serve(&args[1..]),
        Some("policy") => policy(&args[1..]),
        Some("token") => token(&args[1..]),
        Some("init-table") => init_table(),
        Some("stack-callback") => stack_callback(&args[1..]),
        Some("recheck") => crate::recheck::command::main(&args[1..]),
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
fn flags(args: &[String], allowed: &[&str]) -> Result<std::collections::BTreeMap<String, String>, String> {
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
    if config.cursor_key.is_none() {
        tracing::warn!("ACCOUNT_CONNECT_CURSOR_KEY is not set: a cursor from one instance is refused by another");
    }
    let app = router(AppState::new(config)?);
    runtime()?.block_on(lambda_http::run(app)).map_err(|e| e.to_string())
}

fn serve(args: &[String]) -> Result<(), String> {
    crate::telemetry::init(false);
    let f = flags(args, &["addr"])?;
    let addr = f.get("addr").map(String::as_str).unwrap_or("127.0.0.1:3000").to_owned();
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    let generated = config.jwt_secret.is_none();
    if generated {
        // A fresh secret per run: tokens from an earlier run stop working.
        config.jwt_secret = Some(crate::ids::random_token(32).into_bytes());
    }
    let secret = config.jwt_secret.clone().expect("set above");
    let store = config.store_url.clone();
    let app = router(AppState::new(config)?);
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let token = crate::auth::mint(
            &secret,
            &dev_claims("org-dev", crate::auth::AccountsClaim::every(), "dev-user", 12),
        );
        println!("account-connect listening on http://{local} (store: {store})");
        if generated {
            println!("ACCOUNT_CONNECT_JWT_SECRET is not set: a random secret is used for this run.");
        }
        println!("Bearer token for org \"org-dev\", valid 12 h:\n  {token}");
        println!("Open the connect wizard: http://{local}/#token={token}");
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

fn dev_claims(org: &str, accounts: crate::auth::AccountsClaim, sub: &str, hours: i64) -> crate::auth::Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    crate::auth::Claims {
        sub: sub.to_owned(),
        org: org.to_owned(),
        accounts: Some(accounts),
        exp: Some(now + hours * 3600),
        iat: Some(now),
    }
}

fn token(args: &[String]) -> Result<(), String> {
    let f = flags(args, &["org", "accounts", "sub", "hours"])?;
    let org = f.get("org").ok_or("--org is required")?;
    // Without --accounts (or with --accounts '*'), the token says "every account" explicitly.
    let accounts = match f.get("accounts").map(String::as_str) {
        None | Some(crate::auth::EVERY_ACCOUNT) => crate::auth::AccountsClaim::every(),
        Some(_) => crate::auth::AccountsClaim::Only(list(f.get("accounts"))),
    };
    let hours: i64 = f
        .get("hours")
        .map(|h| h.parse().map_err(|_| "--hours takes a whole number"))
        .transpose()?
        .unwrap_or(12);
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let secret = config
        .jwt_secret
        .ok_or("set ACCOUNT_CONNECT_JWT_SECRET (the same as the server's) to mint a token")?;
    let claims = dev_claims(org, accounts, f.get("sub").map(String::as_str).unwrap_or("cli"), hours);
    println!("{}", crate::auth::mint(&secret, &claims));
    Ok(())
}

fn init_table() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let table = config
        .store_url
        .strip_prefix("dynamodb://")
        .ok_or("ACCOUNT_CONNECT_STORE must be dynamodb://TABLE")?
        .to_owned();
    runtime()?.block_on(crate::store::create_table(&table))?;
    println!("table {table} is ready");
    Ok(())
}

/// Plays CloudFormation for a local run: sends the callback the request a
/// stack's custom resource would, receives the answer on a loopback port,
/// and prints it.
fn stack_callback(args: &[String]) -> Result<(), String> {
    crate::telemetry::init(false);
    let f = flags(args, &["connection", "role-arn", "stack-id", "request-type"])?;
    let need = |k: &str| f.get(k).cloned().ok_or_else(|| format!("--{k} is required"));
    let (connection, role, stack) = (need("connection")?, need("role-arn")?, need("stack-id")?);
    let request_type = f.get("request-type").cloned().unwrap_or_else(|| "Create".into());
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    let key = config
        .callback_key
        .clone()
        .ok_or("set ACCOUNT_CONNECT_CALLBACK_KEY (the server's) first")?;
    let id: crate::connections::ConnectionId = connection.parse().map_err(|e: crate::domain::ParseError| e.message)?;
    // The answer comes back to this command's own loopback receiver.
    config.callback_response_hosts = Some(vec!["127.0.0.1".into()]);
    let responder = crate::automatic::callback::Responder::new(&config);
    let state = AppState::new(config)?;
    runtime()?.block_on(async move {
        let conn = state
            .connections
            .store
            .get_any(&id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no connection {connection} in ACCOUNT_CONNECT_STORE"))?;
        // What the connection's template carries (none without an AWS account).
        let token = crate::automatic::token::issue_for(&key, &conn).unwrap_or_default();
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
        let receiver = axum::Router::new().route(
            "/response",
            axum::routing::put(move |body: String| async move {
                if let Some(tx) = tx.lock().expect("lock").take() {
                    let _ = tx.send(body);
                }
                ""
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let url = format!("http://{}/response", listener.local_addr().map_err(|e| e.to_string())?);
        tokio::spawn(async move { axum::serve(listener, receiver).await });
        let message = serde_json::json!({
            "RequestType": request_type,
            "ResponseURL": url,
            "StackId": stack,
            "RequestId": crate::ids::random_token(8),
            "LogicalResourceId": crate::automatic::CUSTOM_RESOURCE_ID,
            "PhysicalResourceId": connection,
            "ResourceType": "Custom::SpotConnection",
            "ResourceProperties": {
                "ConnectionId": connection,
                "RoleArn": role,
                "CallbackToken": token,
            }
        });
        crate::automatic::callback::handle_message(&state, &responder, &message.to_string())
            .await
            .map_err(|e| e.to_string())?;
        let answer = rx.await.map_err(|_| "the callback answered nothing".to_owned())?;
        println!("{answer}");
        Ok(())
    })
}
