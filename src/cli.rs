//! The `account-connect` binary's commands: `serve` and operator tools (the
//! API's Lambda entry point is src/bin/api.rs, without SQLite or these).

use crate::app;
use crate::config::Config;
use crate::domain::{ConnectionId, Partition};
use crate::policy::{render, Permissions, Selection};
use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

mod error;
mod org_callback;

pub use error::CliError;

/// Connects customers' AWS accounts to Spot through a cross-account IAM role.
#[derive(Debug, Parser)]
#[command(
    name = "account-connect",
    version = crate::telemetry::LONG_VERSION,
    propagate_version = true,
    after_help = "In AWS Lambda the API runs as account-connect-api (DynamoDB only, no commands)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API locally.
    Serve {
        /// Address to listen on (port 0: any free port) [default: ACCOUNT_CONNECT_ADDR, else 127.0.0.1:3000].
        #[arg(long)]
        addr: Option<String>,
    },
    /// Mint a bearer token for the local server (signed with ACCOUNT_CONNECT_JWT_SECRET).
    Token {
        /// The organization the token is for.
        #[arg(long)]
        org: String,
        /// Spot accounts the user may act on, comma-separated, or '*' for every account (the default).
        #[arg(long)]
        accounts: Option<String>,
        /// The user.
        #[arg(long, default_value = "cli")]
        sub: String,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(i64).range(1..=MAX_TOKEN_HOURS))]
        hours: i64,
    },
    /// Create the DynamoDB table ACCOUNT_CONNECT_STORE names.
    InitTable,
    /// Deliver the request a customer's stack sends to the callback (local runs).
    StackCallback {
        /// The connection the stack belongs to.
        #[arg(long)]
        connection: String,
        /// The role the stack created.
        #[arg(long)]
        role_arn: String,
        /// The stack's ARN.
        #[arg(long)]
        stack_id: String,
        /// Create, Update or Delete.
        #[arg(long, default_value = "Create")]
        request_type: String,
    },
    /// Deliver the request an organization member's stack instance sends (local runs).
    OrgCallback {
        /// The organization (awsorg-…).
        #[arg(long)]
        organization: String,
        /// The custom resource: enroll or link.
        #[arg(long)]
        resource: String,
        /// The stack instance's ARN (its account is the member's).
        #[arg(long)]
        stack_id: String,
        /// The role the instance created (link only).
        #[arg(long)]
        role_arn: Option<String>,
        /// Create, Update or Delete.
        #[arg(long, default_value = "Create")]
        request_type: String,
        /// The resource's physical id (Update and Delete).
        #[arg(long)]
        physical_id: Option<String>,
    },
    /// Print the rendered policies.
    Policy {
        /// aws, aws-us-gov or aws-cn.
        #[arg(long, default_value = "aws")]
        partition: String,
        /// Products, comma-separated (with --integrations: a custom selection).
        #[arg(long)]
        products: Option<String>,
        /// Integrations, comma-separated.
        #[arg(long)]
        integrations: Option<String>,
    },
    /// Re-check every connected connection now (enumerator and workers in one process over ACCOUNT_CONNECT_STORE); prints a JSON summary.
    Recheck {
        /// Checks run at once (default: ACCOUNT_CONNECT_RECHECK_CONCURRENCY).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=crate::recheck::command::MAX_CONCURRENCY as i64))]
        concurrency: Option<u16>,
    },
}

/// A year: longer-lived local tokens are a mistake.
const MAX_TOKEN_HOURS: i64 = 366 * 24;

pub fn main(args: Vec<String>) -> ExitCode {
    let cli = match Cli::try_parse_from(std::iter::once("account-connect".to_owned()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and exit 0; mistakes exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let Some(command) = cli.command else {
        let _ = Cli::command().write_long_help(&mut std::io::stderr());
        return ExitCode::from(2);
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Runs a command. The configuration is read from the environment once,
/// here, and handed to the command.
fn run(command: Command) -> Result<(), CliError> {
    // The one command that needs no configuration.
    if let Command::Policy {
        partition,
        products,
        integrations,
    } = command
    {
        return policy(&partition, products, integrations);
    }
    let config = Config::from_env()?;
    match command {
        Command::Policy { .. } => unreachable!("answered without the configuration"),
        Command::Serve { addr } => serve(config, addr.unwrap_or_else(default_addr)),
        Command::Token {
            org,
            accounts,
            sub,
            hours,
        } => token(&config, &org, accounts, &sub, hours),
        Command::InitTable => init_table(&config),
        Command::StackCallback {
            connection,
            role_arn,
            stack_id,
            request_type,
        } => stack_callback(config, connection, role_arn, stack_id, request_type),
        Command::Recheck { concurrency } => recheck(config, concurrency.map(usize::from)),
        Command::OrgCallback {
            organization,
            resource,
            stack_id,
            role_arn,
            request_type,
            physical_id,
        } => org_callback::run(
            config,
            org_callback::Args {
                organization,
                resource,
                stack_id,
                role_arn,
                request_type,
                physical_id,
            },
        ),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// Where `serve` listens without `--addr`: the README's link names this port.
const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// `ACCOUNT_CONNECT_ADDR` if set (scripts/test runs the README's
/// `cargo run -- serve` on a free port through it), else the default.
fn default_addr() -> String {
    crate::config::serve_addr().unwrap_or_else(|| DEFAULT_ADDR.to_owned())
}

fn serve(mut config: Config, addr: String) -> Result<(), CliError> {
    crate::telemetry::init(false);
    let generated = config.jwt_secret.is_none();
    if generated {
        // A fresh secret per run: tokens from an earlier run stop working.
        config.jwt_secret = Some(crate::ids::random_token(32).into_bytes().into());
    }
    let (secret, issuer, audience) = (
        config.jwt_secret.clone().expect("set above"),
        config.jwt_issuer.clone(),
        config.jwt_audience.clone(),
    );
    let store = config.store_url.clone();
    let services = app::build(config)?;
    let app = app::router(services.clone());
    runtime()?.block_on(async move {
        // The outbox goes to the bus (if ACCOUNT_CONNECT_EVENT_BUS is set) and
        // to webhooks, and webhook attempts are made, in-process.
        let dispatcher = crate::events::Dispatcher::for_services(&services).await;
        tokio::spawn(dispatcher.run(std::time::Duration::from_secs(1)));
        let cannot_listen = |source| CliError::Listen {
            addr: addr.clone(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(cannot_listen)?;
        let local = listener.local_addr().map_err(cannot_listen)?;
        let by = crate::tenancy::LocalIssuer {
            secret: secrecy::ExposeSecret::expose_secret(&secret),
            issuer: &issuer,
            audience: &audience,
        };
        let token = crate::tenancy::mint_as(
            by,
            &dev_claims("org-dev", crate::tenancy::AccountsClaim::every(), "dev-user", 12),
        );
        println!("account-connect listening on http://{local} (store: {store})");
        if generated {
            println!("ACCOUNT_CONNECT_JWT_SECRET is not set: a random secret is used for this run.");
        }
        println!("Bearer token for org \"org-dev\", valid 12 h:\n  {token}");
        println!("Open the connect wizard: http://{local}/#token={token}");
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        crate::api::serve::serve(listener, app, crate::api::serve::Timeouts::default(), stop)
            .await
            .map_err(CliError::Serve)
    })
}

fn list(v: Option<&str>) -> Vec<String> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

fn policy(partition: &str, products: Option<String>, integrations: Option<String>) -> Result<(), CliError> {
    let partition: Partition = partition.parse()?;
    let permissions = if products.is_some() || integrations.is_some() {
        Permissions::Custom {
            products: list(products.as_deref()),
            integrations: list(integrations.as_deref()),
        }
    } else {
        Permissions::Default
    };
    let selection = Selection::resolve(partition, &permissions)?;
    let rendered = render(&selection)?;
    let out = serde_json::to_string_pretty(&rendered)?;
    println!("{out}");
    Ok(())
}

fn dev_claims(org: &str, accounts: crate::tenancy::AccountsClaim, sub: &str, hours: i64) -> crate::tenancy::Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    crate::tenancy::Claims {
        sub: sub.to_owned(),
        org: org.to_owned(),
        accounts: Some(accounts),
        exp: Some(now + hours * 3600),
        iat: Some(now),
    }
}

fn token(config: &Config, org: &str, accounts: Option<String>, sub: &str, hours: i64) -> Result<(), CliError> {
    // Without --accounts (or with --accounts '*'), the token says "every account" explicitly.
    let accounts = match accounts.as_deref() {
        None | Some(crate::tenancy::EVERY_ACCOUNT) => crate::tenancy::AccountsClaim::every(),
        Some(list_of) => crate::tenancy::AccountsClaim::Only(list(Some(list_of))),
    };
    let claims = dev_claims(org, accounts, sub, hours);
    // The server's own claims-to-tenant step (org, sub and accounts rules):
    // a token it would refuse is not minted.
    claims.clone().into_tenant(true)?;
    // The issuer and audience the server checks: the same settings on both sides.
    let by = crate::tenancy::LocalIssuer::of(config).ok_or(CliError::NoJwtSecret)?;
    println!("{}", crate::tenancy::mint_as(by, &claims));
    Ok(())
}

fn init_table(config: &Config) -> Result<(), CliError> {
    let table = config
        .store_url
        .strip_prefix("dynamodb://")
        .ok_or(CliError::NotDynamoDb)?;
    runtime()?.block_on(crate::store::create_table(table, &app::aws_configs()))?;
    println!("table {table} is ready");
    Ok(())
}

/// Plays CloudFormation for a local run: sends the callback the request a
/// stack's custom resource would, receives the answer on a loopback port,
/// and prints it.
fn stack_callback(
    mut config: Config,
    connection: String,
    role: String,
    stack: String,
    request_type: String,
) -> Result<(), CliError> {
    crate::telemetry::init(false);
    let key = config.callback_key.clone().ok_or(CliError::NoCallbackKey)?;
    let id: ConnectionId = connection.parse()?;
    // The answer comes back to this command's own loopback receiver.
    config.callback_response_hosts = Some(vec!["127.0.0.1".into()]);
    let responder = app::responder(&config);
    let state = app::build(config)?;
    runtime()?.block_on(async move {
        let conn = state
            .connections
            .get_for_token(&id)
            .await?
            .ok_or(CliError::NoConnection(id))?;
        // What the connection's template carries (none without an AWS account).
        let token =
            crate::automatic::token::issue_for(secrecy::ExposeSecret::expose_secret(&key), &conn).unwrap_or_default();
        let message = serde_json::json!({
            "RequestType": request_type,
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
        deliver(&state, &responder, message).await
    })
}

/// The fleet re-check in one process over the configured store, with an
/// in-process queue; prints the summary as JSON.
fn recheck(mut config: Config, concurrency: Option<usize>) -> Result<(), CliError> {
    if let Some(n) = concurrency {
        config.recheck_concurrency = n.clamp(1, crate::recheck::command::MAX_CONCURRENCY);
    }
    // Logs to stderr, so stdout is the summary alone.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .compact()
        .try_init();
    let concurrency = config.recheck_concurrency;
    let options = crate::recheck::EnumerateOptions::from_config(&config);
    let services = crate::app::build(config)?;
    let worker = crate::recheck::Worker::for_services(&services);
    let summary = runtime()?.block_on(crate::recheck::local::run(&worker, &options, concurrency));
    println!(
        "{}",
        serde_json::to_string_pretty(&crate::recheck::command::report(&summary, concurrency)).expect("json")
    );
    if summary.errors > 0 {
        return Err(CliError::RecheckFailed { errors: summary.errors });
    }
    Ok(())
}

/// Delivers a custom resource request (its ResponseURL set to a loopback
/// receiver here) through the callback entry point and prints the answer.
async fn deliver(
    state: &crate::services::Services,
    responder: &crate::callback::Responder,
    mut message: serde_json::Value,
) -> Result<(), CliError> {
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
        .map_err(CliError::Receiver)?;
    let url = format!("http://{}/response", listener.local_addr().map_err(CliError::Receiver)?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    message["ResponseURL"] = serde_json::json!(url);
    crate::callback::handle_message(state, responder, &message.to_string()).await?;
    let answer = rx.await.map_err(|_| CliError::NoAnswer)?;
    println!("{answer}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_command(partition: &str, products: Option<&str>) -> Command {
        Command::Policy {
            partition: partition.into(),
            products: products.map(String::from),
            integrations: None,
        }
    }

    /// `token` mints only what the server accepts, by the server's rule:
    /// a bad org, user or account is refused before the secret is needed.
    #[test]
    fn token_refuses_claims_the_server_refuses() {
        use crate::tenancy::TenancyError;
        let config = Config::default();
        for (org, accounts, sub) in [
            ("org#with/odd chars", None, "cli"),
            ("", None, "cli"),
            (&*"o".repeat(129), None, "cli"),
            ("org-a", None, ""),
            ("org-a", Some("act-1,nope"), "cli"),
            ("org-a", Some("act-1,*"), "cli"),
        ] {
            let e = token(&config, org, accounts.map(String::from), sub, 1).unwrap_err();
            assert!(matches!(e, CliError::Claims(_)), "{org:?} {accounts:?} {sub:?}: {e:?}");
            assert!(e.to_string().starts_with("the server would refuse this token: "), "{e}");
        }
        match token(&config, "org-a", None, "cli", 1).unwrap_err() {
            CliError::Claims(TenancyError::InvalidIdentity) => panic!("a valid org refused"),
            CliError::NoJwtSecret => {}
            other => panic!("{other:?}"),
        }
        match token(&config, "org-a_B-9", Some("act-1,act-2".into()), "cli", 1).unwrap_err() {
            CliError::NoJwtSecret => {}
            other => panic!("{other:?}"),
        }
    }

    /// `policy` reads no configuration: its own mistakes come back typed.
    #[test]
    fn policy_mistakes_come_back_typed() {
        match run(policy_command("aws-mars", None)) {
            Err(CliError::Invalid(e)) => assert_eq!(e.field, "partition"),
            other => panic!("{other:?}"),
        }
        match run(policy_command("aws", Some("not-a-product"))) {
            Err(e @ CliError::Selection(_)) => assert!(e.to_string().contains("not-a-product"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
