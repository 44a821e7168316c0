//! An organization's members: the membership check through the management
//! role, the binding of a member's requests to its own stack instance (the
//! StackId the organization's StackSet reports for the account), enrollment (one connection per organization and AWS account), the
//! link that verifies and connects a member's role, its undoing by the stack
//! that made it, and the platform's assignment of a Spot account.

use super::aws::{Instance, Session, Standing};
use super::service::{system_tenant, OrganizationError, OrganizationService, WRITE_ATTEMPTS};
use crate::connections::ServiceError;
use crate::domain::{
    AccountId, ConnectedStack, Connection, ConnectionId, Event, EventKind, ExternalId, MemberChange, Membership,
    Method, NewConnection, OrgState, Organization, OutboxItem, SpotAccountId, Status,
};
use crate::store::{Guard, StoreError};
use crate::tenancy::Tenant;
use crate::verify::Outcome;
use std::time::Duration;

/// A member's external ID does not expire: its account may join at any time.
const MEMBER_EXPIRES_AT: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

/// What a member link concluded.
pub enum Linked {
    Connected(Connection, Outcome),
    /// Another stack (a second region's instance) connected it: unchanged.
    AlreadyBy(Connection, ConnectedStack),
    Failed(String),
}

/// Why a member's request is not taken from this stack; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// For good: the words for the customer.
    Refused(String),
    /// The stack is not the account's instance of the StackSet.
    NotTheInstance(String),
    /// AWS could not be read: nothing is known against the stack, try again.
    Unreadable(String),
    /// The account's instance has no stack yet (CloudFormation is making
    /// it): worth a retry of the same message.
    NotYet(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::Refused(m) | Refusal::NotTheInstance(m) | Refusal::Unreadable(m) | Refusal::NotYet(m) => m,
        }
    }
}

/// Whether `stack_id` is the stack one of the StackSet's instances in the
/// account reports. The made-up StackId of another member's admin, who can
/// read the member template and its token, is not.
fn bound(instances: &[Instance], stack_set: &str, account: &AccountId, stack_id: &str) -> Result<(), Refusal> {
    if instances.iter().any(|i| i.stack_id.as_deref() == Some(stack_id)) {
        return Ok(());
    }
    if instances.iter().any(|i| i.stack_id.is_none()) {
        return Err(Refusal::NotYet(format!(
            "The StackSet {stack_set} does not report the stack of its instance in account {account} yet; Spot tries again."
        )));
    }
    Err(Refusal::NotTheInstance(format!(
        "This stack ({:.300}) is not the StackSet {stack_set}'s instance in account {account}: Spot takes an organization member's requests only from its own stack instance. Nothing changed.",
        stack_id
    )))
}

/// Whether the account is, now, under one of the units the organization
/// targets (anywhere, when it targets its root), in words when it is not.
async fn within_targets(o: &Organization, account: &AccountId, session: &Session) -> Result<(), String> {
    let targets = &o.organizational_unit_ids;
    if targets.is_empty() || targets.iter().any(|t| t.is_root()) {
        return Ok(());
    }
    let chain = session.ancestry(account).await?;
    if chain.iter().any(|p| targets.iter().any(|t| t.as_str() == p.id)) {
        return Ok(());
    }
    let parent = chain.first().map(|p| p.id.as_str()).unwrap_or("the root");
    let targets: Vec<&str> = targets.iter().map(|t| t.as_str()).collect();
    Err(format!(
        "AWS account {account} is under {parent}, outside the organizational units this organization connects ({}): Spot connects only accounts under those units. Move the account into one of them, or remove this account's stack instance.",
        targets.join(", ")
    ))
}

impl OrganizationService {
    /// Whether the management role confirms the account is a member, and
    /// `stack_id` its own stack instance, in words for the customer when not.
    pub async fn confirm_member(&self, o: &Organization, account: &AccountId, stack_id: &str) -> Result<(), Refusal> {
        if account == &o.management_account_id {
            return Err(Refusal::Refused(format!(
                "Account {account} is the organization's management account: the management stack connects it, not a member stack instance."
            )));
        }
        let session = self.session(o).await.map_err(Refusal::Unreadable)?;
        let refused = match session.standing(account).await.map_err(Refusal::Unreadable)? {
            Standing::Member { status } if status == "ACTIVE" => {
                within_targets(o, account, &session).await.err().map(Refusal::Refused)
            }
            Standing::Member { status } => Some(Refusal::Refused(format!(
                "Organizations reports account {account} as {status}; Spot connects active accounts only."
            ))),
            Standing::NotMember => Some(Refusal::Refused(format!(
                "AWS account {account} is not a member of the organization whose management account is {}: Spot refuses it. Deploy this template only through the StackSet the management stack created.",
                o.management_account_id
            ))),
        };
        match refused {
            Some(r) => Err(r),
            None => self.confirm_instance_in(o, account, stack_id, &session).await,
        }
    }

    /// Whether `stack_id` is the account's own stack instance (a Delete's check).
    pub async fn confirm_instance(&self, o: &Organization, account: &AccountId, stack_id: &str) -> Result<(), Refusal> {
        let session = self.session(o).await.map_err(Refusal::Unreadable)?;
        self.confirm_instance_in(o, account, stack_id, &session).await
    }

    async fn confirm_instance_in(
        &self,
        o: &Organization,
        account: &AccountId,
        stack_id: &str,
        session: &Session,
    ) -> Result<(), Refusal> {
        let region = self.stack_set_region(o).await.map_err(Refusal::Unreadable)?;
        let name = super::template::stack_set_name(o);
        let instances = session.instances(region, &name, account).await.map_err(|e| {
            Refusal::Unreadable(format!(
                "Spot could not read the StackSet's instances, so nothing changed; try again in a few minutes. {e}"
            ))
        })?;
        bound(&instances, &name, account, stack_id)
    }

    /// The StackSet lives where the management stack runs: the region of
    /// the StackId that connected the management connection.
    async fn stack_set_region(&self, o: &Organization) -> Result<&'static str, String> {
        let mgmt = self
            .store
            .get(&o.org, &o.management_connection_id)
            .await
            .map_err(|e| format!("Spot could not read the management connection: {e}"))?
            .ok_or("the management connection is gone")?;
        mgmt.stack
            .as_ref()
            .and_then(|s| s.stack_id.parse::<crate::automatic::stack_arn::StackArn>().ok())
            .map(|a| a.region.as_str())
            .ok_or_else(|| {
                format!(
                    "The management stack of account {} has not reported itself, so Spot cannot find its StackSet: create or update the management stack first.",
                    o.management_account_id
                )
            })
    }

    /// The member connection of (organization, account): the same one for a
    /// repeated Create, a second region or a re-added account.
    pub async fn enroll(
        &self,
        o: &Organization,
        account: &AccountId,
        actor: &str,
    ) -> Result<Connection, OrganizationError> {
        if o.state != OrgState::Active {
            return Err(OrganizationError::Offboarded);
        }
        let config = &self.config;
        for _ in 0..WRITE_ATTEMPTS {
            let at = self.now();
            let member = Connection::new_pending(NewConnection {
                id: ConnectionId::generate(),
                org: o.org.clone(),
                account_id: o.account_id.clone(),
                partition: o.partition,
                method: Method::Automatic,
                permissions: o.permissions.clone(),
                aws_account_id: Some(account.clone()),
                external_id: ExternalId::generate(&config.external_id_prefix),
                organization: Some(Membership {
                    organization_id: o.id.clone(),
                    management: false,
                    spot_account_assigned: false,
                    note: None,
                }),
                created_by: actor.to_owned(),
                at,
                expires_at: MEMBER_EXPIRES_AT,
            });
            let ev = Event::new(
                at,
                &member,
                EventKind::Created,
                actor,
                "ok",
                Some(serde_json::json!({"method": "automatic", "organizationId": o.id.as_str()})),
            );
            // A first enrollment is announced (a missing account's instance
            // is on its way: pending), in the same write.
            let announce = MemberChange::enrolled(o, &member, at).map(|m| OutboxItem::member_changed(&member, m, at));
            match self.store.enroll_member(&member, &ev, announce.as_ref()).await {
                // A member that was missing (its role failed, its instance
                // deleted) has an instance on its way again: pending.
                Ok(c) if c.state == Status::Pending && c.organization.as_ref().is_some_and(|m| m.note.is_some()) => {
                    let tenant = system_tenant(&c.org, actor);
                    return self.note(&tenant, &c.id, None, "enrolled").await;
                }
                Ok(c) => return Ok(c),
                Err(StoreError::ExternalIdTaken | StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::TooManyConcurrentWrites.into())
    }

    /// Verifies and connects a member's role through the one connect path
    /// (`ConnectionService::connect_role_from`, as the API and a
    /// single-account stack do), recording the stack; another stack's
    /// connection stands, and a failure leaves the member `missing` with why.
    pub async fn link(
        &self,
        member: &Connection,
        role_arn: &str,
        stack: ConnectedStack,
        actor: &str,
    ) -> Result<Linked, OrganizationError> {
        let tenant = system_tenant(&member.org, actor);
        let budget = Duration::from_secs(self.config.callback_propagation_secs);
        let connected = self
            .connections
            .connect_role_from(&tenant, &member.id, role_arn, budget, Some(stack))
            .await;
        match connected {
            Ok((c, report)) => Ok(Linked::Connected(c, report.outcome)),
            Err(ServiceError::OtherStack(other)) => {
                let now = self.connections.get(&tenant, &member.id).await?;
                Ok(Linked::AlreadyBy(now, other))
            }
            Err(ServiceError::WrongStatus { .. }) => Ok(Linked::Failed(
                "This member was disconnected in Spot (the organization was offboarded); it does not connect again."
                    .into(),
            )),
            // AWS could not be reached: nothing was learned of the role, so
            // the member stays as it was (no note, no `missing`).
            Err(ServiceError::VerificationFailed { report, .. }) if report.inconclusive() => Ok(Linked::Failed(
                format!("Spot could not verify the role: AWS could not be reached. Nothing is wrong with it as far as Spot knows; re-run this account's stack instance in a few minutes. {}", report.summary()),
            )),
            Err(ServiceError::VerificationFailed { report, .. }) => {
                let summary = report.summary();
                let note = format!("Its role did not verify: {summary}");
                self.note(&tenant, &member.id, Some(note), "failed").await?;
                Ok(Linked::Failed(format!("Spot could not connect the role. {summary}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A link's Delete: only the stack that connected the member lets go of
    /// it. The member goes back to pending with its external ID, so the same
    /// account re-added connects with the same ID. Answers whether it acted.
    pub async fn unlink(&self, member: &Connection, stack_id: &str, actor: &str) -> Result<bool, OrganizationError> {
        let ours = member.state == Status::Connected && member.stack.as_ref().is_some_and(|s| s.stack_id == stack_id);
        if !ours {
            return Ok(false);
        }
        let tenant = system_tenant(&member.org, actor);
        let mut acted = false;
        self.connections
            .change(&tenant, &member.id, |c, t| {
                if !(c.state == Status::Connected && c.stack.as_ref().is_some_and(|s| s.stack_id == stack_id)) {
                    return Ok(None);
                }
                acted = true;
                let mut guards = unlinked_by_deleted_stack(c, stack_id, "stack instance");
                if c.spot_account().is_some() {
                    guards.push(Guard::ReleaseAccount);
                }
                let detail = serde_json::json!({"stackId": stack_id, "reason": "stack deleted"});
                Ok(Some((
                    Event::new(t, c, EventKind::Disconnected, actor, "ok", Some(detail)),
                    guards,
                )))
            })
            .await?;
        Ok(acted)
    }

    /// Sets or clears why a pending member is not connected (its state is
    /// `missing` while a note stands); the audit trail has the cause already.
    async fn note(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        note: Option<String>,
        outcome: &str,
    ) -> Result<Connection, OrganizationError> {
        let actor = tenant.sub.clone();
        let c = self
            .connections
            .change(tenant, id, |c, t| {
                let m = c.organization.as_mut().expect("members have a membership");
                if m.note == note || c.state != Status::Pending {
                    return Ok(None);
                }
                m.note = note.clone();
                Ok(Some((
                    Event::new(t, c, EventKind::Checked, &actor, outcome, None),
                    Vec::new(),
                )))
            })
            .await?;
        Ok(c)
    }

    /// The platform assigns a member its Spot account; from then on it holds
    /// that account like any connection, and Spot's routes find it.
    pub async fn assign_account(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
        account: SpotAccountId,
    ) -> Result<Connection, OrganizationError> {
        if !tenant.may_access(&account) {
            return Err(ServiceError::AccountNotAllowed(account).into());
        }
        let actor = tenant.sub.clone();
        let c = self
            .connections
            .change(tenant, id, |c, t| {
                let Some(m) = c.organization.as_ref() else {
                    return Err(ServiceError::NotFound);
                };
                if m.management {
                    return Err(ServiceError::NotFound);
                }
                if m.spot_account_assigned {
                    // Repeated: same answer. Another account: refused below.
                    return Ok(None);
                }
                let status = c.status(t);
                if status == Status::Disconnected {
                    return Err(ServiceError::WrongStatus {
                        status,
                        action: "assign a Spot account to",
                    });
                }
                c.account_id = account.clone();
                c.organization.as_mut().expect("checked").spot_account_assigned = true;
                let until = if status == Status::Connected {
                    i64::MAX
                } else {
                    c.expires_at
                };
                let detail = serde_json::json!({"spotAccountId": account.as_str()});
                Ok(Some((
                    Event::new(t, c, EventKind::Checked, &actor, "account_assigned", Some(detail)),
                    vec![Guard::HoldAccount { until }],
                )))
            })
            .await
            .map_err(|e| match e {
                ServiceError::NotFound => OrganizationError::NotAMember,
                e => e.into(),
            })?;
        if c.account_id != account {
            return Err(OrganizationError::SpotAccountAssigned(c.account_id));
        }
        Ok(c)
    }
}

/// What a deleted stack (`what`: "stack instance", "management stack")
/// does to the connection it connected, in its change: back to pending with
/// its external ID, its role released, and a note saying why. Answers the
/// role's release.
pub(super) fn unlinked_by_deleted_stack(c: &mut Connection, stack_id: &str, what: &str) -> Vec<Guard> {
    let guards = c.role_arn.take().map(Guard::ReleaseRole).into_iter().collect();
    c.state = Status::Pending;
    c.health = None;
    c.stack = None;
    if let Some(m) = c.organization.as_mut() {
        m.note = Some(format!(
            "The {what} that connected it was deleted ({}); Spot no longer uses its role.",
            stack_id.chars().take(256).collect::<String>()
        ));
    }
    guards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(region: &str, stack_id: Option<&str>) -> Instance {
        Instance {
            region: region.into(),
            stack_id: stack_id.map(str::to_owned),
        }
    }

    const OURS: &str = "arn:aws:cloudformation:us-east-1:111122223333:stack/StackSet-S-1/a";

    #[test]
    fn only_a_stack_the_stack_set_reports_for_the_account_is_bound() {
        let account: AccountId = "111122223333".parse().unwrap();
        let both = [
            instance("us-east-1", Some(OURS)),
            instance("eu-west-1", Some("arn:other")),
        ];
        assert_eq!(bound(&both, "S", &account, OURS), Ok(()));
        assert_eq!(bound(&both, "S", &account, "arn:other"), Ok(()));
        let made_up = "arn:aws:cloudformation:us-east-1:111122223333:stack/StackSet-S-2/b";
        assert!(matches!(
            bound(&both, "S", &account, made_up),
            Err(Refusal::NotTheInstance(_))
        ));
        // No instance at all, or none matching: refused, nothing of another stack in the words.
        let Err(Refusal::NotTheInstance(why)) = bound(&[], "S", &account, made_up) else {
            panic!("no instance: refused")
        };
        assert!(!why.contains(OURS), "{why}");
        // An instance whose stack CloudFormation has not made yet: try again.
        let making = [instance("us-east-1", None)];
        assert!(matches!(
            bound(&making, "S", &account, made_up),
            Err(Refusal::NotYet(_))
        ));
    }
}
