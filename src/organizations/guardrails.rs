//! The organization's guardrails, read through the management role: for
//! each targeted account, the SCPs and RCPs attached directly to every
//! level of its path (ListParents, ListPoliciesForTarget for both types,
//! DescribePolicy), each level and each policy read once per
//! reconciliation, parsed policies remembered by digest (id and content
//! hash); then evaluated for the request Spot would make. Accounts are read
//! `ACCOUNTS_AT_ONCE` at a time; a level or policy two of them share is
//! read by the first to ask, and the other waits for that answer.

use super::aws::Session;
use super::memo::Memo;
use crate::domain::guardrails::{assess, AccountGuardrails, Subject};
use crate::domain::{AccountId, Organization, SeenAccount};
use crate::iam::guardrails::{Attached, Kind, Level};
use crate::iam::Policy;
use aws_sdk_organizations::types::PolicyType;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

/// Accounts whose guardrails are read at once (about three calls each):
/// fewer round trips one after another, and still few enough calls at
/// once to stay under Organizations' request rate.
pub const ACCOUNTS_AT_ONCE: usize = 4;

/// Pages of one target's policies read at most (a target holds at most a
/// few policies of each type: AWS's quota is five SCPs per target).
const MAX_PAGES: usize = 100;

/// Parsed policies by digest (policy id and content hash): a policy's
/// document changes only with a new digest.
static PARSED: LazyLock<quick_cache::sync::Cache<String, Arc<Policy>>> =
    LazyLock::new(|| quick_cache::sync::Cache::new(4096));

/// Reads one reconciliation's guardrails; lives as long as its session.
pub struct Reader<'a> {
    session: &'a Session,
    levels: Memo<Vec<Attached>>,
    policies: Memo<Attached>,
}

/// `id:sha256(content)`, the first 16 bytes in hex.
fn digest(id: &str, content: &str) -> String {
    let h = Sha256::digest(content.as_bytes());
    format!("{id}:{}", hex::encode(&h[..16]))
}

/// A document Spot cannot parse blocks nothing surely and everything maybe.
fn unreadable(e: &str) -> Policy {
    Policy::parse(
        &serde_json::json!({"Statement": [{"Sid": "Unreadable", "Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"PolicySpotCannotRead": {"reason": e}}}]}),
    )
    .expect("a fixed document parses")
}

impl<'a> Reader<'a> {
    pub fn new(session: &'a Session) -> Self {
        Reader {
            session,
            levels: Memo::new(),
            policies: Memo::new(),
        }
    }

    /// The organization's id (`o-…`), for `aws:PrincipalOrgID`.
    pub async fn organization_id(&self) -> Result<String, String> {
        let out = self
            .session
            .client()
            .describe_organization()
            .send()
            .await
            .map_err(|e| format!("Organizations DescribeOrganization failed: {}", super::aws::text(&e)))?;
        out.organization
            .and_then(|o| o.id)
            .ok_or_else(|| "Organizations DescribeOrganization named no organization".to_owned())
    }

    /// The account's path, root first, the account last, each level with
    /// the SCPs and RCPs attached to it directly.
    pub async fn path(&self, account: &AccountId) -> Result<Vec<Level>, String> {
        let mut ids: Vec<String> = self
            .session
            .ancestry(account)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        ids.reverse();
        ids.push(account.as_str().to_owned());
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let policies = self.level(&id).await?;
            out.push(Level { id, policies });
        }
        Ok(out)
    }

    async fn level(&self, target: &str) -> Result<Vec<Attached>, String> {
        self.levels
            .get_or_read(target, || async {
                let mut out = Vec::new();
                for filter in [PolicyType::ServiceControlPolicy, PolicyType::ResourceControlPolicy] {
                    for id in self.attached(target, filter).await? {
                        out.push(self.policy(&id).await?);
                    }
                }
                Ok(out)
            })
            .await
    }

    /// The ids of the policies of one type attached to `target` directly
    /// (every page, even after an empty one).
    async fn attached(&self, target: &str, filter: PolicyType) -> Result<Vec<String>, String> {
        let pages = self
            .session
            .client()
            .list_policies_for_target()
            .target_id(target)
            .filter(filter.clone())
            .into_paginator()
            .send();
        let pages = super::aws::every_page(
            pages,
            MAX_PAGES,
            || format!("{target} lists more policies than Spot reads at once"),
            |e| {
                format!(
                    "Organizations ListPoliciesForTarget({target}, {}) failed: {}",
                    filter.as_str(),
                    super::aws::text(&e)
                )
            },
        )
        .await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.policies())
            .filter_map(|p| p.id().map(str::to_owned))
            .collect())
    }

    async fn policy(&self, id: &str) -> Result<Attached, String> {
        self.policies.get_or_read(id, || self.describe(id)).await
    }

    async fn describe(&self, id: &str) -> Result<Attached, String> {
        let out = self
            .session
            .client()
            .describe_policy()
            .policy_id(id)
            .send()
            .await
            .map_err(|e| format!("Organizations DescribePolicy({id}) failed: {}", super::aws::text(&e)))?;
        let p = out
            .policy
            .ok_or_else(|| format!("DescribePolicy({id}) answered no policy"))?;
        let summary = p.policy_summary.as_ref();
        let content = p.content.clone().unwrap_or_default();
        let kind = match summary.and_then(|s| s.r#type.as_ref()) {
            Some(PolicyType::ResourceControlPolicy) => Kind::Rcp,
            _ => Kind::Scp,
        };
        let key = digest(id, &content);
        let policy = match PARSED.get(&key) {
            Some(p) => p,
            None => {
                let parsed = serde_json::from_str(&content)
                    .map_err(|e| e.to_string())
                    .and_then(|v| Policy::parse(&v).map_err(|e| e.0))
                    .unwrap_or_else(|e| unreadable(&e));
                let parsed = Arc::new(parsed);
                PARSED.insert(key, parsed.clone());
                parsed
            }
        };
        Ok(Attached {
            id: id.to_owned(),
            name: summary.and_then(|s| s.name.clone()).unwrap_or_else(|| id.to_owned()),
            kind,
            policy,
        })
    }
}

/// What the organization's members need, and who asks.
pub struct Needs<'a> {
    pub required: Vec<(String, Vec<String>)>,
    pub vendor_principal: &'a str,
}

impl<'a> Needs<'a> {
    pub fn of(o: &Organization, vendor_principal: &'a str) -> Self {
        let mut required: Vec<(String, Vec<String>)> = crate::verify::required_for(o.partition, &o.permissions)
            .into_iter()
            .map(|r| (r.action, r.resources))
            .collect();
        required.sort();
        required.dedup();
        Needs {
            required,
            vendor_principal,
        }
    }
}

/// The member role Spot would use in `account`.
pub fn member_role_arn(o: &Organization, account: &AccountId) -> String {
    format!(
        "arn:{}:iam::{}:role/{}",
        o.partition.as_str(),
        account.as_str(),
        super::template::member_role_name(o)
    )
}

/// Each targeted, active account's verdicts (the management account is
/// exempt and never a target of the StackSet).
pub async fn assess_accounts(
    reader: &Reader<'_>,
    o: &Organization,
    accounts: &[SeenAccount],
    needs: &Needs<'_>,
) -> Result<BTreeMap<String, AccountGuardrails>, String> {
    let org_id = reader.organization_id().await?;
    // Made up front: a stream that maps with a closure over these borrows
    // is not `Send` for every lifetime (rustc's higher-ranked limitation).
    let reads: Vec<_> = accounts
        .iter()
        .filter(|a| a.targeted && a.status == "ACTIVE")
        .map(|a| assess_account(reader, o, a, needs, &org_id))
        .collect();
    futures::stream::iter(reads)
        .buffer_unordered(ACCOUNTS_AT_ONCE)
        .try_collect()
        .await
}

/// One account's verdicts, by its AWS account id.
async fn assess_account(
    reader: &Reader<'_>,
    o: &Organization,
    a: &SeenAccount,
    needs: &Needs<'_>,
    org_id: &str,
) -> Result<(String, AccountGuardrails), String> {
    let path = reader.path(&a.aws_account_id).await?;
    let role = member_role_arn(o, &a.aws_account_id);
    let s = Subject {
        partition: o.partition,
        account: &a.aws_account_id,
        organization_id: org_id,
        role_arn: &role,
        vendor_principal: needs.vendor_principal,
        required: &needs.required,
        regions: o.partition.regions(),
        management: a.aws_account_id == o.management_account_id,
    };
    Ok((a.aws_account_id.as_str().to_owned(), assess(&path, &s)))
}
