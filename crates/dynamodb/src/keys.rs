//! Every DynamoDB key the system uses, in one place. See docs/data-model.md.
//! Ids are validated (`bonus_domain::ids`) before they get here, so '#' can only be a separator.

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";

pub fn programme(id: &str) -> (String, String) {
    (format!("PROG#{id}"), "PROGRAMME".into())
}

pub fn partner(id: &str) -> (String, String) {
    (format!("PARTNER#{id}"), "PARTNER".into())
}

pub fn api_key(hash_hex: &str) -> (String, String) {
    (format!("APIKEY#{hash_hex}"), "APIKEY".into())
}

/// A partner's list of its API keys (by the key's hash), written with each key.
pub fn partner_key(partner_id: &str, key_hash: &str) -> (String, String) {
    (format!("KEYS#{partner_id}"), key_hash.to_string())
}

pub fn member_pk(programme_id: &str, member_id: &str) -> String {
    format!("MEMBER#{programme_id}#{member_id}")
}

pub fn account(programme_id: &str, member_id: &str) -> (String, String) {
    (member_pk(programme_id, member_id), "ACCOUNT".into())
}

pub fn profile(programme_id: &str, member_id: &str) -> (String, String) {
    (member_pk(programme_id, member_id), "PROFILE".into())
}

pub fn lot(programme_id: &str, member_id: &str, lot_id: &str) -> (String, String) {
    (member_pk(programme_id, member_id), format!("LOT#{lot_id}"))
}

pub const ENTRY_PREFIX: &str = "ENTRY#";

pub fn entry(programme_id: &str, member_id: &str, seq: u64) -> (String, String) {
    (
        member_pk(programme_id, member_id),
        format!("{ENTRY_PREFIX}{seq:012}"),
    )
}

pub fn order_event(partner_id: &str, order_id: &str, event: &str) -> (String, String) {
    (
        format!("ORDER#{partner_id}#{order_id}"),
        format!("EVENT#{event}"),
    )
}

/// The order's state (what it earned, what was refunded), next to its event records.
pub fn order_book(partner_id: &str, order_id: &str) -> (String, String) {
    (format!("ORDER#{partner_id}#{order_id}"), "STATE".into())
}

/// Outbox events are spread over shards so that no partition takes every write.
pub const OUTBOX_SHARDS: u32 = 16;

pub fn outbox(event_id: &str, at: &str) -> (String, String) {
    let shard = crate::shard_of(event_id, OUTBOX_SHARDS);
    (format!("OUTBOX#{shard:02}"), format!("{at}#{event_id}"))
}

pub const CAMPAIGN_PREFIX: &str = "CAMPAIGN#";

/// A campaign's configuration lives in its partner's partition, so that one Query loads a
/// partner with all its campaigns.
pub fn campaign(partner_id: &str, campaign_id: &str) -> (String, String) {
    (
        format!("PARTNER#{partner_id}"),
        format!("{CAMPAIGN_PREFIX}{campaign_id}"),
    )
}

/// One shard of a campaign's points budget.
pub fn budget_shard(partner_id: &str, campaign_id: &str, shard: u32) -> (String, String) {
    (
        format!("BUDGET#{partner_id}#{campaign_id}"),
        format!("SHARD#{shard:02}"),
    )
}

/// A partner's audit trail, newest last (sort key: time and a random suffix). Apart from
/// the partner's partition, which the order webhook reads whole.
pub fn change(partner_id: &str, change_id: &str) -> (String, String) {
    (format!("CHANGES#{partner_id}"), change_id.to_string())
}

/// Points a member reserved at a partner on one local day (its daily redemption limit).
pub fn redeemed_day(partner_id: &str, member_id: &str, day: &str) -> (String, String) {
    (
        format!("REDEEMED#{partner_id}#{member_id}"),
        format!("DAY#{day}"),
    )
}

/// A partner's adjustment of a member's points (crate::adjustment), by its id.
pub fn adjustment(partner_id: &str, adjustment_id: &str) -> (String, String) {
    (format!("ADJUST#{partner_id}"), adjustment_id.to_string())
}

/// A line of a partner's invoice for a month (a point pack bought), by its reference.
pub fn invoice_line(partner_id: &str, month: &str, reference: &str) -> (String, String) {
    (
        format!("INVOICE#{partner_id}#{month}"),
        format!("LINE#{reference}"),
    )
}

/// GSI1 partition of a programme's rewards in one category (sort key: the reward id).
pub fn reward_category_index(programme_id: &str, category: &str) -> String {
    format!("REWARDCAT#{programme_id}#{category}")
}

/// A reward's stock top-up done under a caller's reference.
pub fn restock(programme_id: &str, reward_id: &str, reference: &str) -> (String, String) {
    (
        format!("RESTOCK#{programme_id}#{reward_id}"),
        format!("REF#{reference}"),
    )
}

/// A campaign top-up done under a caller's reference (a retry finds it and adds nothing).
pub fn top_up(partner_id: &str, campaign_id: &str, reference: &str) -> (String, String) {
    (
        format!("BUDGET#{partner_id}#{campaign_id}"),
        format!("TOPUP#{reference}"),
    )
}

pub const BEHAVIOUR_PREFIX: &str = "BEHAVIOUR#";

pub fn behaviour_campaign(partner_id: &str, campaign_id: &str) -> (String, String) {
    (
        format!("PARTNER#{partner_id}"),
        format!("{BEHAVIOUR_PREFIX}{campaign_id}"),
    )
}

/// Lookup of a member by a partner's own customer id.
pub fn external_id(partner_id: &str, customer_id: &str) -> (String, String) {
    (format!("EXTID#{partner_id}#{customer_id}"), "MEMBER".into())
}

/// GSI1 partition of the e-mail index: the keyed hash of the address, never the address.
pub fn email_index(programme_id: &str, email_hash: &str) -> String {
    format!("EMAIL#{programme_id}#{email_hash}")
}

/// One delivery of a shop platform's webhook (deduplication of redeliveries).
pub fn delivery(partner_id: &str, platform: &str, delivery_id: &str) -> (String, String) {
    (
        format!("DELIVERY#{partner_id}#{platform}#{delivery_id}"),
        "DELIVERY".into(),
    )
}

pub fn hold(hold_id: &str) -> (String, String) {
    (format!("HOLD#{hold_id}"), "HOLD".into())
}

/// GSI1 partition of open holds by expiry (sparse: removed when the hold resolves).
pub fn open_holds_index(shard: u32) -> String {
    format!("OPENHOLDS#{shard:02}")
}

pub const REWARD_PREFIX: &str = "REWARD#";

pub fn rewards_pk(programme_id: &str) -> String {
    format!("REWARDS#{programme_id}")
}

/// A gift-shop reward, in its programme's catalogue partition.
pub fn reward(programme_id: &str, reward_id: &str) -> (String, String) {
    (
        rewards_pk(programme_id),
        format!("{REWARD_PREFIX}{reward_id}"),
    )
}

/// A gift-shop voucher code -> its claim's hold (a return desk knows the code).
pub fn voucher(programme_id: &str, code: &str) -> (String, String) {
    (format!("VOUCHER#{programme_id}#{code}"), "VOUCHER".into())
}

/// How often a member claimed a reward (per-member limits).
pub fn reward_claims(programme_id: &str, member_id: &str, reward_id: &str) -> (String, String) {
    (
        member_pk(programme_id, member_id),
        format!("CLAIMS#{reward_id}"),
    )
}

/// GSI1 partition of the nightly index: the members of a programme with something due on
/// `date` (local), in shard `shard`.
pub fn due_index(programme_id: &str, date: chrono::NaiveDate, shard: u32) -> String {
    format!("DUE#{programme_id}#{date}#{shard:02}")
}

/// The nightly job's cursor for a programme: the last night completed.
pub fn night_cursor(programme_id: &str) -> (String, String) {
    (format!("NIGHTLY#{programme_id}"), "CURSOR".into())
}

/// One night's shard done (so a re-delivered task is skipped cheaply).
pub fn night_shard_done(
    programme_id: &str,
    date: chrono::NaiveDate,
    shard: u32,
) -> (String, String) {
    (
        format!("NIGHTLY#{programme_id}"),
        format!("DONE#{date}#{shard:02}"),
    )
}

/// The list of programme ids (a string set), kept by `bonus apply`.
pub fn programme_list() -> (String, String) {
    ("PROGRAMMES".into(), "LIST".into())
}

/// The list of a programme's partner ids (a string set), kept by `bonus apply`.
pub fn partner_list(programme_id: &str) -> (String, String) {
    (format!("PARTNERS#{programme_id}"), "LIST".into())
}

/// A closed clearing month: one item per partner statement and a summary, immutable.
pub fn cleared_pk(programme_id: &str, month: &str) -> String {
    format!("CLEARED#{programme_id}#{month}")
}

/// The members of a programme, spread over shards (the monthly statements page through it).
pub const MEMBER_LIST_SHARDS: u32 = 16;

pub fn member_list_pk(programme_id: &str, shard: u32) -> String {
    format!("MEMBERS#{programme_id}#{shard:02}")
}

pub fn member_list(programme_id: &str, member_id: &str) -> (String, String) {
    let shard = crate::shard_of(member_id, MEMBER_LIST_SHARDS);
    (member_list_pk(programme_id, shard), member_id.to_string())
}

/// One shard of a partner's clearing counters for a month (`YYYY-MM`).
pub fn clearing_counter(
    programme_id: &str,
    month: &str,
    partner_id: &str,
    shard: u32,
) -> (String, String) {
    (
        format!("CLEAR#{programme_id}#{month}#{partner_id}"),
        format!("SHARD#{shard:02}"),
    )
}

/// One shard of the change of all members' outstanding points in a month.
pub fn clearing_outstanding(programme_id: &str, month: &str, shard: u32) -> (String, String) {
    (
        format!("CLEAR#{programme_id}#{month}"),
        format!("OUTSTANDING#{shard:02}"),
    )
}

/// The claim of a member message: one per event and channel.
pub fn delivery_claim(event_id: &str, channel: &str) -> (String, String) {
    (format!("NOTIFY#{event_id}"), format!("CHANNEL#{channel}"))
}

/// A member's daily digest of points earned that goes out at `slot`.
pub fn digest(
    programme_id: &str,
    member_id: &str,
    slot: chrono::DateTime<chrono::Utc>,
) -> (String, String) {
    (
        member_pk(programme_id, member_id),
        format!("DIGEST#{}", bonus_domain::clock::ts(slot)),
    )
}

/// Which digest a points-earned event went into.
pub fn digest_member(programme_id: &str, member_id: &str, event_id: &str) -> (String, String) {
    (
        member_pk(programme_id, member_id),
        format!("DIGESTED#{event_id}"),
    )
}

/// A sent message by the provider's message id (SES bounces and complaints name it).
pub fn provider_message(provider_id: &str) -> (String, String) {
    (format!("PROVIDERMSG#{provider_id}"), "DELIVERY".into())
}

pub fn delivery_log_pk(day: chrono::NaiveDate) -> String {
    format!("SENT#{day}")
}

/// Messages by day, for `bonus notifications list`.
pub fn delivery_log(
    at: chrono::DateTime<chrono::Utc>,
    event_id: &str,
    channel: &str,
) -> (String, String) {
    (
        delivery_log_pk(at.date_naive()),
        format!("{}#{event_id}#{channel}", bonus_domain::clock::ts(at)),
    )
}

/// A member-site session, in the member's partition (all of a member's sessions are one
/// Query away: "log out everywhere").
pub const SESSION_PREFIX: &str = "SESSION#";

pub fn session(programme_id: &str, member_id: &str, session_id: &str) -> (String, String) {
    (
        member_pk(programme_id, member_id),
        format!("{SESSION_PREFIX}{session_id}"),
    )
}

/// A one-time login secret, by the SHA-256 of the link's token (e-mail) or of the phone
/// number's keyed hash (SMS code).
pub fn login_secret(secret_hash: &str) -> (String, String) {
    (format!("LOGIN#{secret_hash}"), "LOGIN".into())
}

/// A throttle counter (one hour's requests for an address or a member).
pub fn throttle(kind: &str, bucket: &str) -> (String, String) {
    (format!("THROTTLE#{kind}#{bucket}"), "COUNT".into())
}

/// The phone index: the keyed hash of a number -> the members that have it.
pub fn phone_index(programme_id: &str, phone_hash: &str, member_id: &str) -> (String, String) {
    (
        format!("PHONE#{programme_id}#{phone_hash}"),
        member_id.to_string(),
    )
}

/// A pending change of a member's e-mail address or phone number, until its code is given.
pub fn contact_change(programme_id: &str, member_id: &str, channel: &str) -> (String, String) {
    (
        member_pk(programme_id, member_id),
        format!("CONTACT#{channel}"),
    )
}

/// A transfer between two members (its id is its hold's).
pub fn transfer(transfer_id: &str) -> (String, String) {
    (format!("TRANSFER#{transfer_id}"), "TRANSFER".into())
}

/// What a member sent on one local day (the daily transfer limit).
pub fn transfers_sent(
    programme_id: &str,
    member_id: &str,
    day: chrono::NaiveDate,
) -> (String, String) {
    (member_pk(programme_id, member_id), format!("SENT#{day}"))
}

/// A person's role in a company, under the company.
pub fn company_user(programme_id: &str, company_id: &str, member_id: &str) -> (String, String) {
    (
        member_pk(programme_id, company_id),
        format!("USER#{member_id}"),
    )
}

/// The same, mirrored under the person (their companies).
pub fn member_company(programme_id: &str, member_id: &str, company_id: &str) -> (String, String) {
    (
        member_pk(programme_id, member_id),
        format!("COMPANY#{company_id}"),
    )
}

/// A programme's offers, one partition (the member site lists the current ones with one
/// Query), sorted by the partner that made them.
pub fn offers_pk(programme_id: &str) -> String {
    format!("OFFERS#{programme_id}")
}

pub fn offer(programme_id: &str, partner_id: &str, offer_id: &str) -> (String, String) {
    (offers_pk(programme_id), format!("{partner_id}#{offer_id}"))
}

/// A member's marketing messages: which offers reached them, and the month's count that the
/// frequency cap is checked against, in one partition.
pub fn marketing_sent(
    programme_id: &str,
    member_id: &str,
    partner_id: &str,
    offer_id: &str,
) -> (String, String) {
    (
        format!("MKT#{programme_id}#{member_id}"),
        format!("OFFER#{partner_id}#{offer_id}"),
    )
}

pub fn marketing_month(programme_id: &str, member_id: &str, month: &str) -> (String, String) {
    (
        format!("MKT#{programme_id}#{member_id}"),
        format!("MONTH#{month}"),
    )
}

/// A partner's outgoing-webhook delivery log, newest last by time.
pub fn webhook_log(partner_id: &str, at: &str, webhook_id: &str, attempt: u32) -> (String, String) {
    (
        format!("WHLOG#{partner_id}"),
        format!("{at}#{webhook_id}#{attempt:02}"),
    )
}

/// A partner's bulk import over the partner API: its job item and one item per line's
/// outcome, in one partition (one Query sums it up).
pub fn import_pk(partner_id: &str, import_id: &str) -> String {
    format!("IMPORT#{partner_id}#{import_id}")
}
