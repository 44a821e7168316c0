use super::document::{PolicyDocument, Statement};

/// IAM quota: a customer managed policy document holds at most 6,144
/// characters, whitespace not counted (aws-rules.md).
pub const MANAGED_POLICY_MAX_CHARS: usize = 6144;
/// IAM quota: managed policies attached to one role, default (max 20).
pub const MAX_MANAGED_POLICIES: usize = 10;

/// Packs the statements into documents within the size limit, in order;
/// a statement that does not fit whole is cut between its actions.
pub fn split(whole: PolicyDocument) -> Vec<PolicyDocument> {
    let empty_doc = PolicyDocument::new(Vec::new()).iam_size();
    let mut docs: Vec<PolicyDocument> = Vec::new();
    let mut current: Vec<Statement> = Vec::new();
    let mut used = empty_doc;

    for statement in whole.statement {
        let base = Statement {
            action: Vec::new(),
            ..statement.clone()
        };
        // `"Action":[]` holds the actions, each quoted, with commas between.
        let base_size = PolicyDocument::new(vec![base.clone()]).iam_size() - empty_doc;
        let mut pending = statement.action.into_iter().peekable();
        while pending.peek().is_some() {
            let separator = usize::from(!current.is_empty());
            let mut room = MANAGED_POLICY_MAX_CHARS.saturating_sub(used + separator + base_size);
            let mut part = Vec::new();
            while let Some(a) = pending.peek() {
                let cost = a.len() + 2 + usize::from(!part.is_empty());
                if cost > room {
                    break;
                }
                room -= cost;
                part.push(pending.next().expect("peeked"));
            }
            if part.is_empty() {
                if current.is_empty() {
                    panic!("one action does not fit an empty managed policy");
                }
                docs.push(PolicyDocument::new(std::mem::take(&mut current)));
                used = empty_doc;
                continue;
            }
            used += separator + base_size + part.iter().map(|a| a.len() + 2).sum::<usize>() + part.len() - 1;
            current.push(Statement {
                action: part,
                ..base.clone()
            });
        }
    }
    if !current.is_empty() {
        docs.push(PolicyDocument::new(current));
    }
    docs
}
