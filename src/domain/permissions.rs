//! What the customer asked for, as sent: the default policy or a custom
//! choice of the catalog's products and integrations (checked against the
//! catalog by `policy::Selection`, which also gives it its schema).

use serde::{Deserialize, Serialize};

/// What the customer asked for, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase", try_from = "PermissionsWire")]
pub enum Permissions {
    Default,
    Custom {
        #[serde(default)]
        products: Vec<String>,
        #[serde(default)]
        integrations: Vec<String>,
    },
}

/// The wire shape, so that `{"mode": "default", "products": [...]}` is
/// refused instead of silently ignoring the products.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PermissionsWire {
    mode: Mode,
    products: Option<Vec<String>>,
    integrations: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Mode {
    Default,
    Custom,
}

impl TryFrom<PermissionsWire> for Permissions {
    type Error = &'static str;
    fn try_from(w: PermissionsWire) -> Result<Self, Self::Error> {
        match w.mode {
            Mode::Default if w.products.is_some() || w.integrations.is_some() => {
                Err("\"default\" takes no products or integrations; use \"mode\": \"custom\" to choose them")
            }
            Mode::Default => Ok(Permissions::Default),
            Mode::Custom => Ok(Permissions::Custom {
                products: w.products.unwrap_or_default(),
                integrations: w.integrations.unwrap_or_default(),
            }),
        }
    }
}
