//! The AWS calls of a verification, with errors told apart. Temporary
//! credentials stay in these values and are never logged or stored.

use crate::domain::{Partition, RoleArn};
use aws_config::Region;
use aws_config::SdkConfig;
use aws_sdk_iam::config::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;
use std::time::Duration;

/// Why an AWS call failed, as the report tells it.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    AccessDenied(String),
    NotFound(String),
    RegionDisabled(String),
    Throttled(String),
    Timeout,
    Network(String),
    Other(String),
}

pub fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(e: &SdkError<E, R>) -> CallError {
    match e {
        SdkError::TimeoutError(_) => CallError::Timeout,
        SdkError::DispatchFailure(d) => CallError::Network(format!("{d:?}")),
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default().to_owned();
            let msg = se.err().message().unwrap_or_default().to_owned();
            match code.as_str() {
                "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => CallError::AccessDenied(msg),
                "NoSuchEntity" | "NoSuchEntityException" => CallError::NotFound(msg),
                "RegionDisabledException" => CallError::RegionDisabled(msg),
                "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => CallError::Throttled(msg),
                _ => CallError::Other(format!("{code}: {msg}")),
            }
        }
        other => CallError::Other(format!("{other:?}")),
    }
}

/// Clients for one verification, signed with the assumed role's credentials.
pub struct Assumed {
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
}

pub fn sts_client(base: &SdkConfig, partition: Partition) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::config::Builder::from(base)
        .region(Region::new(partition.sts_region()))
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// AssumeRole with the external ID, a session named for the connection, the
/// minimum duration (aws-rules.md: 900 s).
pub async fn assume(
    sts: &aws_sdk_sts::Client,
    base: &SdkConfig,
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
    let region = Region::new(role.partition().sts_region());
    let iam = aws_sdk_iam::config::Builder::from(base)
        .credentials_provider(creds.clone())
        .region(region.clone())
        .build();
    let sts = aws_sdk_sts::config::Builder::from(base)
        .credentials_provider(creds)
        .region(region)
        .build();
    Ok(Assumed {
        iam: aws_sdk_iam::Client::from_conf(iam),
        sts: aws_sdk_sts::Client::from_conf(sts),
    })
}

/// STS minimum session, enough for a verification.
pub const ASSUME_DURATION_SECS: i32 = 900;
/// Per-call limit, so one stuck call cannot eat the propagation budget.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn caller_account(a: &Assumed) -> Result<String, CallError> {
    let out = a.sts.get_caller_identity().send().await.map_err(|e| classify(&e))?;
    Ok(out.account.unwrap_or_default())
}

/// The role's trust policy through ListRoles (Spot's default policy grants
/// it; GetRole it does not): page the role's path until its name shows.
pub async fn trust_policy(a: &Assumed, role: &RoleArn) -> Result<String, CallError> {
    let mut marker: Option<String> = None;
    loop {
        let out = a
            .iam
            .list_roles()
            .path_prefix(role.path())
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
            _ => {
                return Err(CallError::NotFound(format!(
                    "no role named {} under the path {}",
                    role.name(),
                    role.path()
                )))
            }
        }
    }
}

/// The documents of the role's attached managed policies (default versions)
/// and inline policies, in three dependent rounds of concurrent calls.
pub async fn role_policies(a: &Assumed, role: &RoleArn) -> Result<Vec<Value>, CallError> {
    let attached = async {
        let mut arns = Vec::new();
        let mut marker = None;
        loop {
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
    };
    let inline = async {
        let mut names = Vec::new();
        let mut marker = None;
        loop {
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
    };
    let (arns, names) = tokio::try_join!(attached, inline)?;

    let versions = futures_all(arns.iter().map(|arn| async move {
        let out = a
            .iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let version = out
            .policy
            .and_then(|p| p.default_version_id)
            .unwrap_or_else(|| "v1".into());
        Ok::<_, CallError>((arn.clone(), version))
    }));
    let inline_docs = futures_all(names.iter().map(|name| async move {
        let out = a
            .iam
            .get_role_policy()
            .role_name(role.name())
            .policy_name(name)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        super::trust::decode_policy(&out.policy_document).map_err(CallError::Other)
    }));
    let (versions, mut docs) = tokio::try_join!(versions, inline_docs)?;

    let managed = futures_all(versions.iter().map(|(arn, v)| async move {
        let out = a
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(v)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let raw = out.policy_version.and_then(|p| p.document).unwrap_or_default();
        super::trust::decode_policy(&raw).map_err(CallError::Other)
    }))
    .await?;
    docs.extend(managed);
    Ok(docs)
}

/// Runs the futures concurrently; the first error wins.
async fn futures_all<T, F: std::future::Future<Output = Result<T, CallError>>>(
    futs: impl Iterator<Item = F>,
) -> Result<Vec<T>, CallError> {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    let results = crate::join::join_all(set).await;
    results.into_iter().collect()
}
