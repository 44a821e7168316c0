//! Why a command failed: one typed error for every command, each variant
//! with the message the operator acts on (printed on stderr; the command
//! exits 2). The lower layers' errors are kept, not flattened to text.

use crate::app::AppError;
use crate::callback::RetryLater;
use crate::config::ConfigError;
use crate::connections::ServiceError;
use crate::domain::{ConnectionId, OrganizationId, ParseError};
use crate::organizations::OrganizationError;
use crate::policy::{RenderError, SelectionError};
use crate::store::{CreateTableError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A setting in the environment is missing or not valid (the message
    /// names it).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The services cannot be built on the configured store.
    #[error(transparent)]
    App(#[from] AppError),
    /// A value given on the command line is not valid.
    #[error("{}", .0.message)]
    Invalid(#[from] ParseError),
    /// `org-callback --resource` names neither custom resource.
    #[error("--resource is enroll or link, not {0:?}")]
    UnknownResource(String),
    /// `policy`: the products and integrations do not make a selection.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// `policy`: the selection does not fit a role.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// `policy`: the rendered policies cannot be written as JSON.
    #[error("cannot write the policies as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `token` signs with the server's secret, and there is none.
    #[error("set ACCOUNT_CONNECT_JWT_SECRET (the same as the server's) to mint a token")]
    NoJwtSecret,
    /// `token`: the server would refuse a token with these claims (its own
    /// claims-to-tenant rule says why).
    #[error("the server would refuse this token: {0}")]
    Claims(#[from] crate::tenancy::TenancyError),
    /// `stack-callback` and `org-callback` sign the template's token with
    /// the server's callback key, and there is none.
    #[error("set ACCOUNT_CONNECT_CALLBACK_KEY (the server's) first")]
    NoCallbackKey,
    /// `init-table` creates a DynamoDB table, and the store is another.
    #[error("ACCOUNT_CONNECT_STORE must be dynamodb://TABLE")]
    NotDynamoDb,
    /// DynamoDB refused to create the table.
    #[error(transparent)]
    CreateTable(#[from] CreateTableError),
    /// The store failed a read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connection service refused or failed a read.
    #[error(transparent)]
    Connection(#[from] ServiceError),
    /// The organization service refused or failed a read.
    #[error(transparent)]
    Organization(#[from] OrganizationError),
    #[error("no connection {} in ACCOUNT_CONNECT_STORE", .0.as_str())]
    NoConnection(ConnectionId),
    #[error("no organization {0} in ACCOUNT_CONNECT_STORE")]
    NoOrganization(OrganizationId),
    /// The callback could not finish (the store is down, or its answer did
    /// not get through): run the command again.
    #[error(transparent)]
    Callback(#[from] RetryLater),
    /// The callback handled the request without answering it.
    #[error("the callback answered nothing")]
    NoAnswer,
    /// The loopback receiver for the callback's answer cannot be opened.
    #[error("cannot open the loopback receiver for the callback's answer: {0}")]
    Receiver(#[source] std::io::Error),
    /// `serve`: the address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    /// `serve`: the server stopped on an error.
    #[error("the server stopped: {0}")]
    Serve(#[source] std::io::Error),
    /// The async runtime cannot be started (threads or file descriptors).
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// `recheck`: some checks failed on the store or the queue (the summary
    /// on stdout counts them).
    #[error("{errors} re-check(s) failed on the store or the queue")]
    RecheckFailed { errors: usize },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    /// What the commands printed when their errors were strings, word for
    /// word: scripts and runbooks quote them.
    #[test]
    fn each_failure_prints_what_the_operator_acts_on() {
        let fixed = [
            (
                CliError::NoJwtSecret,
                "set ACCOUNT_CONNECT_JWT_SECRET (the same as the server's) to mint a token",
            ),
            (
                CliError::NoCallbackKey,
                "set ACCOUNT_CONNECT_CALLBACK_KEY (the server's) first",
            ),
            (CliError::NotDynamoDb, "ACCOUNT_CONNECT_STORE must be dynamodb://TABLE"),
            (
                CliError::UnknownResource("stack".into()),
                "--resource is enroll or link, not \"stack\"",
            ),
            (
                CliError::RecheckFailed { errors: 3 },
                "3 re-check(s) failed on the store or the queue",
            ),
            (CliError::NoAnswer, "the callback answered nothing"),
        ];
        for (e, printed) in fixed {
            assert_eq!(e.to_string(), printed);
        }
        let id: ConnectionId = "con-0123456789abcdef01234567".parse().unwrap();
        assert_eq!(
            CliError::NoConnection(id).to_string(),
            "no connection con-0123456789abcdef01234567 in ACCOUNT_CONNECT_STORE"
        );
        let org: OrganizationId = "awsorg-0123456789abcdef01234567".parse().unwrap();
        assert_eq!(
            CliError::NoOrganization(org).to_string(),
            "no organization awsorg-0123456789abcdef01234567 in ACCOUNT_CONNECT_STORE"
        );
    }

    /// The lower layers' errors stay typed: their own message, and the
    /// error itself kept (as the variant, or as the source).
    #[test]
    fn lower_errors_keep_their_type_and_message() {
        let parse = "aws-mars".parse::<crate::domain::Partition>().unwrap_err();
        let e = CliError::from(parse.clone());
        assert_eq!(e.to_string(), parse.message, "the value's message, as before");
        assert!(e.source().is_some_and(|s| s.is::<ParseError>()));

        let e = CliError::from(StoreError::Unavailable("timed out".into()));
        assert_eq!(e.to_string(), "the store cannot be reached: timed out");
        assert!(matches!(e, CliError::Store(StoreError::Unavailable(_))));

        let e = CliError::from(ConfigError("ACCOUNT_CONNECT_STORE: use sqlite://PATH".into()));
        assert_eq!(e.to_string(), "ACCOUNT_CONNECT_STORE: use sqlite://PATH");

        let refused = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let e = CliError::Listen {
            addr: "127.0.0.1:3000".into(),
            source: refused,
        };
        assert_eq!(e.to_string(), "cannot listen on 127.0.0.1:3000: address in use");
        assert!(e.source().is_some_and(|s| s.is::<std::io::Error>()));
    }
}
