//! The AWS calls of a verification, with errors told apart. Temporary
//! credentials stay in these values and are never logged or stored.

use crate::domain::RoleArn;
use aws_config::Region;
use aws_config::SdkConfig;
use aws_sdk_iam::config::Credentials;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;
use std::time::Duration;

/// Why an AWS call failed, as the report tells it: each message is written
/// for the customer who reads the report (what failed, and whose it is).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("AWS refused the call (AccessDenied){}", aws_said(.0))]
    AccessDenied(String),
    #[error("AWS found no such entity{}", aws_said(.0))]
    NotFound(String),
    #[error("STS is not activated in this region for the account{}", aws_said(.0))]
    RegionDisabled(String),
    #[error("AWS throttled the call; it says nothing about the role, try again in a minute")]
    Throttled(String),
    #[error("AWS did not answer in time; it says nothing about the role, try again in a minute")]
    Timeout,
    #[error("AWS could not be reached ({0}); it says nothing about the role, try again in a minute")]
    Network(String),
    /// AWS answered with a server error (HTTP 5xx): its own trouble.
    #[error("AWS answered with a server error ({0}); it says nothing about the role, try again in a minute")]
    ServerError(String),
    /// An answer without an AWS error code (an empty 404, a proxy's HTML
    /// 403) or one that could not be read: not AWS's word on anything.
    #[error("the answer did not come from AWS ({0}); it says nothing about the role, try again in a minute")]
    NotAws(String),
    /// A listing ran past its page cap without finding what we look for.
    #[error("{0}")]
    PageCap(String),
    /// The verification's shared deadline passed before the call finished.
    #[error("the verification ran out of time before AWS answered; it says nothing about the role")]
    Deadline,
    /// STS refused the vendor's own credentials in this partition
    /// (InvalidClientTokenId, ExpiredToken): ours to fix, not the customer's.
    #[error("AWS refused Spot's own credentials in this partition ({0}); Spot has to fix this, not you")]
    VendorCredentials(String),
    #[error("AWS answered with an error: {0}")]
    Other(String),
}

/// AWS's own message, when it gave one, after ": ".
fn aws_said(m: &str) -> String {
    if m.trim().is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

/// A service error's code and message; a bare one (moto's 500 for an
/// operation it lacks) says so instead of printing ": ".
fn code_and_message(code: &str, msg: &str) -> String {
    match (code.is_empty(), msg.is_empty()) {
        (true, true) => "an error with neither code nor message".to_owned(),
        (false, true) => code.to_owned(),
        (true, false) => msg.to_owned(),
        (false, false) => format!("{code}: {msg}"),
    }
}

impl CallError {
    /// A failure on the way (time, throttling, the network, our own key):
    /// it says nothing about the role, so a re-check ending on it keeps the
    /// connection's health instead of calling the role broken.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CallError::Throttled(_)
                | CallError::Timeout
                | CallError::Network(_)
                | CallError::ServerError(_)
                | CallError::NotAws(_)
                | CallError::Deadline
                | CallError::VendorCredentials(_)
        )
    }
}

/// `classify`, as text for a log or an error message.
pub fn classify_message<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(e: &SdkError<E, R>) -> String {
    match classify_by_code(e) {
        CallError::Other(m) => m,
        other => other.to_string(),
    }
}

/// The error told apart; a server error (HTTP 5xx) is AWS's trouble,
/// whatever its code, and an answer without AWS's error code is not AWS's.
pub fn classify<E: ProvideErrorMetadata + std::fmt::Debug>(e: &SdkError<E, HttpResponse>) -> CallError {
    if let SdkError::ServiceError(se) = e {
        let status = se.raw().status();
        let (code, msg) = (
            se.err().code().unwrap_or_default(),
            se.err().message().unwrap_or_default(),
        );
        if status.is_server_error() {
            return CallError::ServerError(format!("HTTP {}: {}", status.as_u16(), code_and_message(code, msg)));
        }
        if code.is_empty() {
            return CallError::NotAws(not_aws(status.as_u16(), se.raw()));
        }
    }
    classify_by_code(e)
}

/// What came instead of AWS's answer, in a few words: its status and body.
fn not_aws(status: u16, raw: &HttpResponse) -> String {
    let kind = match raw.body().bytes() {
        Some([]) => "an empty body".to_owned(),
        Some(_) => match raw.headers().get("content-type") {
            Some(t) => format!("a {} body", t.split(';').next().unwrap_or(t).trim()),
            None => "a body".to_owned(),
        },
        None => "a body".to_owned(),
    };
    format!("HTTP {status} with {kind} and no AWS error code")
}

fn classify_by_code<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(e: &SdkError<E, R>) -> CallError {
    match e {
        SdkError::TimeoutError(_) => CallError::Timeout,
        SdkError::DispatchFailure(d) => CallError::Network(match d.as_connector_error() {
            Some(c) if c.is_timeout() => "the connection timed out".to_owned(),
            Some(c) if c.is_io() => "a network error".to_owned(),
            _ => "the request could not be sent".to_owned(),
        }),
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default().to_owned();
            let msg = se.err().message().unwrap_or_default().to_owned();
            match code.as_str() {
                // AWS names every error it answers; a refusal without a
                // name is not AWS's (an empty 404, a proxy's HTML 403).
                "" => CallError::NotAws("an answer with no AWS error code".into()),
                "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => CallError::AccessDenied(msg),
                "NoSuchEntity" | "NoSuchEntityException" => CallError::NotFound(msg),
                "RegionDisabledException" => CallError::RegionDisabled(msg),
                "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => CallError::Throttled(msg),
                "InvalidClientTokenId" | "ExpiredToken" | "ExpiredTokenException" | "UnrecognizedClientException" => {
                    CallError::VendorCredentials(code_and_message(&code, &msg))
                }
                _ => CallError::Other(code_and_message(&code, &msg)),
            }
        }
        SdkError::ConstructionFailure(_) => CallError::Other("the request could not be built".into()),
        SdkError::ResponseError(_) => CallError::NotAws("an answer that could not be read".into()),
        _ => CallError::Other("the call failed before AWS answered".into()),
    }
}

/// Endpoint overrides of one partition (Config's `sts_endpoints`, `iam_endpoints`).
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub sts: Option<String>,
    pub iam: Option<String>,
}

/// A client for one verification, signed with the assumed role's
/// credentials, and the account STS says the session acts in.
pub struct Assumed {
    pub iam: aws_sdk_iam::Client,
    /// From AssumeRole's AssumedRoleUser (`arn:…:sts::ACCOUNT:assumed-role/…`):
    /// STS's own word, so no GetCallerIdentity call (one STS call less a check).
    pub account: Option<String>,
}

/// AssumeRole with the external ID, a session named for the connection, the
/// minimum duration (aws-rules.md: 900 s).
pub async fn assume(
    sts: &aws_sdk_sts::Client,
    base: &SdkConfig,
    endpoints: &Endpoints,
    role: &RoleArn,
    external_id: &str,
    session_name: &str,
) -> Result<Assumed, CallError> {
    let out = sts
        .assume_role()
        .role_arn(role.as_str())
        .role_session_name(session_name)
        .external_id(external_id)
        .duration_seconds(ASSUME_DURATION_SECS)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let account = out
        .assumed_role_user
        .as_ref()
        .and_then(|u| u.arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    let c = out
        .credentials
        .ok_or_else(|| CallError::Other("AssumeRole returned no credentials".into()))?;
    let creds = Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "assumed-role",
    );
    let mut iam = aws_sdk_iam::config::Builder::from(base)
        .credentials_provider(creds)
        .region(Region::new(role.partition().sts_region()));
    if let Some(url) = &endpoints.iam {
        iam = iam.endpoint_url(url);
    }
    Ok(Assumed {
        iam: aws_sdk_iam::Client::from_conf(iam.build()),
        account,
    })
}

/// STS minimum session, enough for a verification.
pub const ASSUME_DURATION_SECS: i32 = 900;
/// Per-call limit, so one stuck call cannot eat the propagation budget.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Roles a ListRoles page asks for: IAM's maximum page size.
const LIST_ROLES_PAGE_ITEMS: i32 = 1000;
/// ListRoles pages read at most: 5 × 1,000 covers IAM's largest role quota
/// per account (5,000), so a longer listing is not one account's roles.
pub const LIST_ROLES_MAX_PAGES: usize = 5;

/// The role's permissions boundary, as far as the role may see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Boundary {
    /// GetRole shows none.
    None,
    Policy {
        arn: String,
        document: Value,
    },
    /// GetRole names one, but its document could not be read.
    Unreadable {
        arn: String,
        error: CallError,
    },
    /// Read through ListRoles, which does not show boundaries.
    Unknown,
}

/// What the role's own record says: its trust policy and boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRecord {
    pub trust: String,
    pub boundary: Boundary,
}

/// GetRole: the trust policy and the boundary's ARN, if it has one. A
/// refusal is the caller's to fall back on (ListRoles).
pub async fn get_role(a: &Assumed, role: &RoleArn) -> Result<(String, Option<String>), CallError> {
    let out = a
        .iam
        .get_role()
        .role_name(role.name())
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let r = out
        .role
        .ok_or_else(|| CallError::Other("GetRole returned no role".into()))?;
    if r.path != role.path() {
        return Err(not_found(role));
    }
    let trust = r
        .assume_role_policy_document
        .ok_or_else(|| CallError::Other("the role has no trust policy".into()))?;
    Ok((trust, r.permissions_boundary.and_then(|b| b.permissions_boundary_arn)))
}

fn not_found(role: &RoleArn) -> CallError {
    CallError::NotFound(format!("no role named {} under the path {}", role.name(), role.path()))
}

/// The trust policy through ListRoles: page the role's path until its name
/// shows, at most LIST_ROLES_MAX_PAGES pages.
pub async fn trust_policy_listed(a: &Assumed, role: &RoleArn) -> Result<String, CallError> {
    let mut marker: Option<String> = None;
    for _ in 0..LIST_ROLES_MAX_PAGES {
        let out = a
            .iam
            .list_roles()
            .path_prefix(role.path())
            .max_items(LIST_ROLES_PAGE_ITEMS)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        if let Some(r) = out.roles.iter().find(|r| r.role_name.eq_ignore_ascii_case(role.name())) {
            return r
                .assume_role_policy_document
                .clone()
                .ok_or_else(|| CallError::Other("the role has no trust policy".into()));
        }
        match (out.is_truncated, out.marker) {
            (true, Some(m)) => marker = Some(m),
            _ => return Err(not_found(role)),
        }
    }
    Err(CallError::PageCap(format!(
        "ListRoles gave {LIST_ROLES_MAX_PAGES} pages of roles under the path {} without {}",
        role.path(),
        role.name()
    )))
}

/// What GetPolicy says of a managed policy: its id and default version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyMeta {
    pub arn: String,
    pub id: String,
    pub default_version: String,
}

/// GetPolicy: the policy's id and default version.
pub async fn policy_meta(a: &Assumed, arn: &str) -> Result<PolicyMeta, CallError> {
    let out = a
        .iam
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let p = out
        .policy
        .unwrap_or_else(|| aws_sdk_iam::types::Policy::builder().build());
    Ok(PolicyMeta {
        arn: arn.to_owned(),
        id: p.policy_id.unwrap_or_default(),
        default_version: p.default_version_id.unwrap_or_else(|| "v1".into()),
    })
}

/// The version a policy the customer has just created is at: IAM numbers
/// versions from `v1`, and a policy made from our template is rarely edited
/// before its first verification.
pub const FIRST_VERSION: &str = "v1";

/// A managed policy as level 2 of the reads saw it: GetPolicy's answer and,
/// where `v1` was asked for beside it and is the default, its document.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaRead {
    pub meta: PolicyMeta,
    /// v1's document, only when GetPolicy says v1 is the default version.
    pub first: Option<Value>,
}

/// GetPolicy and, when `guess`, GetPolicyVersion for `v1` side by side: a
/// first verification of a new policy then needs no third level of reads.
/// The guess never decides anything on its own: any error of it (the role
/// may not call GetPolicyVersion, v1 was deleted, AWS was busy) or a
/// default that is not v1 leaves `first` empty, and the real default's
/// document is read afterwards exactly as without the guess.
pub async fn policy_meta_guessing(a: &Assumed, arn: &str, guess: bool) -> Result<MetaRead, CallError> {
    let first = PolicyMeta {
        arn: arn.to_owned(),
        id: String::new(),
        default_version: FIRST_VERSION.to_owned(),
    };
    let (meta, doc) = tokio::join!(policy_meta(a, arn), async {
        if guess {
            policy_document(a, &first).await.ok()
        } else {
            None
        }
    });
    let meta = meta?;
    let first = doc.filter(|_| meta.default_version == FIRST_VERSION);
    Ok(MetaRead { meta, first })
}

/// The document of the policy's default version: the one level 2 already
/// read, or GetPolicyVersion now.
pub async fn default_document(a: &Assumed, read: &MetaRead) -> Result<Value, CallError> {
    match &read.first {
        Some(doc) => Ok(doc.clone()),
        None => policy_document(a, &read.meta).await,
    }
}

/// GetPolicyVersion: a version's document, decoded.
pub async fn policy_document(a: &Assumed, meta: &PolicyMeta) -> Result<Value, CallError> {
    let out = a
        .iam
        .get_policy_version()
        .policy_arn(&meta.arn)
        .version_id(&meta.default_version)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let raw = out.policy_version.and_then(|p| p.document).unwrap_or_default();
    super::trust::decode_policy(&raw).map_err(|e| CallError::Other(e.to_string()))
}

/// GetRolePolicy: an inline policy's document, decoded.
pub async fn inline_document(a: &Assumed, role: &RoleArn, name: &str) -> Result<Value, CallError> {
    let out = a
        .iam
        .get_role_policy()
        .role_name(role.name())
        .policy_name(name)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    super::trust::decode_policy(&out.policy_document).map_err(|e| CallError::Other(e.to_string()))
}

/// Pages of the role's policy names read at most: IAM allows 20 attached
/// policies and 10,240 characters of inline ones, far under 10 pages.
const POLICY_LIST_MAX_PAGES: usize = 10;

fn policy_page_cap(kind: &str) -> CallError {
    CallError::PageCap(format!(
        "the role's {kind} policies ran past {POLICY_LIST_MAX_PAGES} pages"
    ))
}

/// The role's policies by name: the attached managed policies' ARNs and
/// the inline policies' names, both listings side by side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLists {
    pub attached: Vec<String>,
    pub inline: Vec<String>,
}

pub async fn list_policies(a: &Assumed, role: &RoleArn) -> Result<PolicyLists, CallError> {
    let attached = async {
        let mut arns = Vec::new();
        let mut marker = None;
        for _ in 0..POLICY_LIST_MAX_PAGES {
            let out = a
                .iam
                .list_attached_role_policies()
                .role_name(role.name())
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            arns.extend(
                out.attached_policies
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.policy_arn),
            );
            match (out.is_truncated, out.marker) {
                (true, Some(m)) => marker = Some(m),
                _ => return Ok::<_, CallError>(arns),
            }
        }
        Err(policy_page_cap("attached"))
    };
    let inline = async {
        let mut names = Vec::new();
        let mut marker = None;
        for _ in 0..POLICY_LIST_MAX_PAGES {
            let out = a
                .iam
                .list_role_policies()
                .role_name(role.name())
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            names.extend(out.policy_names);
            match (out.is_truncated, out.marker) {
                (true, Some(m)) => marker = Some(m),
                _ => return Ok::<_, CallError>(names),
            }
        }
        Err(policy_page_cap("inline"))
    };
    let (attached, inline) = tokio::try_join!(attached, inline)?;
    Ok(PolicyLists { attached, inline })
}

/// Runs the futures concurrently; the first error wins.
pub async fn futures_all<T, F: std::future::Future<Output = Result<T, CallError>>>(
    futs: impl Iterator<Item = F>,
) -> Result<Vec<T>, CallError> {
    futures::future::join_all(futs).await.into_iter().collect()
}
