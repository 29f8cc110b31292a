//! Offers' shared work: which members of a page of the member list an offer's segment holds
//! (the listed facts pass over most without a read; the rest have their accounts read, 100
//! per BatchGetItem), and the count before a send.

use chrono::{DateTime, Utc};

use bonus_domain::notify::Channel;
use bonus_domain::offer::{facts_of, Offer, SegmentFacts};
use bonus_domain::programme::Programme;
use bonus_dynamodb::keys::MEMBER_LIST_SHARDS;
use bonus_dynamodb::offers::ListedMember;
use bonus_dynamodb::{Store, StoreError};

/// Members read per Query page when counting.
pub const PAGE: i32 = 1_000;

/// Who of a page of the member list to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Only members the offer's channels reach (the send).
    OnItsChannels,
    /// Everyone in the segment (the preview's count).
    Anyone,
}

/// The members of `page` in the offer's segment now, with their facts. Members listed
/// before offers (no listed facts yet) are returned apart: the send looks at their profiles
/// one by one, the preview counts them apart.
pub async fn in_segment(
    store: &Store,
    programme: &Programme,
    offer: &Offer,
    page: &[ListedMember],
    reach: Reach,
    now: DateTime<Utc>,
) -> Result<(Vec<(String, SegmentFacts)>, Vec<String>), StoreError> {
    let mut unlisted = Vec::new();
    let mut maybe = std::collections::BTreeMap::new();
    for m in page {
        match &m.facts {
            None => unlisted.push(m.member_id.clone()),
            Some(f) => {
                let reached = reach == Reach::Anyone
                    || offer.channels.iter().any(|c| f.reachable.contains(c));
                if reached && offer.segment.may_hold(f) {
                    maybe.insert(m.member_id.as_str(), f);
                }
            }
        }
    }
    let ids: Vec<&str> = maybe.keys().copied().collect();
    let accounts = store.accounts_of(&programme.id, &ids).await?;
    let today = now.with_timezone(&programme.time_zone).date_naive();
    let mut out = Vec::new();
    for account in accounts {
        let Some(listed) = maybe.get(account.member_id.as_str()) else {
            continue;
        };
        let facts = facts_of(listed, &account, programme, now);
        if offer.segment.matches(&facts, today, programme.base_tier()) {
            out.push((account.member_id.clone(), facts));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((out, unlisted))
}

/// How many members an offer's segment holds now, and how many of them each of the offer's
/// channels reaches (consent and a working address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    pub members: u64,
    pub email: u64,
    pub sms: u64,
    /// Reachable on at least one of the offer's channels.
    pub reachable: u64,
    /// Listed before offers, not counted (`bonus migrate` lists them).
    pub unknown: u64,
}

pub async fn preview(
    store: &Store,
    programme: &Programme,
    offer: &Offer,
    now: DateTime<Utc>,
) -> Result<Preview, StoreError> {
    let mut out = Preview::default();
    for shard in 0..MEMBER_LIST_SHARDS {
        let mut after: Option<String> = None;
        loop {
            let (page, next) = store
                .listed_members(&programme.id, shard, after.as_deref(), PAGE)
                .await?;
            let (members, unlisted) =
                in_segment(store, programme, offer, &page, Reach::Anyone, now).await?;
            out.unknown += unlisted.len() as u64;
            for (_, f) in &members {
                out.members += 1;
                let on = |c: Channel| offer.channels.contains(&c) && f.reachable.contains(&c);
                out.email += u64::from(on(Channel::Email));
                out.sms += u64::from(on(Channel::Sms));
                out.reachable += u64::from(on(Channel::Email) || on(Channel::Sms));
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    Ok(out)
}
