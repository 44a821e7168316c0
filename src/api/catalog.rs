use super::error::ApiError;
use super::extract::{Json, Query};
use crate::catalog::{Catalog, StatementTemplate};
use crate::domain::Partition;
use crate::policy::Permissions;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// The AWS partition; default aws.
    partition: Option<Partition>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Catalog)]
pub struct CatalogView {
    partition: Partition,
    customizable: bool,
    /// Why customizing is off, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    default_permissions: Permissions,
    core: BundleView,
    products: Vec<ProductView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Bundle)]
pub struct BundleView {
    id: String,
    name: String,
    description: String,
    default: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Product)]
pub struct ProductView {
    #[serde(flatten)]
    bundle: BundleView,
    integrations: Vec<BundleView>,
}

fn bundle<'a>(
    id: &str,
    name: &str,
    description: &str,
    default: bool,
    statements: impl Iterator<Item = &'a StatementTemplate> + Clone,
    partition: Partition,
) -> BundleView {
    let actions = crate::policy::normalize(
        statements
            .clone()
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect(),
    );
    let mut resources: Vec<String> = statements.flat_map(|s| s.resources_for(partition)).collect();
    resources.sort();
    resources.dedup();
    BundleView {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        default,
        actions,
        resources,
    }
}

#[utoipa::path(get, path = "/v1/catalog", tag = "policies", operation_id = "getCatalog",
    summary = "Products, integrations and their actions",
    params(CatalogQuery),
    security(()),
    responses(
        (status = 200, body = CatalogView),
        (status = 400, description = "A query parameter is not valid"),
    ))]
pub async fn get_catalog(Query(q): Query<CatalogQuery>) -> Result<Json<CatalogView>, ApiError> {
    let partition = q.partition.unwrap_or(Partition::Aws);
    let c = Catalog::get();
    let products = c
        .products
        .iter()
        .map(|p| ProductView {
            bundle: bundle(
                &p.id,
                &p.name,
                &p.description,
                p.default,
                c.product_statements(p),
                partition,
            ),
            integrations: p
                .integrations
                .iter()
                .map(|i| {
                    bundle(
                        &i.id,
                        &i.name,
                        &i.description,
                        i.default,
                        i.statements.iter(),
                        partition,
                    )
                })
                .collect(),
        })
        .collect();
    Ok(Json(CatalogView {
        partition,
        customizable: partition.allows_custom(),
        note: (!partition.allows_custom()).then(|| {
            format!(
                "If you are connecting an {} account, you will not be able to customize your policy.",
                partition.display_name()
            )
        }),
        default_permissions: Permissions::Default,
        core: bundle(
            &c.core.id,
            &c.core.name,
            &c.core.description,
            true,
            c.core.statements.iter(),
            partition,
        ),
        products,
    }))
}
