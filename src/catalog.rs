//! The permission catalog: products, their integrations, the bundles they
//! include and the core bundle, loaded from `catalog/catalog.json` at compile
//! time and checked once on first use.

use crate::domain::Partition;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

const CATALOG_JSON: &str = include_str!("../catalog/catalog.json");
/// Resources name the partition through this placeholder.
pub const PARTITION_PLACEHOLDER: &str = "${Partition}";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalog {
    pub schema_version: u32,
    pub core: Bundle,
    pub shared: Vec<Bundle>,
    pub products: Vec<Product>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bundle {
    pub id: String,
    pub name: String,
    pub description: String,
    pub statements: Vec<StatementTemplate>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub description: String,
    pub default: bool,
    #[serde(default)]
    pub includes: Vec<String>,
    #[serde(default)]
    pub statements: Vec<StatementTemplate>,
    #[serde(default)]
    pub integrations: Vec<Integration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Integration {
    pub id: String,
    pub name: String,
    pub description: String,
    pub default: bool,
    pub statements: Vec<StatementTemplate>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatementTemplate {
    pub sid: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<serde_json::Value>,
    /// Worked out once at load, for the renderer.
    #[serde(skip)]
    pub prepared: Prepared,
}

/// A statement's actions as the renderer needs them: lowercased, sorted,
/// without duplicates or actions a wildcard of the same statement covers.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// (lowercase, index into `actions`)
    pub actions: Vec<(String, usize)>,
    /// `svc:pre` of each `svc:Pre*` action, lowercase.
    pub wildcard_prefixes: Vec<String>,
    /// The condition block as canonical JSON ("" for none).
    pub condition_key: String,
}

impl StatementTemplate {
    fn prepare(&mut self) {
        let mut keyed: Vec<(String, usize)> = self
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| (a.to_ascii_lowercase(), i))
            .collect();
        keyed.sort();
        keyed.dedup_by(|b, a| a.0 == b.0);
        let prefixes: Vec<String> = keyed.iter().filter_map(|(l, _)| wildcard_prefix(l)).collect();
        keyed.retain(|(l, _)| !covered(l, &prefixes));
        self.prepared = Prepared {
            actions: keyed,
            wildcard_prefixes: prefixes,
            condition_key: self.conditions.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        };
    }
}

impl StatementTemplate {
    pub fn resources_for(&self, partition: Partition) -> impl Iterator<Item = String> + '_ {
        self.resources
            .iter()
            .map(move |r| r.replace(PARTITION_PLACEHOLDER, partition.as_str()))
    }
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let mut catalog: Catalog = serde_json::from_str(CATALOG_JSON).expect("catalog/catalog.json does not parse");
    catalog.for_each_statement(StatementTemplate::prepare);
    if let Err(problems) = catalog.check() {
        panic!("catalog/catalog.json is inconsistent: {problems:?}");
    }
    catalog
});

/// Where a bundle id points.
#[derive(Debug, Clone, Copy)]
pub enum BundleRef<'a> {
    Product(&'a Product),
    Integration(&'a Product, &'a Integration),
}

impl Catalog {
    pub fn get() -> &'static Catalog {
        &CATALOG
    }

    fn for_each_statement(&mut self, mut f: impl FnMut(&mut StatementTemplate)) {
        self.core.statements.iter_mut().for_each(&mut f);
        self.shared
            .iter_mut()
            .flat_map(|b| b.statements.iter_mut())
            .for_each(&mut f);
        for p in &mut self.products {
            p.statements.iter_mut().for_each(&mut f);
            p.integrations
                .iter_mut()
                .flat_map(|i| i.statements.iter_mut())
                .for_each(&mut f);
        }
    }

    pub fn shared(&self, id: &str) -> Option<&Bundle> {
        self.shared.iter().find(|b| b.id == id)
    }

    pub fn find(&self, id: &str) -> Option<BundleRef<'_>> {
        for p in &self.products {
            if p.id == id {
                return Some(BundleRef::Product(p));
            }
            if let Some(i) = p.integrations.iter().find(|i| i.id == id) {
                return Some(BundleRef::Integration(p, i));
            }
        }
        None
    }

    /// Every statement a product contributes on its own: its statements and
    /// those of the shared bundles it includes.
    pub fn product_statements<'a>(&'a self, p: &'a Product) -> impl Iterator<Item = &'a StatementTemplate> + Clone {
        p.statements.iter().chain(
            p.includes
                .iter()
                .filter_map(|id| self.shared(id))
                .flat_map(|b| b.statements.iter()),
        )
    }

    /// Consistency rules the renderer relies on; run at load and by tests.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut ids = HashMap::new();
        let mut sids = BTreeSet::new();
        let mut note_id = |id: &str, problems: &mut Vec<String>| {
            let kebab = !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !kebab {
                problems.push(format!("id {id:?} is not lowercase kebab-case"));
            }
            if ids.insert(id.to_owned(), ()).is_some() {
                problems.push(format!("id {id:?} is used twice"));
            }
        };
        let mut check_statements = |owner: &str, sts: &[StatementTemplate], problems: &mut Vec<String>| {
            for s in sts {
                if s.sid.is_empty() || !s.sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    problems.push(format!("{owner}: sid {:?} is not alphanumeric", s.sid));
                }
                if !sids.insert(s.sid.clone()) {
                    problems.push(format!("{owner}: sid {:?} is used twice", s.sid));
                }
                if s.actions.is_empty() || s.resources.is_empty() {
                    problems.push(format!("{owner}: statement {} has no actions or no resources", s.sid));
                }
                for a in &s.actions {
                    let valid = a.split_once(':').is_some_and(|(svc, name)| {
                        !svc.is_empty()
                            && svc
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                            && !name.is_empty()
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
                    });
                    if !valid {
                        problems.push(format!("{owner}: action {a:?} is not service:Action"));
                    }
                }
                for r in &s.resources {
                    if r.starts_with("arn:") && !r.starts_with("arn:${Partition}:") {
                        problems.push(format!(
                            "{owner}: resource {r:?} must use the ${{Partition}} placeholder"
                        ));
                    }
                }
            }
        };
        note_id(&self.core.id, &mut problems);
        check_statements("core", &self.core.statements, &mut problems);
        for b in &self.shared {
            note_id(&b.id, &mut problems);
            check_statements(&b.id, &b.statements, &mut problems);
        }
        for p in &self.products {
            note_id(&p.id, &mut problems);
            check_statements(&p.id, &p.statements, &mut problems);
            for inc in &p.includes {
                if self.shared(inc).is_none() {
                    problems.push(format!("{}: includes unknown shared bundle {inc:?}", p.id));
                }
            }
            if p.statements.is_empty() && p.includes.is_empty() {
                problems.push(format!("{}: grants nothing", p.id));
            }
            for i in &p.integrations {
                note_id(&i.id, &mut problems);
                check_statements(&i.id, &i.statements, &mut problems);
                if !i.id.starts_with(&format!("{}-", p.id)) {
                    problems.push(format!("{}: integration id must start with its product id", i.id));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

// Action-pattern helpers: the catalog prepares its statements with them and
// the renderer normalizes with them, so they live here, below `policy`.

/// `svc:Pre*` -> `svc:pre`; other wildcards are not used for covering.
pub fn wildcard_prefix(lower: &str) -> Option<String> {
    lower
        .strip_suffix('*')
        .filter(|p| !p.contains(['*', '?']))
        .map(str::to_owned)
}

/// Whether a `prefix*` other than the action itself covers it.
pub fn covered(lower: &str, prefixes: &[String]) -> bool {
    prefixes
        .iter()
        .any(|p| lower.starts_with(p.as_str()) && lower.len() > p.len() && &lower[p.len()..] != "*")
}
