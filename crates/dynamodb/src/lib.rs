//! The DynamoDB adapter. Everything that talks to DynamoDB is in this module; the rest of the
//! crate is pure. One table, single-table design: see `keys.rs` and docs/data-model.md.

pub mod adjustments;
pub mod campaigns;
pub mod clearing;
pub mod companies;
pub mod config;
pub mod email_key;
pub use email_key::EmailKey;
pub mod holds;
pub mod imports;
pub mod keys;
pub mod ledger;
pub mod lot_takes;
pub mod merges;
pub mod nightly;
pub mod notify;
pub mod offers;
pub mod outgoing;
pub mod retry;
pub mod rewards;
pub mod sales;
pub mod schema;
pub mod site;
pub mod transfers;

use std::collections::HashMap;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use bonus_domain::ids::shard_of;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub type Item = HashMap<String, AttributeValue>;

/// Attribute naming the entity type of an item ("account", "lot", ...).
pub const ENTITY: &str = "entity";

/// Attribute holding the format version an item was written in. Items written before
/// versions existed have none and count as version 1; `bonus migrate` upgrades them.
pub const SCHEMA_ATTRIBUTE: &str = "schema_version";

/// The format this code writes. 2: API key scopes split (`read_profile`, `erase`), and an
/// account's `enrolled_with` no longer grows with orders.
pub const SCHEMA_VERSION: u32 = 2;

/// An update that may create its item (counters, sets) stamps the format version too.
pub(crate) trait Stamped {
    /// `expression` (ADD and SET clauses) with `SET schema_version` added.
    fn stamped_expression(self, expression: &str) -> Self;
}

fn stamp(expression: &str) -> String {
    const SET: &str = "#schema_v = :schema_v";
    match expression.find("SET ") {
        Some(i) => format!("{}SET {SET}, {}", &expression[..i], &expression[i + 4..]),
        None => format!("SET {SET} {expression}"),
    }
}

macro_rules! impl_stamped {
    ($t:ty) => {
        impl Stamped for $t {
            fn stamped_expression(self, expression: &str) -> Self {
                self.update_expression(stamp(expression))
                    .expression_attribute_names("#schema_v", SCHEMA_ATTRIBUTE)
                    .expression_attribute_values(
                        ":schema_v",
                        AttributeValue::N(SCHEMA_VERSION.to_string()),
                    )
            }
        }
    };
}
impl_stamped!(aws_sdk_dynamodb::types::builders::UpdateBuilder);
impl_stamped!(aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder);

/// The format version of a stored item (1 when it has none).
pub fn schema_of(item: &Item) -> u32 {
    match item.get(SCHEMA_ATTRIBUTE) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(1),
        _ => 1,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("dynamodb: {0}")]
    Sdk(String),
    #[error("item mapping: {0}")]
    Mapping(String),
    #[error("request build: {0}")]
    Build(String),
    #[error("gave up after {0} attempts under contention")]
    Contention(u32),
    /// The database was throttling, failing or unreachable through all the SDK's attempts:
    /// worth trying again later (503), not a fault of ours (500).
    #[error("dynamodb unavailable: {0}")]
    Unavailable(String),
}

/// Error codes DynamoDB answers for a request that may succeed when sent again.
const TRANSIENT: [&str; 6] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

impl StoreError {
    pub fn sdk<E, R>(e: SdkError<E, R>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: Debug,
    {
        let transient = match &e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => true,
            _ => e.code().is_some_and(|c| TRANSIENT.contains(&c)),
        };
        let text = DisplayErrorContext(&e).to_string();
        if transient {
            StoreError::Unavailable(text)
        } else {
            StoreError::Sdk(text)
        }
    }
}

impl From<aws_sdk_dynamodb::error::BuildError> for StoreError {
    fn from(e: aws_sdk_dynamodb::error::BuildError) -> Self {
        StoreError::Build(e.to_string())
    }
}

/// A store failure answers `internal`, its detail in the log; giving up under contention,
/// or a database that kept throttling or failing, answers 503 `unavailable` (try again), as
/// the retry policy does.
impl From<StoreError> for bonus_domain::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Contention(_) => bonus_domain::Error::unavailable(),
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "dynamodb unavailable through every attempt");
                bonus_domain::Error::unavailable()
            }
            e => bonus_domain::error::internal(e),
        }
    }
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(e: serde_dynamo::Error) -> Self {
        StoreError::Mapping(e.to_string())
    }
}

/// Handle to the table. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub client: Client,
    pub table: String,
    /// Key of the e-mail lookup hash ([`bonus_domain::pii::email_hash`]) and of unsubscribe
    /// tokens. None (once resolved): no e-mail index.
    pub email_key: EmailKey,
    /// Jitter for retries (injected: seeded in tests and simulations).
    pub random: std::sync::Arc<dyn bonus_domain::random::Random>,
}

/// Result of a TransactWriteItems call: committed, or cancelled with the reason code of
/// each item (`ConditionalCheckFailed`, `TransactionConflict`, `None`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    Committed,
    Cancelled(Vec<String>),
}

impl TxOutcome {
    pub fn failed_condition(&self, index: usize) -> bool {
        matches!(self, TxOutcome::Cancelled(r) if r.get(index).is_some_and(|c| c == "ConditionalCheckFailed"))
    }
    pub fn conflicted(&self) -> bool {
        matches!(self, TxOutcome::Cancelled(r) if r.iter().any(|c| c == "TransactionConflict" || c == "ThrottlingError"))
    }
}

/// Points moved by the statement entries among `items`: (metric, programme, points). Every
/// ledger write passes through [`Store::transact`], so this is where issued, reversed,
/// redeemed and expired points are counted, once each, when their transaction commits.
fn entry_points(items: &[TransactWriteItem]) -> Vec<(&'static str, String, i64)> {
    use bonus_metrics::name;
    let mut moved = Vec::new();
    for item in items.iter().filter_map(|i| i.put()).map(|p| p.item()) {
        if item
            .get(ENTITY)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            != Some("entry")
        {
            continue;
        }
        let metric = match item
            .get("kind")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
        {
            Some("earn") => name::POINTS_ISSUED,
            Some("reversal" | "debt") => name::POINTS_REVERSED,
            Some("redeem") => name::POINTS_REDEEMED,
            Some("expire") => name::POINTS_EXPIRED,
            _ => continue,
        };
        let points = item
            .get("points")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
            .abs();
        let programme = item
            .get(keys::PK)
            .and_then(|v| v.as_s().ok())
            .and_then(|pk| pk.strip_prefix("MEMBER#"))
            .and_then(|rest| rest.split('#').next())
            .unwrap_or("")
            .to_string();
        moved.push((metric, programme, points));
    }
    moved
}

/// A single-item conditional write's result: true when written, false when its condition
/// refused it (for the caller an outcome, not an error).
pub fn written<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(StoreError::sdk(e)),
    }
}

/// Serialise an entity and add its keys and kind.
pub fn to_item<T: Serialize>(
    keys: (String, String),
    kind: &str,
    value: &T,
) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value)?;
    item.insert(keys::PK.into(), AttributeValue::S(keys.0));
    item.insert(keys::SK.into(), AttributeValue::S(keys.1));
    item.insert(ENTITY.into(), AttributeValue::S(kind.into()));
    item.insert(
        SCHEMA_ATTRIBUTE.into(),
        AttributeValue::N(SCHEMA_VERSION.to_string()),
    );
    Ok(item)
}

/// An item in a GSI1 partition (a sparse index: only items that carry the attributes).
pub(crate) fn with_gsi1(mut item: Item, pk: String, sk: String) -> Item {
    item.insert(keys::GSI1PK.into(), AttributeValue::S(pk));
    item.insert(keys::GSI1SK.into(), AttributeValue::S(sk));
    item
}

/// An account as stored: with its entry in the nightly index (GSI1, `DUE#{programme}#{date}#
/// {shard}`) when it has something due, so the job reads only the members due that night.
pub fn account_item(a: &bonus_domain::account::Account) -> Result<Item, StoreError> {
    let mut item = to_item(keys::account(&a.programme_id, &a.member_id), "account", a)?;
    if let Some(due) = bonus_domain::nightly::next_due(a) {
        let shard = shard_of(&a.member_id, bonus_domain::nightly::NIGHT_SHARDS);
        item.insert(
            keys::GSI1PK.into(),
            AttributeValue::S(keys::due_index(&a.programme_id, due, shard)),
        );
        item.insert(keys::GSI1SK.into(), AttributeValue::S(a.member_id.clone()));
    }
    Ok(item)
}

pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}

pub fn key_map(keys: &(String, String)) -> Item {
    HashMap::from([
        (keys::PK.to_string(), AttributeValue::S(keys.0.clone())),
        (keys::SK.to_string(), AttributeValue::S(keys.1.clone())),
    ])
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
            email_key: EmailKey::known(Some(bonus_domain::pii::LOCAL_EMAIL_KEY.into())),
            random: std::sync::Arc::new(bonus_domain::random::OsRandom),
        }
    }

    /// The tries of one optimistic cycle against this table.
    pub fn retry(&self) -> retry::Retry {
        retry::Retry::new(self.random.clone())
    }

    /// The table named by `TABLE_NAME`, with the SDK's default configuration (on Lambda: the
    /// function's role; locally: `AWS_ENDPOINT_URL` and static credentials).
    pub async fn from_env() -> Result<Self, MissingEnv> {
        Self::from_config(&aws_config::load_from_env().await)
    }

    /// As [`Store::from_env`], with an SDK configuration already loaded (a function loads
    /// it once for all its clients).
    pub fn from_config(config: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        let table = required_env("TABLE_NAME")?;
        let mut store = Store::new(Client::new(config), table);
        // Deployed: no e-mail index unless the caller sets the key (bonus-lambda reads it
        // from SSM); never the public local key on real data.
        store.email_key = EmailKey::known(None);
        Ok(store)
    }

    /// A client for a local emulator at `endpoint`, with dummy credentials.
    pub fn local(endpoint: &str, table: &str) -> Self {
        Store::new(Client::from_conf(local_config(endpoint)), table)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        keys: (String, String),
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        out.item.map(from_item).transpose()
    }

    pub async fn put<T: Serialize>(
        &self,
        keys: (String, String),
        kind: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(keys, kind, value)?))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// One TransactWriteItems. Cancellations come back as a value, not an error, so the caller
    /// can see which condition failed.
    pub async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<TxOutcome, StoreError> {
        // What the statement entries move, counted if the transaction commits.
        let moved = entry_points(&items);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => {
                for (metric, programme, points) in moved {
                    bonus_metrics::count(metric, &[("Programme", &programme)], points);
                }
                Ok(TxOutcome::Committed)
            }
            Err(e) => match e.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    let outcome = TxOutcome::Cancelled(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_string())
                            .collect(),
                    );
                    if outcome.conflicted() {
                        bonus_metrics::count(bonus_metrics::name::CONFLICTS, &[], 1);
                    }
                    Ok(outcome)
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    bonus_metrics::count(bonus_metrics::name::CONFLICTS, &[], 1);
                    Ok(TxOutcome::Cancelled(vec!["TransactionConflict".into()]))
                }
                // Throttled through all the SDK's attempts: nothing was written; the caller's
                // cycle tries again after a backoff.
                other
                    if other.code().is_some_and(|c| {
                        matches!(
                            c,
                            "ThrottlingException"
                                | "ProvisionedThroughputExceededException"
                                | "RequestLimitExceeded"
                        )
                    }) =>
                {
                    bonus_metrics::count(bonus_metrics::name::THROTTLES, &[], 1);
                    Ok(TxOutcome::Cancelled(vec!["ThrottlingError".into()]))
                }
                // Failed through all attempts, perhaps after writing (the answer lost): the
                // request answers 503, and its sender's retry finds what was written.
                other if other.code().is_some_and(|c| TRANSIENT.contains(&c)) => Err(
                    StoreError::Unavailable(DisplayErrorContext(&other).to_string()),
                ),
                other => Err(StoreError::Sdk(DisplayErrorContext(&other).to_string())),
            },
        }
    }

    /// A transaction of writes that hold no read-decide cycle (each item's condition, if any,
    /// is final): a conflict or throttling is tried again after a jittered backoff; any
    /// other outcome is returned. Contention when every try conflicted.
    pub async fn transact_retrying(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<TxOutcome, StoreError> {
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            retry::pause(pause).await;
            match self.transact(items.clone()).await? {
                o if o.conflicted() => retry.backoff(),
                o => return Ok(o),
            }
        }
        Err(StoreError::Contention(retry::MAX_ATTEMPTS))
    }

    pub fn put_item(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A Query of one GSI1 partition (the e-mail index, open holds, the nightly due index).
    pub(crate) fn gsi1_query(
        &self,
        pk: String,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::GSI1PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
    }

    /// Commit a read-modify-write: true when written; false when a condition failed (the
    /// caller re-reads and decides again), after a short backoff on a conflict.
    pub(crate) async fn try_commit(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        match self.transact(items).await? {
            TxOutcome::Committed => Ok(true),
            o if o.conflicted() => {
                retry::sleep_backoff(1).await;
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// A put that only succeeds if the item does not exist yet.
    pub fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        self.put_item(item, Some("attribute_not_exists(PK)"))
    }
}

/// SDK configuration for a local emulator: static dummy credentials, a region, the endpoint.
pub fn local_config(endpoint: &str) -> aws_sdk_dynamodb::Config {
    let creds =
        aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "bonus-local");
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .build()
}

/// A required environment variable is missing or empty: the function cannot start. Every one
/// is set by template.yaml; the message names the variable.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing environment variable {0}: it is set by template.yaml; the function cannot start without it")]
pub struct MissingEnv(pub String);

/// The runtime prints a failed start with `Debug`: the message, not the struct.
impl Debug for MissingEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// The value of a required environment variable, read once at cold start.
pub fn required_env(name: &str) -> Result<String, MissingEnv> {
    let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    value.ok_or_else(|| {
        tracing::error!(
            variable = name,
            "missing environment variable: the function cannot start"
        );
        MissingEnv(name.to_string())
    })
}

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn stamping_adds_the_version_to_either_clause() {
        assert_eq!(
            stamp("ADD claims :one"),
            "SET #schema_v = :schema_v ADD claims :one"
        );
        assert_eq!(
            stamp("ADD points :p SET first = if_not_exists(first, :a)"),
            "ADD points :p SET #schema_v = :schema_v, first = if_not_exists(first, :a)"
        );
    }

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let e = required_env("BONUS_TEST_NEVER_SET_VARIABLE").unwrap_err();
        assert_eq!(e, MissingEnv("BONUS_TEST_NEVER_SET_VARIABLE".into()));
        assert!(e
            .to_string()
            .starts_with("missing environment variable BONUS_TEST_NEVER_SET_VARIABLE:"));
        assert_eq!(
            format!("{e:?}"),
            e.to_string(),
            "a failed start prints the message"
        );
        assert_eq!(required_env("PATH").map(|p| p.is_empty()), Ok(false));
    }
}
