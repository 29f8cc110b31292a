//! `bonus audit`: recompute every member's balances and every partner's monthly clearing
//! counters from the ledger entries themselves, and report each difference.
//!
//! Offline and thorough rather than fast: it reads every member's account, lots and
//! entries (the member list, page by page), so it grows with the ledger; the monthly job
//! never does this.
//!
//! Per member:
//! - the account's own invariants ([`bonus_domain::account::Account::check`]);
//! - the sum of the entries = the outstanding points (unexpired - debt);
//! - for each expiry date the account knows, and each later date a lot has: the lots'
//!   remaining + held = the account's bucket, per issuer too;
//! - every entry's issuers add up to its points.
//!
//! Per programme, month and partner: the counters = the movements of all entries; the
//! outstanding-change counter = the month's entries' sum.

use std::collections::{BTreeMap, BTreeSet};

use bonus_domain::clearing::{movements, PartnerCounters};
use bonus_domain::month::Month;
use bonus_dynamodb::keys::MEMBER_LIST_SHARDS;
use bonus_dynamodb::{Store, StoreError};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub programmes: usize,
    pub members: usize,
    pub entries: usize,
    pub counters: usize,
    /// One line per difference found; empty: the ledger and its aggregates agree.
    pub differences: Vec<String>,
}

/// Every member id of a programme (all member-list shards).
pub async fn member_ids(store: &Store, programme_id: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for shard in 0..MEMBER_LIST_SHARDS {
        let mut after: Option<String> = None;
        loop {
            let (page, next) = store
                .members_page(programme_id, shard, after.as_deref(), 500)
                .await?;
            out.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Audit the given programmes. `progress(done, total)` is called after each member.
pub async fn audit(
    store: &Store,
    programme_ids: &[String],
    now: DateTime<Utc>,
    mut progress: impl FnMut(u64, u64),
) -> Result<AuditReport, StoreError> {
    let mut report = AuditReport::default();
    let mut members_of = Vec::new();
    for id in programme_ids {
        members_of.push((id.clone(), member_ids(store, id).await?));
    }
    let total: u64 = members_of.iter().map(|(_, m)| m.len() as u64).sum();
    let mut done = 0u64;
    for (programme_id, members) in members_of {
        report.programmes += 1;
        let mut counters: BTreeMap<(String, String), PartnerCounters> = BTreeMap::new();
        let mut outstanding: BTreeMap<String, i64> = BTreeMap::new();
        for member_id in members {
            let diffs = &mut report.differences;
            let who = format!("{programme_id}/{member_id}");
            let account = store.get_account(&programme_id, &member_id).await?;
            let entries = store.entries(&programme_id, &member_id).await?;
            let lots = store.lots(&programme_id, &member_id).await?;
            report.members += 1;
            report.entries += entries.len();
            let Some(account) = account else {
                if !entries.is_empty() {
                    diffs.push(format!("{who}: {} entries but no account", entries.len()));
                }
                continue;
            };
            if let Err(e) = account.check() {
                diffs.push(format!("{who}: {e}"));
            }
            let sum: i64 = entries.iter().map(|e| e.points).sum();
            if sum != account.outstanding() {
                diffs.push(format!(
                    "{who}: the entries sum to {sum}, the account holds {} (unexpired - debt)",
                    account.outstanding()
                ));
            }
            for e in &entries {
                let split: i64 = e.issuers.values().sum();
                if split != e.points.abs() {
                    diffs.push(format!(
                        "{who}: entry {} moves {} points but names issuers for {split}",
                        e.seq, e.points
                    ));
                }
                *outstanding
                    .entry(Month::of(e.at, account.time_zone).to_string())
                    .or_default() += e.points;
            }
            // Expiry buckets from the lots: the dates the account knows, and any later one.
            let today = now
                .with_timezone(&account.time_zone)
                .date_naive()
                .to_string();
            let mut from_lots: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
            for l in &lots {
                let points = l.remaining + l.held;
                let date = l.expires_on.to_string();
                if points != 0 && (account.expiring.contains_key(&date) || date >= today) {
                    *from_lots
                        .entry(date)
                        .or_default()
                        .entry(l.partner_id.clone())
                        .or_default() += points;
                }
            }
            let dates: BTreeSet<&String> =
                from_lots.keys().chain(account.expiring.keys()).collect();
            for date in dates {
                let lots_split = from_lots.get(date).cloned().unwrap_or_default();
                let account_split = account
                    .expiring_by_issuer
                    .get(date)
                    .cloned()
                    .unwrap_or_default();
                if lots_split != account_split {
                    diffs.push(format!(
                        "{who}: points expiring after {date}: lots {lots_split:?}, account {account_split:?}"
                    ));
                }
            }
            for (key, c) in movements(&entries, account.time_zone) {
                add(counters.entry(key).or_default(), &c);
            }
            done += 1;
            progress(done, total);
        }
        // The counters, for every partner of the programme in every month with entries.
        let months: BTreeSet<String> = outstanding.keys().cloned().collect();
        let mut partners: BTreeSet<String> = store
            .partner_ids(&programme_id)
            .await?
            .into_iter()
            .collect();
        partners.extend(counters.keys().map(|(_, p)| p.clone()));
        for month in &months {
            for partner in &partners {
                let stored = store
                    .partner_counters(&programme_id, month, partner)
                    .await?;
                let expected = counters
                    .get(&(month.clone(), partner.clone()))
                    .cloned()
                    .unwrap_or_default();
                report.counters += 1;
                if stored != expected {
                    report.differences.push(format!(
                        "{programme_id} {month} {partner}: counters {}, the entries say {}",
                        describe(&stored),
                        describe(&expected)
                    ));
                }
            }
            let stored = store.outstanding_change(&programme_id, month).await?;
            let expected = outstanding.get(month).copied().unwrap_or(0);
            if stored != expected {
                report.differences.push(format!(
                    "{programme_id} {month}: outstanding change counter {stored}, the entries say {expected}"
                ));
            }
        }
    }
    Ok(report)
}

fn add(into: &mut PartnerCounters, c: &PartnerCounters) {
    into.add(c);
}

fn describe(c: &PartnerCounters) -> String {
    let moved = if c.transferred_out != 0 || c.transferred_in != 0 {
        format!(
            " transferred out {} in {}",
            c.transferred_out, c.transferred_in
        )
    } else {
        String::new()
    };
    let returned = if c.returned_at.is_empty() {
        String::new()
    } else {
        format!(" returned {:?}", c.returned_at)
    };
    format!(
        "issued {} reversed {} expired {} redeemed {:?}{returned}{moved}",
        c.issued, c.reversed, c.expired, c.redeemed_at
    )
}
