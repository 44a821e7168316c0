use super::document::{PolicyDocument, Statement};
use super::selection::Selection;
use super::split::{split, MANAGED_POLICY_MAX_CHARS, MAX_MANAGED_POLICIES};
use super::POLICY_NAME;
use crate::catalog::{covered, wildcard_prefix, StatementTemplate};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenderedPolicy {
    pub name: String,
    pub document: PolicyDocument,
    /// Characters as IAM counts them (no whitespace).
    pub size: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    #[schema(min_items = 1, max_items = 10)] // MAX_MANAGED_POLICIES
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

impl std::error::Error for RenderError {}

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
    let resources: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            let mut r: Vec<String> = t.resources_for(partition).collect();
            r.sort();
            r.dedup();
            r
        })
        .collect();
    let keys: Vec<(&[String], &str)> = templates
        .iter()
        .zip(&resources)
        .map(|(t, r)| (r.as_slice(), t.prepared.condition_key.as_str()))
        .collect();

    // Statements with the same resources and conditions grant to each other.
    let mut prefixes: HashMap<(&[String], &str), Vec<&str>> = HashMap::new();
    for (t, k) in templates.iter().zip(&keys) {
        prefixes
            .entry(*k)
            .or_default()
            .extend(t.prepared.wildcard_prefixes.iter().map(String::as_str));
    }
    for p in prefixes.values_mut() {
        p.sort_unstable();
    }
    let mut granted: HashMap<(&[String], &str), HashSet<&str, Fnv>> = HashMap::new();
    let mut statements = Vec::with_capacity(templates.len());
    for ((t, k), resource) in templates.iter().zip(&keys).zip(&resources) {
        let p = &prefixes[k];
        let seen = granted.entry(*k).or_default();
        let action: Vec<Cow<'static, str>> = kept_actions(t, p, seen);
        if action.is_empty() {
            continue;
        }
        statements.push(Statement {
            sid: Cow::Borrowed(t.sid.as_str()),
            effect: Cow::Borrowed("Allow"),
            action,
            resource: resource.clone(),
            condition: t.conditions.clone(),
        });
    }

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
            size: if numbered { document.iam_size() } else { total_size },
            document,
        })
        .collect();
    Ok(Rendered {
        policies,
        total_size,
        size_limit: MANAGED_POLICY_MAX_CHARS,
    })
}

/// The statement's actions that no wildcard of its group covers and no
/// earlier statement of its group granted.
fn kept_actions(
    t: &'static StatementTemplate,
    prefixes: &[&str],
    seen: &mut HashSet<&'static str, Fnv>,
) -> Vec<Cow<'static, str>> {
    t.prepared
        .actions
        .iter()
        .filter(|(lower, _)| !covered_by(lower, prefixes) && seen.insert(lower.as_str()))
        .map(|(_, i)| Cow::Borrowed(t.actions[*i].as_str()))
        .collect()
}

/// `prefixes` sorted: a prefix of `lower` sorts at or before it, and after
/// its service's `svc:`, so only that short run is compared.
fn covered_by(lower: &str, prefixes: &[&str]) -> bool {
    let service = &lower[..lower.find(':').map_or(lower.len(), |i| i + 1)];
    let end = prefixes.partition_point(|p| *p <= lower);
    prefixes[..end]
        .iter()
        .rev()
        .take_while(|p| p.starts_with(service))
        .any(|p| lower.starts_with(p) && lower.len() > p.len() && &lower[p.len()..] != "*")
}

/// FNV-1a: action names are short and come from the catalog, not from
/// clients, so SipHash's resistance to chosen keys buys nothing here.
type Fnv = std::hash::BuildHasherDefault<FnvHasher>;

#[derive(Default)]
struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
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
