//! The AWS Organization routes: start connecting an organization, watch its
//! members arrive, reconcile, offboard; and the platform's assignment of a
//! Spot account to a member.

use super::connections::{parse_id, view, CloudFormationTemplate};
use super::error::ApiError;
use super::extract::{Json, Path};
use super::AppState;
use crate::domain::Permissions;
use crate::domain::{AccountId, Partition, SpotAccountId};
use crate::organizations::{
    template, Counts, CreateOrganization, MemberRow, OrgState, OrganizationError, OrganizationId, OrganizationSnapshot,
    TargetId,
};
use crate::tenancy::Tenant;
use crate::views::{iso, ConnectionView};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CreateOrganization)]
pub struct CreateBody {
    /// The Spot account of the management account; members get theirs later.
    account_id: SpotAccountId,
    partition: Partition,
    permissions: Permissions,
    /// The organization's management account, where the stack runs.
    management_account_id: AccountId,
    /// Organizational units whose accounts connect; none: the whole
    /// organization (the stack then asks for the root id).
    #[serde(default)]
    #[schema(max_items = 50)] // organizations::MAX_TARGETS
    organizational_unit_ids: Vec<TargetId>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrganizationReconciliation)]
pub struct ReconciliationView {
    /// When the last reconciliation ran.
    #[schema(format = DateTime)]
    at: String,
    /// Accounts Organizations listed at `listedAt` (the management account aside).
    accounts: usize,
    /// Why the last reconciliation could not read the organization: it
    /// changed no member, and the members' states are from `listedAt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// When Organizations was last listed completely (`at`, unless the last
    /// reconciliation failed); absent when it never was.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    listed_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Organization)]
pub struct OrganizationView {
    id: OrganizationId,
    account_id: SpotAccountId,
    partition: Partition,
    permissions: Permissions,
    management_account_id: AccountId,
    organizational_unit_ids: Vec<TargetId>,
    /// `managementStackDeleted`: the management stack was deleted, and
    /// its role with it; `stateReason` says what to do.
    state: OrgState,
    /// What the state means and what to do, unless `active`.
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<String>,
    /// The StackSet the management stack creates for the members.
    stack_set_name: String,
    /// The role name in every member account.
    member_role_name: String,
    /// The management account's own connection; its cloudFormation has the stack to run.
    management_connection: ConnectionView,
    /// Every account known: members (but those assigned to a Spot account
    /// the token does not allow), and accounts of the targeted units without one.
    members: Vec<MemberRow>,
    /// Of the members shown.
    counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_reconciliation: Option<ReconciliationView>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    version: u64,
    /// The management template (only in the answer to its creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CloudFormationTemplate>)]
    template: Option<serde_json::Value>,
}

fn org_view(state: &AppState, s: OrganizationSnapshot, template: Option<serde_json::Value>) -> OrganizationView {
    let now = state.connections.now();
    let (members, counts) = crate::organizations::members(s.organization.listing(), &s.members, now);
    let o = s.organization;
    // Decided with the management connection: its stack deleted or not.
    let org_state = o.state_with(&s.management);
    OrganizationView {
        state_reason: o.state_reason(org_state),
        stack_set_name: template::stack_set_name(&o),
        member_role_name: template::member_role_name(&o),
        management_connection: view(state, s.management),
        members,
        counts,
        last_reconciliation: o.last_reconciliation.as_ref().map(|r| ReconciliationView {
            at: iso(r.at()),
            accounts: r.listing().map_or(0, |l| l.accounts.len()),
            error: r.error().map(str::to_owned),
            listed_at: r.listing().map(|l| iso(l.at)),
        }),
        id: o.id,
        account_id: o.account_id,
        partition: o.partition,
        permissions: o.permissions,
        management_account_id: o.management_account_id,
        organizational_unit_ids: o.organizational_unit_ids,
        state: org_state,
        created_at: iso(o.created_at),
        updated_at: iso(o.updated_at),
        version: o.version,
        template,
    }
}

/// A malformed id reads like an unknown one.
fn parse_org(raw: &str) -> Result<OrganizationId, ApiError> {
    raw.parse().map_err(|_| OrganizationError::NotFound.into())
}

#[utoipa::path(post, path = "/v1/organizations", tag = "organizations", operation_id = "createOrganization",
    summary = "Start connecting every account of an AWS Organization: the management stack to run (honours Idempotency-Key)",
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]+$", max_length = 255,
        description = "Replays the first answer to a repeated request with the same key")),
    request_body = CreateBody,
    responses(
        (status = 201, body = OrganizationView, description = "Created; `template` and the management connection's links are the stack to run"),
        (status = 200, body = OrganizationView, description = "The answer to an earlier request with this Idempotency-Key"),
        (status = 400, description = "Malformed JSON or Idempotency-Key"),
        (status = 403, description = "The token does not allow this Spot account"),
        (status = 409, description = "The Spot account has a live connection, or the Idempotency-Key was used for another request; nothing was written"),
        (status = 422, description = "A value is not acceptable, or the organization flow is not configured; see the error code"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let key = super::connections::idempotency_key(&headers)?;
    let req = CreateOrganization {
        account_id: body.account_id,
        partition: body.partition,
        permissions: body.permissions,
        management_account_id: body.management_account_id,
        organizational_unit_ids: body.organizational_unit_ids,
    };
    let (o, management, tpl, created) = state.organizations.create(&tenant, req, key).await?;
    let snapshot = OrganizationSnapshot {
        organization: o,
        management,
        members: Vec::new(),
    };
    Ok(super::connections::created_or_replayed(
        created,
        org_view(&state, snapshot, Some(tpl)),
    ))
}

#[utoipa::path(get, path = "/v1/organizations/{id}", tag = "organizations", operation_id = "getOrganization",
    summary = "The organization: every member with its state and reason, counts per state, the last reconciliation",
    params(("id" = OrganizationId, Path, description = "The organization (a malformed id reads as unknown: 404)")),
    responses((status = 200, body = OrganizationView), (status = 404, description = "No such organization for this token"), (status = 503, description = "The database cannot be reached; retry after Retry-After")))]
pub async fn get_one(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<OrganizationView>, ApiError> {
    let s = state.organizations.snapshot(&tenant, &parse_org(&id)?).await?;
    Ok(Json(org_view(&state, s, None)))
}

#[utoipa::path(delete, path = "/v1/organizations/{id}", tag = "organizations", operation_id = "offboardOrganization",
    summary = "Offboard: every member and the management connection disconnected; the customer's stacks and roles stay",
    params(("id" = OrganizationId, Path, description = "The organization (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = OrganizationView),
        (status = 403, description = "Members are assigned to Spot accounts the token does not allow (members_not_allowed, details.accountIds); nothing changed"),
        (status = 404, description = "No such organization for this token"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn offboard(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<OrganizationView>, ApiError> {
    let s = state.organizations.offboard(&tenant, &parse_org(&id)?).await?;
    Ok(Json(org_view(&state, s, None)))
}

#[utoipa::path(post, path = "/v1/organizations/{id}/sync", tag = "organizations", operation_id = "syncOrganization",
    summary = "Reconcile now: read the organization's accounts through the management role",
    params(("id" = OrganizationId, Path, description = "The organization (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = OrganizationView, description = "Reconciled; when Organizations could not be read, lastReconciliation.error says why"),
        (status = 404, description = "No such organization for this token"),
        (status = 409, description = "The organization was offboarded (organization_offboarded), or its management stack was deleted (management_stack_deleted: create it again, or offboard); nothing was read"),
        (status = 429, description = "The organization's syncs this minute are used up (rate_limited, details.limit = syncs; 6 a minute by default); nothing was done, retry after Retry-After"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn sync(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<OrganizationView>, ApiError> {
    let s = state.organizations.sync(&tenant, &parse_org(&id)?).await?;
    Ok(Json(org_view(&state, s, None)))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrganizationPreflight)]
pub struct PreflightView {
    organization_id: OrganizationId,
    #[schema(format = DateTime)]
    checked_at: String,
    /// Each account the StackSet would reach: whether Spot can assume its
    /// role (the RCPs), and the required actions its SCPs and RCPs deny
    /// (`denied`) or deny depending on a value Spot cannot know (`conditional`),
    /// each with the policy and the root, OU or account it is attached to.
    accounts: Vec<crate::organizations::PreflightAccount>,
}

#[utoipa::path(get, path = "/v1/organizations/{id}/preflight", tag = "organizations", operation_id = "preflightOrganization",
    summary = "Before the StackSet: what the organization's SCPs and RCPs will block in each account it would reach",
    params(("id" = OrganizationId, Path, description = "The organization (a malformed id reads as unknown: 404)")),
    responses(
        (status = 200, body = PreflightView),
        (status = 404, description = "No such organization for this token"),
        (status = 409, description = "The management connection is not connected yet (management_not_connected), its stack was deleted (management_stack_deleted: create it again, or offboard), or the organization was offboarded (organization_offboarded)"),
        (status = 429, description = "The organization's syncs this minute are used up (rate_limited, details.limit = syncs); a preflight counts as one"),
        (status = 502, description = "The management role could not read the organization or its policies (organization_unreadable); the message says which call failed"),
        (status = 503, description = "The database cannot be reached; retry after Retry-After"),
    ))]
pub async fn preflight(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<PreflightView>, ApiError> {
    let p = state.organizations.preflight(&tenant, &parse_org(&id)?).await?;
    Ok(Json(PreflightView {
        organization_id: p.organization_id,
        checked_at: iso(p.at),
        accounts: p.accounts,
    }))
}

#[utoipa::path(get, path = "/v1/organizations/{id}/template", tag = "organizations", operation_id = "getOrganizationTemplate",
    summary = "The management stack's CloudFormation template",
    params(("id" = OrganizationId, Path, description = "The organization (a malformed id reads as unknown: 404)")),
    responses((status = 200, body = CloudFormationTemplate), (status = 404, description = "No such organization for this token"), (status = 503, description = "The database cannot be reached; retry after Retry-After")))]
pub async fn get_template(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.organizations.template(&tenant, &parse_org(&id)?).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = AssignAccount)]
pub struct AssignBody {
    account_id: SpotAccountId,
}

#[utoipa::path(put, path = "/v1/connections/{id}/account", tag = "organizations", operation_id = "assignSpotAccount",
    summary = "Assign an organization member its Spot account (the platform creates Spot accounts); repeating it is a no-op",
    params(("id" = crate::domain::ConnectionId, Path, description = "The member connection (a malformed id reads as unknown: 404)")),
    request_body = AssignBody,
    responses(
        (status = 200, body = ConnectionView),
        (status = 400, description = "Malformed JSON"),
        (status = 403, description = "The token does not allow this Spot account"),
        (status = 404, description = "No organization member with this id for this token"),
        (status = 409, description = "The member has another Spot account, the Spot account has a live connection, or the member is disconnected"),
        (status = 422, description = "A value is not acceptable"),
        (status = 503, description = "The database cannot be reached (store_unavailable), or too many requests changed the same record at once (too_many_concurrent_writes); retry after Retry-After"),
    ))]
pub async fn assign_account(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    Json(body): Json<AssignBody>,
) -> Result<Json<ConnectionView>, ApiError> {
    let c = state
        .organizations
        .assign_account(&tenant, &parse_id(&id)?, body.account_id)
        .await?;
    Ok(Json(view(&state, c)))
}
