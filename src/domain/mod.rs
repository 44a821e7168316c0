//! Domain types that can only hold valid values (input is parsed once, at
//! the edge), and the connection model built from them.

mod account_id;
mod connection;
mod external_id;
pub mod guardrails;
mod members;
mod organization;
mod outbox;
mod partition;
mod permissions;
mod region;
mod role_arn;
mod spot_account;
mod trust_policy;
mod webhook;
mod webhook_recovery;

pub use account_id::AccountId;
pub use connection::{
    CloudFormationLinks, ConnectedStack, Connection, ConnectionId, Drift, DriftFix, Event, EventKind, Health,
    InlineRead, LastRead, Method, NewConnection, PolicyRead, SimulationRead, Status, MAX_EVENT_DETAIL_BYTES,
};
pub use external_id::{ExternalId, ExternalIdPrefix};
pub use members::{members, Counts, MemberChange, MemberRow, MemberState};
pub use organization::{
    Listing, Membership, OrgState, Organization, OrganizationChange, OrganizationId, Reconciliation, SeenAccount,
    TargetId,
};
pub use outbox::{ChangeType, OutboxItem};
pub use partition::Partition;
pub use permissions::Permissions;
pub use region::Region;
pub use role_arn::RoleArn;
pub use spot_account::SpotAccountId;
pub use trust_policy::trust_policy;
pub use webhook::{
    parse_event_types, Attempt, AttemptResult, Delivery, DeliveryState, Disabling, OldSecret, SigningSecret, Webhook,
    WebhookId, WebhookState, WebhookUrl, DISABLE_AFTER_SECS, EVENT_TYPES, MAX_DESCRIPTION_LEN, MAX_OLD_SECRETS,
    MAX_RETRY_AFTER_SECS, OLD_SECRET_SECS, TEST_EVENT,
};
pub use webhook_recovery::{is_message_id, MAX_MESSAGE_ID_LEN};

/// Why a value was refused; the message is written for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub field: &'static str,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Random bytes of the service's ids (`con-`, `awsorg-`, `wh-`): 96 bits.
const ID_BYTES: usize = 12;

/// A new id: `prefix` and `ID_BYTES` random bytes in lowercase hex.
pub(crate) fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", crate::ids::random_token(ID_BYTES))
}

/// Whether `s` is `prefix` and exactly the lowercase hex `random_id` writes.
pub(crate) fn is_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|h| h.len() == 2 * ID_BYTES && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

/// Implements `Serialize`/`Deserialize` through `FromStr`/`as_str` so that
/// every JSON body is parsed by the same rules as every other input.
macro_rules! string_newtype_serde {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                raw.parse()
                    .map_err(|e: $crate::domain::ParseError| serde::de::Error::custom(e.message))
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_newtype_serde;

/// A schema for the OpenAPI document, written as JSON beside the parser whose
/// rules it states.
pub(crate) fn json_schema(v: serde_json::Value) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    serde_json::from_value(v).expect("a valid JSON Schema")
}

/// Implements `ToSchema` with the given JSON Schema.
macro_rules! string_newtype_schema {
    ($ty:ty, $schema:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::domain::json_schema($schema)
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}
pub(crate) use string_newtype_schema;
