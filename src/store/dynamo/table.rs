//! The table as `template.yaml` declares it, for local runs and tests.

use super::{DynamoStore, GSI_CONNECTED, GSI_TENANT};
use crate::sdk::AwsConfigs;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};

/// DynamoDB refused to create the table.
#[derive(Debug, thiserror::Error)]
#[error("cannot create table {table}: {detail}")]
pub struct CreateTableError {
    table: String,
    detail: String,
}

/// Creates the table as `template.yaml` declares it (local runs and tests).
pub async fn create_table(table: &str, aws: &AwsConfigs) -> Result<(), CreateTableError> {
    let store = DynamoStore::new(table.to_owned(), aws.clone());
    let client = store.client().await;
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("complete")
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .expect("complete")
    };
    let res = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("gsi1pk"))
        .attribute_definitions(attr("gsi1sk"))
        .attribute_definitions(attr("gsi2pk"))
        .attribute_definitions(attr("gsi2sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI_TENANT)
                .key_schema(key("gsi1pk", KeyType::Hash))
                .key_schema(key("gsi1sk", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("complete"),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI_CONNECTED)
                .key_schema(key("gsi2pk", KeyType::Hash))
                .key_schema(key("gsi2sk", KeyType::Range))
                // Readers fetch the items by key (`shards`).
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .expect("complete"),
        )
        .send()
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_in_use_exception()) => Ok(()),
        Err(e) => Err(CreateTableError {
            table: table.to_owned(),
            detail: format!("{:?}", e.into_service_error()),
        }),
    }
}
