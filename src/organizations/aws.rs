//! Organizations, read through the management account's role (AssumeRole
//! with the management connection's external ID): whether an account is a
//! member, which accounts the StackSet's targets hold, and the StackSet's
//! instances in an account (CloudFormation, in the StackSet's region).
//! The role is assumed with the partition's own vendor identity, as a
//! single account's is: partitions have separate IAM, so a commercial key
//! is refused in GovCloud and China.

use crate::config::Config;
use crate::domain::{AccountId, Partition, RoleArn};
use crate::domain::{SeenAccount, TargetId};
use crate::verify::Verifier;
use aws_config::SdkConfig;
use aws_sdk_organizations::types::ChildType;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_async::future::pagination_stream::PaginationStream;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Pages read per listing, bounded only against a service that never ends
/// its listing: 20 accounts a page is 200,000 accounts, past any
/// organization's quota.
const MAX_PAGES: usize = 10_000;

/// Every page of a paginated call, at most `max` of them: past that,
/// `too_many` says what listed too much; a failed page, `failed` says why.
pub(super) async fn every_page<T, E>(
    mut pages: PaginationStream<Result<T, E>>,
    max: usize,
    too_many: impl FnOnce() -> String,
    failed: impl Fn(E) -> String,
) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        if out.len() == max {
            return Err(too_many());
        }
        out.push(page.map_err(&failed)?);
    }
    Ok(out)
}
/// Organizations nests OUs five levels deep at most.
const MAX_DEPTH: usize = 6;
/// Per-call bound: a listing of a big organization is many calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub struct OrgReader {
    /// Each partition's vendor identity and STS endpoint.
    verifier: Arc<Verifier>,
    organizations_endpoints: BTreeMap<Partition, String>,
    cloudformation_endpoints: BTreeMap<Partition, String>,
}

/// A member's standing in the organization, as DescribeAccount tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Member { status: String },
    NotMember,
}

/// Lives for one request: the parents it read are remembered for that long.
pub struct Session {
    client: aws_sdk_organizations::Client,
    /// For CloudFormation, whose region is the StackSet's.
    base: SdkConfig,
    credentials: aws_sdk_organizations::config::Credentials,
    cloudformation_endpoint: Option<String>,
    /// Each node's parent, read once per session however many ask at once.
    parents: super::memo::Memo<Parent>,
}

/// A node's parent, as ListParents tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub id: String,
    pub is_root: bool,
}

/// An SDK error in words for the customer.
pub(super) fn text<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(e: &SdkError<E, R>) -> String {
    crate::verify::classify_message(e)
}

impl OrgReader {
    pub fn from_config(config: &Config, verifier: Arc<Verifier>) -> Self {
        OrgReader {
            verifier,
            organizations_endpoints: config.organizations_endpoints.clone(),
            cloudformation_endpoints: config.cloudformation_endpoints.clone(),
        }
    }

    /// The partition's vendor identity with this reader's timeouts and
    /// retries, and its STS endpoint.
    async fn base(&self, p: Partition) -> Result<(SdkConfig, Option<String>), String> {
        let (sdk, sts) = self.verifier.vendor(p).await?;
        let base = crate::sdk::tuned(
            &sdk,
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(CALL_TIMEOUT)
                .build(),
            aws_config::retry::RetryConfig::standard().with_max_attempts(3),
        );
        Ok((base, sts))
    }

    /// A session in the management account; the error is for a person.
    pub async fn session(&self, role: &RoleArn, external_id: &str, session_name: &str) -> Result<Session, String> {
        let (base, sts_endpoint) = self
            .base(role.partition())
            .await
            .map_err(|e| format!("Spot could not assume the management role {}: {e}", role.as_str()))?;
        let base = &base;
        let mut sts =
            aws_sdk_sts::config::Builder::from(base).region(aws_config::Region::new(role.partition().sts_region()));
        if let Some(url) = sts_endpoint {
            sts = sts.endpoint_url(url);
        }
        let sts = aws_sdk_sts::Client::from_conf(sts.build());
        let out = sts
            .assume_role()
            .role_arn(role.as_str())
            .role_session_name(session_name)
            .external_id(external_id)
            .duration_seconds(900) // STS's minimum
            .send()
            .await
            .map_err(|e| {
                format!(
                    "Spot could not assume the management role {}: {}",
                    role.as_str(),
                    text(&e)
                )
            })?;
        let c = out
            .credentials
            .ok_or_else(|| "AssumeRole returned no credentials".to_owned())?;
        let creds = aws_sdk_organizations::config::Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            None,
            "management-role",
        );
        // Organizations is global; its endpoint lives in the partition's home region.
        let mut conf = aws_sdk_organizations::config::Builder::from(base)
            .credentials_provider(creds.clone())
            .region(aws_config::Region::new(role.partition().sts_region()));
        if let Some(url) = self.organizations_endpoints.get(&role.partition()) {
            conf = conf.endpoint_url(url);
        }
        Ok(Session {
            client: aws_sdk_organizations::Client::from_conf(conf.build()),
            base: base.clone(),
            credentials: creds,
            cloudformation_endpoint: self.cloudformation_endpoints.get(&role.partition()).cloned(),
            parents: Default::default(),
        })
    }
}

/// One of a StackSet's stack instances in an account, as
/// ListStackInstances reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub region: String,
    /// None while CloudFormation has not made the instance's stack yet.
    pub stack_id: Option<String>,
}

impl Session {
    /// The Organizations client, acting as the management role.
    pub(super) fn client(&self) -> &aws_sdk_organizations::Client {
        &self.client
    }

    /// The StackSet's instances in `account` (ListStackInstances, in the
    /// StackSet's region, as the management account: `CallAs` SELF).
    pub async fn instances(&self, region: &str, stack_set: &str, account: &AccountId) -> Result<Vec<Instance>, String> {
        let mut conf = aws_sdk_cloudformation::config::Builder::from(&self.base)
            .credentials_provider(self.credentials.clone())
            .region(aws_config::Region::new(region.to_owned()));
        if let Some(url) = &self.cloudformation_endpoint {
            conf = conf.endpoint_url(url);
        }
        let client = aws_sdk_cloudformation::Client::from_conf(conf.build());
        let pages = client
            .list_stack_instances()
            .stack_set_name(stack_set)
            .stack_instance_account(account.as_str())
            .into_paginator()
            .send();
        let pages = every_page(
            pages,
            MAX_PAGES,
            || format!("the StackSet {stack_set} lists more instances than Spot reads at once"),
            |e| format!("CloudFormation ListStackInstances({stack_set}) failed: {}", text(&e)),
        )
        .await?;
        // Filtered here too: the filter is the service's, the check is ours.
        let out = pages
            .iter()
            .flat_map(|page| page.summaries())
            .filter(|i| i.account() == Some(account.as_str()))
            .map(|i| Instance {
                region: i.region().unwrap_or_default().to_owned(),
                stack_id: i.stack_id().filter(|s| !s.is_empty()).map(str::to_owned),
            })
            .collect();
        Ok(out)
    }

    /// Whether the account belongs to the organization.
    pub async fn standing(&self, account: &AccountId) -> Result<Standing, String> {
        match self.client.describe_account().account_id(account.as_str()).send().await {
            Ok(out) => Ok(Standing::Member {
                status: out
                    .account
                    .and_then(|a| a.status)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|| "UNKNOWN".into()),
            }),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_account_not_found_exception()) => {
                Ok(Standing::NotMember)
            }
            Err(e) => Err(format!("Organizations DescribeAccount failed: {}", text(&e))),
        }
    }

    /// The account's parents, nearest first, up to and including the root
    /// (ListParents, one call a level; each answer kept for the session).
    pub async fn ancestry(&self, account: &AccountId) -> Result<Vec<Parent>, String> {
        let mut chain: Vec<Parent> = Vec::new();
        let mut child = account.as_str().to_owned();
        for _ in 0..MAX_DEPTH {
            let parent = self.parent(&child).await?;
            let done = parent.is_root;
            child = parent.id.clone();
            chain.push(parent);
            if done {
                return Ok(chain);
            }
        }
        Err(format!(
            "Organizations lists more than {MAX_DEPTH} levels above account {account}"
        ))
    }

    async fn parent(&self, child: &str) -> Result<Parent, String> {
        self.parents.get_or_read(child, || self.list_parents(child)).await
    }

    async fn list_parents(&self, child: &str) -> Result<Parent, String> {
        let out = self
            .client
            .list_parents()
            .child_id(child)
            .send()
            .await
            .map_err(|e| format!("Organizations ListParents({child}) failed: {}", text(&e)))?;
        out.parents()
            .first()
            .and_then(|p| {
                Some(Parent {
                    id: p.id()?.to_owned(),
                    is_root: p.r#type() == Some(&aws_sdk_organizations::types::ParentType::Root),
                })
            })
            .ok_or_else(|| format!("Organizations lists no parent for {child}"))
    }

    /// Every account of the organization, marked with whether it is under
    /// `targets` (empty: the roots, that is the whole organization).
    pub async fn accounts(&self, targets: &[TargetId], management: &AccountId) -> Result<Vec<SeenAccount>, String> {
        let mut all: BTreeMap<String, String> = BTreeMap::new();
        let pages = every_page(
            self.client.list_accounts().into_paginator().send(),
            MAX_PAGES,
            || "the organization lists more accounts than Spot reads at once".into(),
            |e| format!("Organizations ListAccounts failed: {}", text(&e)),
        )
        .await?;
        for a in pages.iter().flat_map(|page| page.accounts()) {
            if let Some(id) = a.id() {
                all.insert(
                    id.to_owned(),
                    a.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                );
            }
        }
        let mut roots: Vec<String> = targets.iter().map(|t| t.as_str().to_owned()).collect();
        if roots.is_empty() {
            let out = self
                .client
                .list_roots()
                .send()
                .await
                .map_err(|e| format!("Organizations ListRoots failed: {}", text(&e)))?;
            roots = out.roots().iter().filter_map(|r| r.id().map(str::to_owned)).collect();
        }
        let mut under: BTreeMap<String, String> = BTreeMap::new();
        let mut level: BTreeSet<String> = roots.into_iter().collect();
        for _ in 0..MAX_DEPTH {
            let mut next = BTreeSet::new();
            for parent in &level {
                for id in self.children(parent, ChildType::Account).await? {
                    under.entry(id).or_insert_with(|| parent.clone());
                }
                next.extend(self.children(parent, ChildType::OrganizationalUnit).await?);
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Ok(all
            .into_iter()
            .filter(|(id, _)| id != management.as_str())
            .filter_map(|(id, status)| {
                let parent = under.get(&id).cloned();
                Some(SeenAccount {
                    aws_account_id: id.parse().ok()?,
                    status,
                    targeted: parent.is_some(),
                    parent_id: parent,
                    guardrails: None,
                })
            })
            .collect())
    }

    async fn children(&self, parent: &str, kind: ChildType) -> Result<Vec<String>, String> {
        let pages = self
            .client
            .list_children()
            .parent_id(parent)
            .child_type(kind)
            .into_paginator()
            .send();
        let pages = every_page(
            pages,
            MAX_PAGES,
            || format!("{parent} lists more children than Spot reads at once"),
            |e| format!("Organizations ListChildren({parent}) failed: {}", text(&e)),
        )
        .await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.children())
            .filter_map(|c| c.id().map(str::to_owned))
            .collect())
    }
}
