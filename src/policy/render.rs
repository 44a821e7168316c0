use super::document::{PolicyDocument, Statement};
use super::selection::Selection;
use super::split::{split, MANAGED_POLICY_MAX_CHARS, MAX_MANAGED_POLICIES};
use super::POLICY_NAME;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedPolicy {
    pub name: String,
    pub document: PolicyDocument,
    /// Characters as IAM counts them (no whitespace).
    pub size: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    pub policies: Vec<RenderedPolicy>,
    /// Size of the selection as one unsplit document.
    pub total_size: usize,
    pub size_limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// More managed policies than a role can have attached.
    TooLarge { needed: usize },
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::TooLarge { needed } => write!(
                f,
                "the selection needs {needed} managed policies; a role takes at most {MAX_MANAGED_POLICIES}: select fewer bundles"
            ),
        }
    }
}

/// Renders the selection: one statement per catalog statement (its Sid says
/// which bundle needs it), sorted by Sid; actions sorted and de-duplicated
/// (IAM compares them without case); an action dropped where a statement on
/// the same resources and conditions already grants it or a wildcard of
/// theirs covers it. Then split into managed policies within IAM's limit.
pub fn render(selection: &Selection) -> Result<Rendered, RenderError> {
    let partition = selection.partition();
    let mut templates = selection.statements();
    templates.sort_by(|a, b| a.sid.cmp(&b.sid));
    let mut statements: Vec<Statement> = templates
        .iter()
        .map(|t| {
            let mut resource: Vec<String> = t.resources_for(partition).collect();
            resource.sort();
            resource.dedup();
            Statement {
                sid: t.sid.clone(),
                effect: "Allow".to_owned(),
                action: normalize_actions(t.actions.iter().map(String::as_str).collect()),
                resource,
                condition: t.conditions.clone(),
            }
        })
        .collect();
    drop_granted_elsewhere(&mut statements);

    let whole = PolicyDocument::new(statements);
    let total_size = whole.iam_size();
    let documents = if total_size <= MANAGED_POLICY_MAX_CHARS {
        vec![whole]
    } else {
        split(whole)
    };
    if documents.len() > MAX_MANAGED_POLICIES {
        return Err(RenderError::TooLarge {
            needed: documents.len(),
        });
    }
    let numbered = documents.len() > 1;
    let policies = documents
        .into_iter()
        .enumerate()
        .map(|(i, document)| RenderedPolicy {
            name: if numbered {
                format!("{POLICY_NAME}-{}", i + 1)
            } else {
                POLICY_NAME.to_owned()
            },
            size: document.iam_size(),
            document,
        })
        .collect();
    Ok(Rendered {
        policies,
        total_size,
        size_limit: MANAGED_POLICY_MAX_CHARS,
    })
}

/// Across statements with the same resources and conditions: drops actions a
/// wildcard of any of them covers, then repeats of an action after its first
/// statement; statements left empty go.
fn drop_granted_elsewhere(statements: &mut Vec<Statement>) {
    let key = |s: &Statement| (s.resource.clone(), s.condition.as_ref().map(|c| c.to_string()));
    let mut prefixes: BTreeMap<_, Vec<String>> = BTreeMap::new();
    for s in statements.iter() {
        let p = prefixes.entry(key(s)).or_default();
        p.extend(s.action.iter().filter_map(|a| wildcard_prefix(&a.to_ascii_lowercase())));
    }
    let mut granted: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
    for s in statements.iter_mut() {
        let k = key(s);
        let p = &prefixes[&k];
        let seen = granted.entry(k).or_default();
        s.action.retain(|a| {
            let lower = a.to_ascii_lowercase();
            !covered(&lower, p) && seen.insert(lower)
        });
    }
    statements.retain(|s| !s.action.is_empty());
}

/// `svc:Pre*` -> `svc:pre`; other wildcards are not used for covering.
fn wildcard_prefix(lower: &str) -> Option<String> {
    lower
        .strip_suffix('*')
        .filter(|p| !p.contains(['*', '?']))
        .map(str::to_owned)
}

/// Whether a `prefix*` other than the action itself covers it.
fn covered(lower: &str, prefixes: &[String]) -> bool {
    prefixes
        .iter()
        .any(|p| lower.starts_with(p.as_str()) && lower.len() > p.len() && &lower[p.len()..] != "*")
}

/// Sorted case-insensitively, duplicates (without case) removed, and actions
/// covered by a `Prefix*` wildcard of the same list dropped.
pub fn normalize_actions(actions: Vec<&str>) -> Vec<String> {
    let mut keyed: Vec<(String, &str)> = actions.into_iter().map(|a| (a.to_ascii_lowercase(), a)).collect();
    keyed.sort();
    keyed.dedup_by(|b, a| a.0 == b.0);
    let prefixes: Vec<String> = keyed.iter().filter_map(|(lower, _)| wildcard_prefix(lower)).collect();
    keyed
        .iter()
        .filter(|(lower, _)| !covered(lower, &prefixes))
        .map(|(_, original)| original.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::normalize_actions;

    #[test]
    fn drops_duplicates_and_covered_actions() {
        let got = normalize_actions(vec![
            "ec2:DescribeVolumes",
            "autoscaling:*",
            "ec2:Describe*",
            "autoscaling:Describe*",
            "EC2:describeVolumes",
            "ec2:CreateTags",
            "ecs:List*",
            "ecs:ListClusters",
        ]);
        assert_eq!(
            got,
            vec!["autoscaling:*", "ec2:CreateTags", "ec2:Describe*", "ecs:List*"]
        );
    }

    #[test]
    fn a_wildcard_does_not_cover_another_service() {
        let got = normalize_actions(vec!["ec2:*", "ec2messages:GetMessages"]);
        assert_eq!(got, vec!["ec2:*", "ec2messages:GetMessages"]);
    }
}
