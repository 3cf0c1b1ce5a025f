//! Making the index's table (`pushbuild index create`, the tests): the same shape the template
//! gives it.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::DynamoIndex;
use super::item::{build_error, sdk_error};
use crate::index::IndexError;

impl DynamoIndex {
    /// Creates the table with its two indexes and its TTL (for `pushbuild index create` and
    /// tests; CloudFormation creates it on AWS), and waits until it is active.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), IndexError> {
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|err| build_error(table, err))
        };
        let attribute = |name: &str, kind| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .map_err(|err| build_error(table, err))
        };
        let index =
            |name: &str, hash: &str, range: &str| -> Result<GlobalSecondaryIndex, IndexError> {
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(hash, KeyType::Hash)?)
                    .key_schema(key(range, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|err| build_error(table, err))
            };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attribute("pk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("sk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("gsi1pk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("gsi1sk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("open_pk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("expires_ms", ScalarAttributeType::N)?)
            .global_secondary_indexes(index("by-month", "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(index("open", "open_pk", "expires_ms")?)
            .send()
            .await
            .map_err(|err| sdk_error(table, err))?;
        for _ in 0..600 {
            let described = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|err| sdk_error(table, err))?;
            let active = described
                .table()
                .and_then(|t| t.table_status())
                .is_some_and(|s| s.as_str() == "ACTIVE");
            if active {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("ttl")
                    .enabled(true)
                    .build()
                    .map_err(|err| build_error(table, err))?,
            )
            .send()
            .await
            .map_err(|err| sdk_error(table, err))?;
        Ok(())
    }
}
