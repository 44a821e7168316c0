use crate::catalog::{BundleRef, Catalog, Product, StatementTemplate};
use crate::domain::{Partition, Permissions};
use std::collections::BTreeSet;

// The type is the domain's; its schema and `everything` need the catalog.

/// Custom ids are the catalog's: unknown ids, duplicates and an empty
/// selection are refused (422), and so is an integration without its product.
impl utoipa::PartialSchema for Permissions {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let c = Catalog::get();
        let products: Vec<&str> = c.products.iter().map(|p| p.id.as_str()).collect();
        let integrations: Vec<&str> = c
            .products
            .iter()
            .flat_map(|p| p.integrations.iter().map(|i| i.id.as_str()))
            .collect();
        crate::domain::json_schema(serde_json::json!({
            "oneOf": [
                {"type": "object", "required": ["mode"], "additionalProperties": false,
                 "properties": {"mode": {"type": "string", "enum": ["default"]}}},
                {"type": "object", "required": ["mode", "products"], "additionalProperties": false,
                 "properties": {
                    "mode": {"type": "string", "enum": ["custom"]},
                    "products": {"type": "array", "minItems": 1, "uniqueItems": true,
                                 "items": {"type": "string", "enum": products}},
                    "integrations": {"type": "array", "uniqueItems": true,
                                     "items": {"type": "string", "enum": integrations}}
                 }}
            ]
        }))
    }
}
impl utoipa::ToSchema for Permissions {}

impl Permissions {
    /// Every product and integration of the catalog.
    pub fn everything() -> Permissions {
        let c = Catalog::get();
        Permissions::Custom {
            products: c.products.iter().map(|p| p.id.clone()).collect(),
            integrations: c
                .products
                .iter()
                .flat_map(|p| p.integrations.iter().map(|i| i.id.clone()))
                .collect(),
        }
    }
}

/// Why a selection was refused; each names the offending id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionError {
    CustomNotAllowed(Partition),
    UnknownBundle(String),
    NotAProduct(String),
    NotAnIntegration(String),
    Duplicate(String),
    IntegrationWithoutProduct { integration: String, product: String },
    Empty,
}

impl SelectionError {
    pub fn code(&self) -> &'static str {
        match self {
            SelectionError::CustomNotAllowed(_) => "custom_permissions_not_allowed",
            SelectionError::UnknownBundle(_) => "unknown_bundle",
            SelectionError::NotAProduct(_) => "not_a_product",
            SelectionError::NotAnIntegration(_) => "not_an_integration",
            SelectionError::Duplicate(_) => "duplicate_bundle",
            SelectionError::IntegrationWithoutProduct { .. } => "integration_without_product",
            SelectionError::Empty => "empty_selection",
        }
    }

    pub fn offending_id(&self) -> Option<&str> {
        match self {
            SelectionError::UnknownBundle(id)
            | SelectionError::NotAProduct(id)
            | SelectionError::NotAnIntegration(id)
            | SelectionError::Duplicate(id) => Some(id),
            SelectionError::IntegrationWithoutProduct { integration, .. } => Some(integration),
            _ => None,
        }
    }
}

impl std::error::Error for SelectionError {}

impl std::fmt::Display for SelectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelectionError::CustomNotAllowed(p) => write!(
                f,
                "{} accounts get the default policy only; send {{\"mode\": \"default\"}}",
                p.display_name()
            ),
            SelectionError::UnknownBundle(id) => {
                write!(
                    f,
                    "{id:?} is not in the permission catalog; GET /v1/catalog lists the ids"
                )
            }
            SelectionError::NotAProduct(id) => write!(f, "{id:?} is an integration; list it under \"integrations\""),
            SelectionError::NotAnIntegration(id) => write!(f, "{id:?} is a product; list it under \"products\""),
            SelectionError::Duplicate(id) => write!(f, "{id:?} is selected twice; list each id once"),
            SelectionError::IntegrationWithoutProduct { integration, product } => write!(
                f,
                "the integration {integration:?} needs its product {product:?}; add {product:?} to \"products\""
            ),
            SelectionError::Empty => write!(f, "select at least one product, or use {{\"mode\": \"default\"}}"),
        }
    }
}

/// A checked selection: a partition and the catalog's products and
/// integrations it includes, in catalog order. The core bundle is implied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selection {
    partition: Partition,
    default: bool,
    products: Vec<&'static str>,
    integrations: Vec<&'static str>,
}

impl Selection {
    pub fn resolve(partition: Partition, permissions: &Permissions) -> Result<Selection, SelectionError> {
        let catalog = Catalog::get();
        let (products, integrations) = match permissions {
            Permissions::Default => {
                let products = catalog.products.iter().filter(|p| p.default);
                let integrations = products
                    .clone()
                    .flat_map(|p| p.integrations.iter().filter(|i| i.default));
                let products: Vec<_> = products.map(|p| p.id.as_str()).collect();
                let integrations: Vec<_> = integrations.map(|i| i.id.as_str()).collect();
                return Ok(Selection {
                    partition,
                    default: true,
                    products,
                    integrations,
                });
            }
            Permissions::Custom { products, integrations } => (products, integrations),
        };
        if !partition.allows_custom() {
            return Err(SelectionError::CustomNotAllowed(partition));
        }
        let mut seen = BTreeSet::new();
        for id in products.iter().chain(integrations) {
            if !seen.insert(id.as_str()) {
                return Err(SelectionError::Duplicate(id.clone()));
            }
        }
        for id in products {
            match catalog.find(id) {
                None => return Err(SelectionError::UnknownBundle(id.clone())),
                Some(BundleRef::Integration(..)) => return Err(SelectionError::NotAProduct(id.clone())),
                Some(BundleRef::Product(_)) => {}
            }
        }
        for id in integrations {
            match catalog.find(id) {
                None => return Err(SelectionError::UnknownBundle(id.clone())),
                Some(BundleRef::Product(_)) => return Err(SelectionError::NotAnIntegration(id.clone())),
                Some(BundleRef::Integration(p, _)) if !seen.contains(p.id.as_str()) || !products.contains(&p.id) => {
                    return Err(SelectionError::IntegrationWithoutProduct {
                        integration: id.clone(),
                        product: p.id.clone(),
                    })
                }
                Some(BundleRef::Integration(..)) => {}
            }
        }
        if products.is_empty() {
            return Err(SelectionError::Empty);
        }
        // Catalog order, so that equal selections compare and render equal.
        let products = catalog
            .products
            .iter()
            .filter(|p| seen.contains(p.id.as_str()))
            .map(|p| p.id.as_str());
        let integrations = catalog
            .products
            .iter()
            .flat_map(|p| &p.integrations)
            .filter(|i| seen.contains(i.id.as_str()))
            .map(|i| i.id.as_str());
        Ok(Selection {
            partition,
            default: false,
            products: products.collect(),
            integrations: integrations.collect(),
        })
    }

    pub fn partition(&self) -> Partition {
        self.partition
    }
    pub fn is_default(&self) -> bool {
        self.default
    }
    pub fn products(&self) -> &[&'static str] {
        &self.products
    }
    pub fn integrations(&self) -> &[&'static str] {
        &self.integrations
    }

    /// The selection as the API echoes it and the store keeps it.
    pub fn permissions(&self) -> Permissions {
        if self.default {
            Permissions::Default
        } else {
            Permissions::Custom {
                products: self.products.iter().map(|s| s.to_string()).collect(),
                integrations: self.integrations.iter().map(|s| s.to_string()).collect(),
            }
        }
    }

    /// Ids of every bundle whose statements the render holds, core first.
    pub fn bundle_ids(&self) -> Vec<&'static str> {
        let catalog = Catalog::get();
        let mut ids = vec![catalog.core.id.as_str()];
        for p in self.selected_products() {
            for inc in &p.includes {
                if !ids.contains(&inc.as_str()) {
                    ids.push(inc.as_str());
                }
            }
        }
        ids.extend(self.products.iter().chain(&self.integrations));
        ids
    }

    fn selected_products(&self) -> impl Iterator<Item = &'static Product> + '_ {
        Catalog::get()
            .products
            .iter()
            .filter(|p| self.products.contains(&p.id.as_str()))
    }

    /// Every statement template the render needs, shared bundles once.
    pub fn statements(&self) -> Vec<&'static StatementTemplate> {
        let catalog = Catalog::get();
        let mut out: Vec<&StatementTemplate> = catalog.core.statements.iter().collect();
        let mut shared_seen = BTreeSet::new();
        for p in self.selected_products() {
            out.extend(&p.statements);
            for inc in &p.includes {
                if shared_seen.insert(inc.as_str()) {
                    out.extend(catalog.shared(inc).into_iter().flat_map(|b| &b.statements));
                }
            }
            for i in p
                .integrations
                .iter()
                .filter(|i| self.integrations.contains(&i.id.as_str()))
            {
                out.extend(&i.statements);
            }
        }
        out
    }
}
