//! Why a connection request was refused or failed.

use super::cursor::CursorError;
use crate::automatic::TemplateUploadError;
use crate::domain::{ConnectedStack, Connection, ConnectionId, ExternalId, Partition, SpotAccountId, Status};
use crate::policy::{RenderError, SelectionError};
use crate::store::StoreError;
use crate::verify::Report;

/// Why a connection request was refused or failed; each message says what
/// to do. The API maps them to statuses and codes (src/api/error.rs), the
/// callback quotes them to CloudFormation.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no connection with this id; list yours with GET /v1/connections")]
    NotFound,
    #[error("your token does not allow acting on the Spot account {0}")]
    AccountNotAllowed(SpotAccountId),
    #[error(
        "{} accounts cannot be connected here yet: no vendor principal is configured for {} (the operator sets ACCOUNT_CONNECT_PRINCIPAL_{})",
        .0.display_name(),
        .0,
        .0.env_suffix()
    )]
    PartitionNotConfigured(Partition),
    /// No vendor identity to verify with in this partition.
    #[error(
        "{} accounts cannot be connected here yet: the service has no credentials to verify roles in {} (the operator sets {}, or {} for local runs)",
        .0.display_name(),
        .0,
        crate::config::Config::credential_settings(*.0)[0],
        crate::config::Config::credential_settings(*.0)[1]
    )]
    PartitionCredentialsMissing(Partition),
    #[error("{0}")]
    Selection(SelectionError),
    #[error("{0}")]
    Render(RenderError),
    /// The Spot account already has a live connection.
    #[error(
        "this Spot account already has a live connection ({}); use it, or disconnect it first",
        .0.as_str()
    )]
    AccountBusy(ConnectionId),
    #[error("this Idempotency-Key was used for a different request; use a new key for a new request")]
    IdempotencyMismatch,
    /// The connection's status does not allow this.
    #[error("cannot {action} a connection that is {}", status.as_str())]
    WrongStatus { status: Status, action: &'static str },
    /// A check failed; the connection is unchanged but for an audit event.
    /// Failed only for AWS's or our reasons (AWS unreachable, throttling, an
    /// answer that is not AWS's): nothing is asked of the customer.
    #[error("{}", verification_failed(report))]
    VerificationFailed {
        report: Box<Report>,
        connection: Box<Connection>,
    },
    /// Another connection is connected to this role.
    #[error("another connection is already connected to this role; create a separate role for this account or disconnect the other connection")]
    RoleHeld,
    /// A rotation is already pending: put this ID in the trust policy and
    /// verify the role, or disconnect.
    #[error(
        "a rotation is already pending with the external ID {}: put it in the role's trust policy and \
         verify the role (POST /v1/connections/{{id}}/role) to finish it before rotating again",
        .0.as_str()
    )]
    RotationPending(ExternalId),
    /// The cursor is not one this service issued for this caller and query.
    #[error("{0}")]
    InvalidCursor(CursorError),
    /// An automatic connection needs the AWS account it is for: the
    /// callback token is bound to it.
    #[error("an automatic connection needs awsAccountId: the 12-digit id of the AWS account the stack will run in (the account you are logged in to)")]
    AwsAccountRequired,
    /// The connection is connected by another CloudFormation stack.
    #[error(
        "this connection is connected by the CloudFormation stack {}; change or delete that stack",
        .0.stack_id
    )]
    OtherStack(ConnectedStack),
    /// The automatic flow's template could not be stored; nothing was created.
    #[error("{0}")]
    TemplateUpload(TemplateUploadError),
    /// Every attempt at the write lost its race with other writers of the
    /// same record (the read-change-write loop gave up): nothing was saved,
    /// and a retry in a moment succeeds. Not the store being unreachable.
    #[error("this record was being changed by too many requests at once; nothing was saved, try again in a moment")]
    TooManyConcurrentWrites,
    /// The AWS account is the service's own (a vendor principal's, or the
    /// deployment's): refused before any AWS call, so no tenant can have
    /// the service assume, read or describe its own roles.
    #[error("the AWS account {0} belongs to this service, not to a customer; name a role in your own AWS account")]
    VendorAccount(String),
    /// The tenant's rate limit for this operation is used up this minute.
    #[error("{0}")]
    RateLimited(crate::limits::Throttled),
    /// Another verification of this connection is running (one at a time
    /// per connection, across every instance).
    #[error("this connection's role is being verified by another request right now; wait for it to finish (GET /v1/connections/{{id}} shows the outcome), then retry if you still need to")]
    VerificationInProgress,
    /// The organization's management connection: its role comes from the
    /// management stack and it ends with the organization, so a client
    /// cannot re-point, rotate or disconnect it on its own.
    #[error("this connection is the management connection of the organization {0}; it changes only through the organization: update the management stack to change its role or external ID, offboard with DELETE /v1/organizations/{0} to disconnect it")]
    ManagedByOrganization(crate::domain::OrganizationId),
    #[error("{}", store_message(.0))]
    Store(StoreError),
}

impl From<crate::limits::Throttled> for ServiceError {
    fn from(t: crate::limits::Throttled) -> Self {
        ServiceError::RateLimited(t)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e)
    }
}

fn verification_failed(report: &Report) -> String {
    if report.inconclusive() {
        format!(
            "The role was not verified: AWS could not be reached, or did not answer itself ({} did not finish). This says nothing about your role and nothing changed; try again in a minute.",
            failed_titles(report)
        )
    } else {
        format!(
            "The role is not connected: {} failed. The report says what to change.",
            failed_titles(report)
        )
    }
}

fn failed_titles(report: &Report) -> String {
    report
        .failed_checks()
        .map(|c| c.title.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a client is told of a store failure: never the store's own detail.
fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(_) => {
            "the service cannot reach its database right now; nothing was saved, try again in a moment".into()
        }
        StoreError::OutsideQuery => CursorError::Invalid.to_string(),
        StoreError::Conflict => "the connection changed while we were updating it; read it again and retry".into(),
        other => format!("storage error: {other}"),
    }
}

impl ServiceError {
    /// The store could not be reached (or refused for load), or a write lost
    /// every race: worth a retry,
    /// with the store's words for the log.
    pub fn unavailable(&self) -> Option<&str> {
        match self {
            ServiceError::Store(StoreError::Unavailable(m)) => Some(m),
            ServiceError::TooManyConcurrentWrites => Some("too many concurrent writes"),
            _ => None,
        }
    }
}
