use super::document::{list_size, PolicyDocument, Statement, EMPTY_DOCUMENT_SIZE};
use std::borrow::Cow;

/// IAM quota: a customer managed policy document holds at most 6,144
/// characters, whitespace not counted (aws-rules.md).
pub const MANAGED_POLICY_MAX_CHARS: usize = 6144;
/// IAM quota: managed policies attached to one role, default (max 20).
pub const MAX_MANAGED_POLICIES: usize = 10;

/// Packs the statements into documents within the size limit, in order;
/// a statement that does not fit whole is cut between its actions.
pub fn split(whole: PolicyDocument) -> Vec<PolicyDocument> {
    let mut docs: Vec<PolicyDocument> = Vec::new();
    let mut current: Vec<Statement> = Vec::new();
    let mut used = EMPTY_DOCUMENT_SIZE;

    for statement in whole.statement {
        let base_size = statement.size_without_actions();
        let actions: Vec<Cow<'static, str>> = statement.action.clone();
        let mut pending = actions.into_iter().peekable();
        while pending.peek().is_some() {
            let separator = usize::from(!current.is_empty());
            let mut room = MANAGED_POLICY_MAX_CHARS.saturating_sub(used + separator + base_size);
            let mut part = Vec::new();
            while let Some(a) = pending.peek() {
                let cost = list_size(std::iter::once(a.as_ref())) + usize::from(!part.is_empty());
                if cost > room {
                    break;
                }
                room -= cost;
                part.push(pending.next().expect("peeked"));
            }
            if part.is_empty() {
                assert!(!current.is_empty(), "one action does not fit an empty managed policy");
                docs.push(PolicyDocument::new(std::mem::take(&mut current)));
                used = EMPTY_DOCUMENT_SIZE;
                continue;
            }
            used += separator + base_size + list_size(part.iter().map(|a| a.as_ref()));
            current.push(Statement {
                action: part,
                ..statement.clone()
            });
        }
    }
    if !current.is_empty() {
        docs.push(PolicyDocument::new(current));
    }
    docs
}
