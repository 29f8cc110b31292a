//! `bonus migrate`: upgrade items written by earlier versions in place, so that local data
//! (and a deployed table) survive an upgrade. Idempotent: a second run finds nothing to do,
//! and a run that stops half-way is finished by the next.
//!
//! Every item carries the format it was written in ([`SCHEMA_ATTRIBUTE`]; none = 1). The
//! upgrades, by entity:
//! - account (any version): accounts from before the coalition clearing (issue 8) lack the
//!   expiry buckets split by issuer; the split is rebuilt from the member's lots.
//! - account (1 -> 2): `enrolled_with` is taken from the profile again (orders used to add
//!   the partner they were posted by, which granted it access).
//! - api_key (1 -> 2): scopes split; an `enrol` key keeps reading profiles and erasing.
//! - partner (1 -> 2): listed in its programme's partner list (unknown partner ids are
//!   refused from the list of all partners, without a read of their own); and, at any
//!   version, signing secrets stored in plain text are sealed (bonus-secrets).
//! - profile (any version): a profile with a phone number gets its entry in the phone index
//!   (the member site's SMS login finds members by number), and is marked `phone_indexed`.
//! - member_list (any version): an entry without listed facts (listed before offers) gets
//!   them from the member's profile. (Their account's last purchase and the partners they
//!   bought at start with their next purchase.)
//! - hold (any version): a gift-shop claim made before voucher codes were looked up gets
//!   its voucher item (the partner API's return desk finds claims by their code).
//! - anything else (1 -> 2): only the version is written.

use aws_sdk_dynamodb::types::AttributeValue;
use bonus_domain::account::{restore_enrolment, split_expiry_by_issuer, Account};
use bonus_domain::member::{ApiKeyRecord, Scope};
use bonus_dynamodb::keys::{PK, SK};
use bonus_dynamodb::{
    from_item, schema_of, to_item, Item, Store, StoreError, ENTITY, SCHEMA_ATTRIBUTE,
    SCHEMA_VERSION,
};

/// What a migration run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MigrateSummary {
    /// Items read.
    pub items: usize,
    /// Of those, accounts.
    pub accounts: usize,
    /// Items upgraded by this run (their content changed).
    pub upgraded: usize,
    /// Items only marked with the current version (nothing else to change).
    pub marked: usize,
    /// Items left as they are: an account whose lots do not add up to its buckets (`bonus
    /// audit` reports it), or an item that changed while being upgraded (run again).
    pub left: usize,
}

/// Roughly how many items the table holds (DescribeTable's count, refreshed by DynamoDB
/// about every six hours): the length of the progress bar, nothing more.
pub async fn approximate_items(store: &Store) -> Result<u64, StoreError> {
    let out = store
        .client
        .describe_table()
        .table_name(&store.table)
        .send()
        .await
        .map_err(StoreError::sdk)?;
    Ok(out
        .table
        .and_then(|t| t.item_count)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0))
}

/// Upgrade every item that needs it (a Scan of the table: an offline job, never on a
/// request path). `progress` is told how many items have been read so far.
pub async fn migrate(
    store: &Store,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<MigrateSummary, StoreError> {
    let sealer = bonus_secrets::Sealer::from_env()
        .await
        .map_err(|e| StoreError::Mapping(e.to_string()))?;
    migrate_with(store, &sealer, progress).await
}

/// [`migrate`] with partner secrets sealed by `sealer`.
pub async fn migrate_with(
    store: &Store,
    sealer: &bonus_secrets::Sealer,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<MigrateSummary, StoreError> {
    let mut summary = MigrateSummary::default();
    let mut start = None;
    loop {
        let page = store
            .client
            .scan()
            .table_name(&store.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        for item in page.items.unwrap_or_default() {
            summary.items += 1;
            let outcome = upgrade(store, sealer, item, &mut summary).await?;
            match outcome {
                Outcome::Current => {}
                Outcome::Upgraded => summary.upgraded += 1,
                Outcome::Marked => summary.marked += 1,
                Outcome::Left => summary.left += 1,
            }
            progress(summary.items);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(summary);
        }
    }
}

enum Outcome {
    Current,
    Upgraded,
    Marked,
    Left,
}

async fn upgrade(
    store: &Store,
    sealer: &bonus_secrets::Sealer,
    item: Item,
    summary: &mut MigrateSummary,
) -> Result<Outcome, StoreError> {
    let schema = schema_of(&item);
    let entity = match item.get(ENTITY) {
        Some(AttributeValue::S(e)) => e.clone(),
        _ => String::new(),
    };
    match entity.as_str() {
        "account" => {
            summary.accounts += 1;
            upgrade_account(store, from_item(item)?, schema).await
        }
        "api_key" if schema < 2 => upgrade_api_key(store, item).await,
        "hold" if matches!(item.get("reward"), Some(AttributeValue::M(_))) => {
            let hold: bonus_domain::hold::Hold = from_item(item.clone())?;
            if store.index_voucher(&hold).await? {
                Ok(Outcome::Upgraded)
            } else if schema < SCHEMA_VERSION {
                mark(store, &item).await
            } else {
                Ok(Outcome::Current)
            }
        }
        "member_list" if !item.contains_key(bonus_dynamodb::offers::FACTS) => {
            list_facts(store, &item).await
        }
        "profile" if !item.contains_key(bonus_dynamodb::config::PHONE_INDEXED) => {
            let profile: bonus_domain::member::MemberProfile = from_item(item.clone())?;
            if store.phone_index_key(&profile).is_some() {
                index_phone(store, &item, &profile).await
            } else if schema < SCHEMA_VERSION {
                mark(store, &item).await
            } else {
                Ok(Outcome::Current)
            }
        }
        "partner" => {
            let partner: bonus_domain::programme::Partner = from_item(item.clone())?;
            if bonus_secrets::has_unsealed(&partner) {
                // Signing secrets written in plain text: sealed (and the version set).
                let sealed = bonus_secrets::seal_partner(sealer, &partner)
                    .await
                    .map_err(|e| StoreError::Mapping(e.to_string()))?;
                store.put_partner(&sealed).await?;
                return Ok(Outcome::Upgraded);
            }
            if schema < 2 {
                // Unknown partner ids are refused from the list of all partners: every
                // partner must be in its programme's list.
                store.list_partner(&partner).await?;
                return mark(store, &item).await;
            }
            Ok(Outcome::Current)
        }
        _ if schema < SCHEMA_VERSION => mark(store, &item).await,
        _ => Ok(Outcome::Current),
    }
}

/// The listed facts of a member listed before offers, from their profile.
async fn list_facts(store: &Store, item: &Item) -> Result<Outcome, StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    };
    // `MEMBERS#{programme}#{shard}`
    let pk = text(PK);
    let programme_id = pk
        .strip_prefix("MEMBERS#")
        .and_then(|rest| rest.rsplit_once('#'))
        .map(|(p, _)| p.to_string())
        .unwrap_or_default();
    let Some(profile) = store.get_profile(&programme_id, &text(SK)).await? else {
        return Ok(Outcome::Left);
    };
    store.put_member_facts(&profile).await?;
    Ok(Outcome::Upgraded)
}

/// Put a profile's phone index entry and mark the profile, in one transaction, on the
/// condition that its number did not change meanwhile.
async fn index_phone(
    store: &Store,
    item: &Item,
    profile: &bonus_domain::member::MemberProfile,
) -> Result<Outcome, StoreError> {
    let Some(index) = store.phone_index_item(profile)? else {
        return Ok(Outcome::Current);
    };
    let mark = aws_sdk_dynamodb::types::Update::builder()
        .table_name(&store.table)
        .set_key(Some(
            [PK, SK]
                .iter()
                .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect(),
        ))
        .update_expression("SET #flag = :t, #schema = :v")
        .condition_expression("attribute_exists(#pk) AND phone = :phone")
        .expression_attribute_names("#flag", bonus_dynamodb::config::PHONE_INDEXED)
        .expression_attribute_names("#schema", SCHEMA_ATTRIBUTE)
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":t", AttributeValue::Bool(true))
        .expression_attribute_values(":v", AttributeValue::N(SCHEMA_VERSION.to_string()))
        .expression_attribute_values(
            ":phone",
            AttributeValue::S(profile.phone.clone().unwrap_or_default()),
        )
        .build()?;
    let items = vec![
        store.put_item(index, None)?,
        aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(mark)
            .build(),
    ];
    Ok(match store.transact_retrying(items).await? {
        bonus_dynamodb::TxOutcome::Committed => Outcome::Upgraded,
        _ => Outcome::Left,
    })
}

async fn upgrade_account(
    store: &Store,
    account: Account,
    schema: u32,
) -> Result<Outcome, StoreError> {
    let mut next = account.clone();
    if !next.expiring.is_empty() && next.check().is_err() {
        let lots = store.lots(&next.programme_id, &next.member_id).await?;
        match split_expiry_by_issuer(&next, &lots) {
            Ok(Some(split)) => next = split,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(member_id = %next.member_id, error = %e, "account not upgraded");
                return Ok(Outcome::Left);
            }
        }
    }
    if schema < 2 {
        if let Some(profile) = store
            .get_profile(&next.programme_id, &next.member_id)
            .await?
        {
            if let Some(restored) = restore_enrolment(&next, &profile.enrolled_with) {
                next = restored;
            }
        }
    }
    if next == account && schema >= SCHEMA_VERSION {
        return Ok(Outcome::Current);
    }
    if next.version == account.version {
        // Unchanged but for its format version: written again as it is.
        next.version += 1;
    }
    Ok(if store.save_account(&next, account.version).await? {
        Outcome::Upgraded
    } else {
        Outcome::Left
    })
}

/// Written only if nobody wrote the key since it was read (`bonus apply` writes the current
/// format, which then wins).
async fn upgrade_api_key(store: &Store, item: Item) -> Result<Outcome, StoreError> {
    let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
        (item.get(PK).cloned(), item.get(SK).cloned())
    else {
        return Ok(Outcome::Left);
    };
    let mut key: ApiKeyRecord = from_item(item)?;
    key.scopes = Scope::upgrade_legacy(&key.scopes);
    let written = store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(to_item((pk, sk), "api_key", &key)?))
        .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#schema)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#schema", SCHEMA_ATTRIBUTE)
        .send()
        .await;
    Ok(if bonus_dynamodb::written(written)? {
        Outcome::Upgraded
    } else {
        Outcome::Left
    })
}

/// Nothing to change but the version: an update of that one attribute, so a concurrent
/// writer's change is never overwritten.
async fn mark(store: &Store, item: &Item) -> Result<Outcome, StoreError> {
    let key: Item = [PK, SK]
        .iter()
        .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let written = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(key))
        .update_expression("SET #schema = :v")
        .condition_expression(
            "attribute_exists(#pk) AND (attribute_not_exists(#schema) OR #schema < :v)",
        )
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#schema", SCHEMA_ATTRIBUTE)
        .expression_attribute_values(":v", AttributeValue::N(SCHEMA_VERSION.to_string()))
        .send()
        .await;
    Ok(if bonus_dynamodb::written(written)? {
        Outcome::Marked
    } else {
        Outcome::Current
    })
}
