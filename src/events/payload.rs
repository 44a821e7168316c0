//! The events as consumers receive them (EventBridge's `Detail`, a
//! webhook's body): the Standard Webhooks shape `{type, timestamp, data}`,
//! `data` being the view the API answers, rendered from the outbox item.

use crate::clock::iso;
use crate::config::Config;
use crate::domain::{AccountId, ChangeType, Health, MemberState, OrgState, OrganizationId, OutboxItem, RoleArn};
use crate::views::ConnectionView;
use serde::Serialize;

/// A connection's event.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ConnectionEvent)]
pub struct Payload {
    #[serde(rename = "type")]
    #[schema(value_type = crate::domain::ChangeType)]
    pub kind: &'static str,
    /// When the change was stored, RFC 3339.
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: PayloadData,
}

/// The connection as the API shows it, with the event's own fields.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ConnectionEventData)]
pub struct PayloadData {
    #[serde(flatten)]
    pub connection: ConnectionView,
    /// Per connection, strictly increasing (not contiguous): order by it and
    /// drop one already seen.
    pub sequence: u64,
    /// The health before a `connection.health_changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_health: Option<Health>,
    /// The role before a `connection.role_changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_role_arn: Option<RoleArn>,
}

/// `organization.member_changed`: a member account's state, as
/// `GET /v1/organizations/{id}` shows it, before and after.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = MemberChangedEvent)]
pub struct MemberPayload {
    /// `organization.member_changed`
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: MemberPayloadData,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MemberChangedEventData)]
pub struct MemberPayloadData {
    pub organization_id: OrganizationId,
    pub aws_account_id: AccountId,
    pub previous_state: MemberState,
    pub state: MemberState,
    /// Why it is not connected, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The member's health before, as the organization view showed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_health: Option<Health>,
    /// Its health now, as the organization view shows it: `degraded` for a
    /// connected member the organization's guardrails block, whatever its
    /// role's own health (`connection.health`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// The member's connection as the API shows it.
    pub connection: ConnectionView,
    /// The member connection's sequence (as its `connection.*` events).
    pub sequence: u64,
}

/// `organization.state_changed`: the organization's state, as
/// `GET /v1/organizations/{id}` shows it, before and after.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationStateChangedEvent)]
pub struct OrganizationPayload {
    /// `organization.state_changed`
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: OrganizationPayloadData,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrganizationStateChangedEventData)]
pub struct OrganizationPayloadData {
    pub organization_id: OrganizationId,
    pub previous_state: OrgState,
    pub state: OrgState,
    /// What the state means, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The management connection as the API shows it (its change made this one).
    pub management_connection: ConnectionView,
    /// The management connection's sequence (as its `connection.*` events).
    pub sequence: u64,
}

/// One event of an item, ready to send.
pub struct Rendered {
    pub kind: ChangeType,
    /// The webhook-id: the same for the event wherever and however often it goes.
    pub message_id: String,
    pub body: String,
}

/// The item's events: its connection's (unless it only changes a member's
/// or the organization's state), its member's state change and its
/// organization's.
pub fn render(item: &OutboxItem, config: &Config) -> Vec<Rendered> {
    let c = item.connection.clone();
    let principal = config.principals.get(&c.partition).map(String::as_str);
    let view = || ConnectionView::new(c.clone(), principal, item.at);
    let id = format!("msg_{}_{}", item.connection_id.as_str(), item.sequence);
    let mut out = Vec::new();
    if !matches!(
        item.kind,
        ChangeType::MemberChanged | ChangeType::OrganizationStateChanged
    ) {
        let p = Payload {
            kind: item.kind.as_str(),
            timestamp: iso(item.at),
            data: PayloadData {
                connection: view(),
                sequence: item.sequence,
                previous_health: item.previous_health,
                previous_role_arn: item.previous_role_arn.clone(),
            },
        };
        out.push(Rendered {
            kind: item.kind,
            message_id: id.clone(),
            body: serde_json::to_string(&p).expect("payloads serialize"),
        });
    }
    if let Some(m) = &item.member {
        let p = MemberPayload {
            kind: ChangeType::MemberChanged.as_str(),
            timestamp: iso(item.at),
            data: MemberPayloadData {
                organization_id: m.organization_id.clone(),
                aws_account_id: m.aws_account_id.clone(),
                previous_state: m.previous_state,
                state: m.state,
                reason: m.reason.clone(),
                previous_health: m.previous_health,
                health: m.health,
                connection: view(),
                sequence: item.sequence,
            },
        };
        out.push(Rendered {
            kind: ChangeType::MemberChanged,
            message_id: format!("{id}_member"),
            body: serde_json::to_string(&p).expect("payloads serialize"),
        });
    }
    if let Some(o) = &item.organization {
        let p = OrganizationPayload {
            kind: ChangeType::OrganizationStateChanged.as_str(),
            timestamp: iso(item.at),
            data: OrganizationPayloadData {
                organization_id: o.organization_id.clone(),
                previous_state: o.previous_state,
                state: o.state,
                reason: o.reason.clone(),
                management_connection: view(),
                sequence: item.sequence,
            },
        };
        out.push(Rendered {
            kind: ChangeType::OrganizationStateChanged,
            message_id: format!("{id}_organization"),
            body: serde_json::to_string(&p).expect("payloads serialize"),
        });
    }
    out
}

/// One entry of the event catalogue: a type, when it is sent, and the
/// schema (a component of the OpenAPI document) its payload follows.
pub struct CatalogEntry {
    pub kind: &'static str,
    pub when: &'static str,
    pub schema: String,
    /// Whether it may come thin (`ThinPayload`): every state change's event.
    pub may_be_thin: bool,
}

/// When each state change's event is sent (the OpenAPI document's
/// `webhooks` section and docs/events.md's table say the same).
fn when(kind: ChangeType) -> &'static str {
    match kind {
        ChangeType::Connected => "A pending (or expired) connection's role is verified: it is connected.",
        ChangeType::HealthChanged => {
            "A connected connection's health changes (healthy, degraded, broken), by a re-check or a verification; `data.previousHealth` is the health before."
        }
        ChangeType::ExternalIdRotated => {
            "A rotation completes: a role is verified with the new external ID, which replaces the old one."
        }
        ChangeType::Disconnected => "A connection is disconnected (by a client, its stack, or an offboarding).",
        ChangeType::RoleChanged => {
            "A connected connection is switched to another role (`POST /v1/connections/{id}/role` verified it); `data.previousRoleArn` is the role before. Also when that verification completes a rotation or changes the health, which `data` then shows."
        }
        ChangeType::Unlinked => {
            "A connected organization member's stack instance was deleted: Spot no longer uses its role, and the connection is `pending` again with its external ID (the account re-added connects with it)."
        }
        ChangeType::AccountAssigned => {
            "The platform assigned an organization member its Spot account (`PUT /v1/connections/{id}/account`): `data.accountId`."
        }
        ChangeType::MemberChanged => {
            "An organization member's state changes: by a change of its member connection (then beside that connection's own event), its first enrollment (`missing` to `pending`), or a reconciliation that finds its account suspended, moved out of the targeted units, gone from the organization, or back; or a connected member's guardrails start or stop blocking what Spot needs (`data.health` `degraded`, `data.reason` naming the policy and its level)."
        }
        ChangeType::OrganizationStateChanged => {
            "An organization's state changes with its management connection, beside that connection's own event: its management stack was deleted (`active` to `managementStackDeleted`: the management connection is `connection.unlinked`, `data.reason` says what to do), or created again (back to `active`, beside `connection.connected`)."
        }
    }
}

/// Every event a partner can receive: the state changes (`ChangeType::ALL`)
/// and the webhooks' own two.
pub fn catalog() -> Vec<CatalogEntry> {
    use utoipa::ToSchema;
    let mut out: Vec<CatalogEntry> = ChangeType::ALL
        .into_iter()
        .map(|kind| CatalogEntry {
            kind: kind.as_str(),
            when: when(kind),
            schema: match kind {
                ChangeType::MemberChanged => MemberPayload::name().into_owned(),
                ChangeType::OrganizationStateChanged => OrganizationPayload::name().into_owned(),
                _ => Payload::name().into_owned(),
            },
            may_be_thin: true,
        })
        .collect();
    out.push(CatalogEntry {
        kind: crate::domain::TEST_EVENT,
        when: "Sent by `POST /v1/webhooks/{id}/test` to that webhook alone, whatever it subscribes to.",
        schema: crate::webhooks::TestPayload::name().into_owned(),
        may_be_thin: false,
    });
    out.push(CatalogEntry {
        kind: crate::webhooks::DISABLED_EVENT,
        when: "An endpoint was disabled after failing too long: put on the bus for the platform and written to the webhook's deliveries log, never sent to the endpoint.",
        schema: crate::webhooks::DisabledPayload::name().into_owned(),
        may_be_thin: false,
    });
    out
}

/// An event sent thin: where its full payload is too large (over 64 KB
/// for a webhook, 256 KB for the bus), its type, ids and sequence, and
/// the API path that answers the full view now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ThinPayload {
    #[serde(rename = "type")]
    #[schema(value_type = crate::domain::ChangeType)]
    pub kind: &'static str,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: ThinData,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThinData {
    /// Always true: the view is left out; GET `url` for it.
    pub thin: bool,
    /// The connection (a connection's event).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::ConnectionId>)]
    pub id: Option<String>,
    /// The member's organization, account and connection (a member's
    /// event); the organization and its management connection (an
    /// organization's event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<OrganizationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_account_id: Option<AccountId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::ConnectionId>)]
    pub connection_id: Option<String>,
    pub sequence: u64,
    /// The API path (under the API's base URL) of the full view:
    /// `/v1/connections/{id}`, or `/v1/organizations/{id}` for a member's
    /// or an organization's event.
    pub url: String,
}

/// `event` (one of `render(item)`'s) sent thin.
pub fn thin(item: &OutboxItem, event: &Rendered) -> String {
    let connection = item.connection_id.as_str().to_owned();
    let data = match (&item.member, event.kind) {
        (Some(m), ChangeType::MemberChanged) => ThinData {
            thin: true,
            id: None,
            organization_id: Some(m.organization_id.clone()),
            aws_account_id: Some(m.aws_account_id.clone()),
            connection_id: Some(connection),
            sequence: item.sequence,
            url: format!("/v1/organizations/{}", m.organization_id.as_str()),
        },
        (_, ChangeType::OrganizationStateChanged) if item.organization.is_some() => {
            let o = item.organization.as_ref().expect("checked");
            ThinData {
                thin: true,
                id: None,
                organization_id: Some(o.organization_id.clone()),
                aws_account_id: None,
                connection_id: Some(connection),
                sequence: item.sequence,
                url: format!("/v1/organizations/{}", o.organization_id.as_str()),
            }
        }
        _ => ThinData {
            thin: true,
            url: format!("/v1/connections/{connection}"),
            id: Some(connection),
            organization_id: None,
            aws_account_id: None,
            connection_id: None,
            sequence: item.sequence,
        },
    };
    let p = ThinPayload {
        kind: event.kind.as_str(),
        timestamp: iso(item.at),
        data,
    };
    serde_json::to_string(&p).expect("payloads serialize")
}
