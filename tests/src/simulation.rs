//! A seeded model-based simulation of the ledger (issue 17).
//!
//! A seed makes a list of operations ([`generate`]). [`run`] drives them through the real
//! handlers (signed webhooks, the member API, the nightly job over SQS) against the embedded
//! DynamoDB with a manual clock, and through [`Model`]: the rules written again as plainly
//! as possible (a list of lots per member, nothing clever), sharing no code with the domain
//! crate's planning. After every step the touched member's balance, pending releases, expiry
//! buckets and statement must agree; at the end, the conservation identity and `bonus audit`.
//!
//! A failure names its seed and the step; [`shrink`] cuts the list down to the fewest
//! operations that still fail, and everything (ids, time, the contexts' randomness) comes
//! from the seed, so the shrunk list replays step by step.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use http::StatusCode;
use serde_json::{json, Value};

use crate::{TestEnv, CONFIG};

/// Members of the simulated programme (few, so that their histories interleave).
pub const MEMBERS: usize = 4;

/// One order line as generated: SKU, quantity, unit price in cents, product group.
#[derive(Clone, PartialEq, Eq)]
pub struct Line {
    pub quantity: i64,
    pub unit_minor: i64,
    /// In the `cocktails` group (coefficient 10 in [`CONFIG`]).
    pub cocktails: bool,
}

/// One simulated operation. Orders are named by their place among the orders generated so
/// far; an operation on an order that does not exist (after shrinking) is skipped.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// A new paid order of member `member`, delivered `copies` times at once (a shop that
    /// retries before the first answer came: the copies race each other).
    Order {
        member: usize,
        lines: Vec<Line>,
        copies: u8,
    },
    /// The same delivery of an earlier order again.
    Redeliver { order: usize },
    /// A refund of `quantity` units of one line (cut to what is left of it).
    Refund {
        order: usize,
        line: usize,
        quantity: i64,
    },
    /// The whole order cancelled.
    Cancel { order: usize },
    /// Time moves on by `days` (and some hours); the nightly job runs for the nights passed.
    Advance { days: i64 },
    /// A checkout hold of `points` on the member's available points (15 minutes).
    Hold { member: usize, points: i64 },
    /// Capture an earlier hold: all of it (`part` 0), half (1), one point (2) or one point
    /// more than it holds (3, refused).
    Capture { hold: usize, part: u8 },
    /// Void an earlier hold.
    Void { hold: usize },
    /// A behaviour event (40 points, at most 3 per member); `again`: the member's last
    /// event delivered once more.
    Event { member: usize, again: bool },
    /// A gift-shop claim of reward `reward` ([`REWARDS`]).
    Claim { member: usize, reward: usize },
    /// The partner takes a claim back at its return desk: the claim `back` places before
    /// the latest one that succeeded (sent twice now and then).
    ReturnClaim { back: usize, twice: bool },
    /// A refund of one unit of the first line (or, `cancel`, a cancellation) delivered
    /// before its order, then the order.
    RefundFirst {
        member: usize,
        lines: Vec<Line>,
        cancel: bool,
    },
    /// The member's personal data erased (the ledger stays).
    Erase { member: usize },
    /// Orders of different members delivered at the same moment: they race each other on
    /// the items they share (under DynamoDB's conflict rule, [`crate::ConflictRule`]).
    Burst { orders: Vec<(usize, Vec<Line>)> },
    /// Member `from` sends `points` to member `to` (a 2% fee on top; 50 is under the
    /// minimum, and sending to oneself is refused).
    Transfer { from: usize, to: usize, points: i64 },
    /// Buyer `buyer` (0 or 1) orders for the company [`COMPANY`]: 80/20, the company's tier.
    CompanyOrder { buyer: usize, lines: Vec<Line> },
    /// Customer service adjusts `points` (above 0 a goodwill credit, below a debit for
    /// `fraud` (may leave a debt) or a `correction` (refused beyond what there is)); over
    /// [`ADJUST_THRESHOLD`] it is approved by a second person.
    Adjust {
        member: usize,
        points: i64,
        fraud: bool,
    },
}

/// The programme's approval threshold for adjustments in the simulation (the default).
const ADJUST_THRESHOLD: i64 = 10_000;

/// The company (model member index; id `S-4`): members 0 and 1 are its buyers (without it
/// as their default company, so their own orders stay theirs). The programme gives the
/// employee [`EMPLOYEE_PERCENT`] of each company order's line.
pub const COMPANY: usize = MEMBERS;
const EMPLOYEE_PERCENT: i64 = 20;

/// The programme's transfer settings in the simulation: (min, max, daily limit, fee %).
const TRANSFERS: (i64, i64, i64, i64) = (100, 5_000, 6_000, 2);

/// The gift shop: (reward id, points, stock, per-member limit).
pub const REWARDS: [(&str, i64, i64, Option<i64>); 2] =
    [("mug", 300, 6, None), ("bike", 1_200, 3, Some(1))];

/// The order campaign: (SKU, points per unit, budget). A small budget: it runs out, and
/// refunds give some back.
const CAMPAIGN: (&str, i64, i64) = ("SKU-995", 25, 600);

/// Gold's threshold: rolling 12-month purchase volume in cents (local calendar months, this
/// one and the 11 before). Gold earns twice the base points. Near what the generated orders
/// add up to, so that members go up and come down again.
const GOLD: i64 = 500_000;

/// The behaviour campaign's points and per-member cap.
const EVENT_POINTS: i64 = 40;
const EVENT_CAP: usize = 3;
/// The behaviour campaign's budget: 12 events of 40, then 20 left that pays none.
const EVENT_BUDGET: i64 = 500;

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Order {
                member,
                lines,
                copies,
            } => {
                write!(f, "Order(M{member} x{copies}:")?;
                for l in lines {
                    let group = if l.cocktails { "c" } else { "" };
                    write!(f, " {}x{}{group}", l.quantity, l.unit_minor)?;
                }
                write!(f, ")")
            }
            Op::Redeliver { order } => write!(f, "Redeliver(#{order})"),
            Op::Refund {
                order,
                line,
                quantity,
            } => write!(f, "Refund(#{order} line {line} x{quantity})"),
            Op::Cancel { order } => write!(f, "Cancel(#{order})"),
            Op::Advance { days } => write!(f, "Advance({days}d)"),
            Op::Hold { member, points } => write!(f, "Hold(M{member}: {points})"),
            Op::Capture { hold, part } => write!(f, "Capture(hold #{hold}, part {part})"),
            Op::Void { hold } => write!(f, "Void(hold #{hold})"),
            Op::Event { member, again } => {
                write!(f, "Event(M{member}{})", if *again { " again" } else { "" })
            }
            Op::Claim { member, reward } => {
                write!(f, "Claim(M{member}: {})", REWARDS[*reward % 2].0)
            }
            Op::ReturnClaim { back, twice } => {
                write!(
                    f,
                    "ReturnClaim(latest - {back}{})",
                    if *twice { ", twice" } else { "" }
                )
            }
            Op::RefundFirst {
                member,
                lines,
                cancel,
            } => {
                let what = if *cancel { "cancel" } else { "refund" };
                write!(f, "RefundFirst(M{member} {what}:")?;
                for l in lines {
                    write!(f, " {}x{}", l.quantity, l.unit_minor)?;
                }
                write!(f, ")")
            }
            Op::Erase { member } => write!(f, "Erase(M{member})"),
            Op::Transfer { from, to, points } => write!(f, "Transfer(M{from} -> M{to}: {points})"),
            Op::Adjust {
                member,
                points,
                fraud,
            } => write!(
                f,
                "Adjust(M{member}: {points:+}{})",
                if *fraud { " fraud" } else { "" }
            ),
            Op::CompanyOrder { buyer, lines } => {
                write!(f, "CompanyOrder(M{buyer} for the company:")?;
                for l in lines {
                    write!(f, " {}x{}", l.quantity, l.unit_minor)?;
                }
                write!(f, ")")
            }
            Op::Burst { orders } => {
                write!(f, "Burst(")?;
                for (member, lines) in orders {
                    write!(f, " M{member}:")?;
                    for l in lines {
                        write!(f, " {}x{}", l.quantity, l.unit_minor)?;
                    }
                }
                write!(f, ")")
            }
        }
    }
}

/// SplitMix64: small, seedable, and the same on every platform.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn lines(rng: &mut Rng) -> Vec<Line> {
    (0..1 + rng.below(4))
        .map(|_| Line {
            quantity: 1 + rng.below(4) as i64,
            unit_minor: [5, 60, 199, 995, 2_500, 4_995][rng.below(6) as usize],
            cocktails: rng.below(5) == 0,
        })
        .collect()
}

/// The operations of a seed.
pub fn generate(seed: u64, count: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let (mut orders, mut holds, mut claims) = (0usize, 0usize, 0usize);
    let mut ops = Vec::with_capacity(count);
    while ops.len() < count {
        let member = rng.below(MEMBERS as u64) as usize;
        let pick = rng.below(100);
        let op = match pick {
            27..=29 => {
                // 2 to 4 different members, from `member` on.
                let n = 2 + rng.below(MEMBERS as u64 - 1) as usize;
                // Without the campaign's SKU: racing orders split a short budget in the order
                // they commit, which no sequential model can know (tests/tests/campaigns.rs
                // proves that budget is never overspent under concurrent orders).
                let burst: Vec<(usize, Vec<Line>)> = (0..n)
                    .map(|i| {
                        let mut lines = lines(&mut rng);
                        for l in lines.iter_mut().filter(|l| l.unit_minor == 995) {
                            l.unit_minor = 999;
                        }
                        ((member + i) % MEMBERS, lines)
                    })
                    .collect();
                orders += burst.len();
                Op::Burst { orders: burst }
            }
            0..=26 => {
                orders += 1;
                Op::Order {
                    member,
                    lines: lines(&mut rng),
                    copies: if rng.below(5) == 0 { 3 } else { 1 },
                }
            }
            30..=32 => {
                orders += 1;
                Op::RefundFirst {
                    member,
                    lines: lines(&mut rng),
                    cancel: rng.below(3) == 0,
                }
            }
            33..=37 => Op::Event {
                member,
                again: rng.below(4) == 0,
            },
            38..=40 => {
                claims += 1;
                Op::Claim {
                    member,
                    reward: rng.below(2) as usize,
                }
            }
            94 if claims > 0 => Op::ReturnClaim {
                back: rng.below(3) as usize,
                twice: rng.below(4) == 0,
            },
            41 => Op::Erase { member },
            90..=91 => {
                orders += 1;
                Op::CompanyOrder {
                    buyer: member % 2,
                    lines: lines(&mut rng),
                }
            }
            92..=93 => Op::Adjust {
                member: if rng.below(5) == 0 { COMPANY } else { member },
                points: [500, 3_000, 15_000, -200, -2_000, -6_000, -25_000][rng.below(7) as usize],
                fraud: rng.below(3) == 0,
            },
            87..=89 => Op::Transfer {
                from: member,
                // Now and then to oneself (refused).
                to: (member + rng.below(MEMBERS as u64) as usize) % MEMBERS,
                points: [50, 300, 1_000, 2_500, 5_000][rng.below(5) as usize],
            },
            42..=49 => {
                holds += 1;
                Op::Hold {
                    member,
                    points: [50, 200, 500, 1_000, 3_000][rng.below(5) as usize],
                }
            }
            50..=55 if holds > 0 => Op::Capture {
                hold: holds - 1 - (rng.below(3) as usize).min(holds - 1),
                part: rng.below(4) as u8,
            },
            56..=58 if holds > 0 => Op::Void {
                hold: holds - 1 - (rng.below(3) as usize).min(holds - 1),
            },
            _ if orders == 0 => Op::Advance { days: 1 },
            59..=64 => Op::Redeliver {
                order: rng.below(orders as u64) as usize,
            },
            65..=67 => Op::Cancel {
                order: rng.below(orders as u64) as usize,
            },
            // Also where a capture or void had no hold yet.
            50..=58 | 68..=86 => Op::Refund {
                order: rng.below(orders as u64) as usize,
                line: rng.below(4) as usize,
                quantity: 1 + rng.below(3) as i64,
            },
            // About 4.5 days per step of time: 2,000 operations span about three years, so
            // lots expire (after 12 months) while their orders are still refunded.
            _ => Op::Advance {
                days: [0, 0, 0, 1, 1, 1, 2, 3, 7, 30][rng.below(10) as usize],
            },
        };
        ops.push(op);
    }
    ops
}

/// The configuration of a simulation: [`CONFIG`] with two tiers (Gold at [`GOLD`], [`MEMBERS`] more members (enrolled by the shop, with an e-mail address), the gift
/// shop's [`REWARDS`] and a behaviour campaign.
pub fn config() -> String {
    // A coalition, so that its months close in clearing (one partner: spending rules as in
    // a closed programme).
    assert!(
        CONFIG.find("    kind: closed\n") < CONFIG.find("  - id: other\n"),
        "CONFIG changed: velo is not the first programme"
    );
    let mut config = CONFIG.replacen("    kind: closed\n", "    kind: coalition\n", 1);
    config = config.replace(
        "    product_groups: {cocktails: 10}\n",
        &format!("    product_groups: {{cocktails: 10}}\n    tiers:\n      - {{name: Member, threshold: 0, multiplier: 1}}\n      - {{name: Gold, threshold: {}, multiplier: 2}}\n", GOLD / 100),
    );
    assert!(
        config.contains("name: Member"),
        "CONFIG changed: the simulation's tier is not set"
    );
    // The shop's key may place holds and erase.
    let key = format!("        key: {}\n", crate::API_KEY);
    assert!(
        config.contains(&key),
        "CONFIG changed: the shop's key is not found"
    );
    config = config.replacen(
        &key,
        &format!(
            "{key}        scopes: [read_balance, read_profile, hold, enrol, erase, transfer, manage]\n"
        ),
        1,
    );
    let (min, max, daily, fee) = TRANSFERS;
    config = config.replacen(
        "    tiers:\n",
        &format!("    transfers: {{enabled: true, min_points: {min}, max_points: {max}, daily_limit: {daily}, fee_percent: \"{fee}\"}}\n    company_rewards: both\n    company_employee_percent: {EMPLOYEE_PERCENT}\n    tiers:\n"),
        1,
    );
    for i in 0..MEMBERS {
        config.push_str(&format!(
            "  - {{id: S-{i}, programme: velo, partner: shop, email: s{i}@example.com}}\n"
        ));
    }
    config.push_str(&format!(
        "companies:\n  - {{id: {}, programme: velo, name: Company, partner: shop, users: [{{member: S-0, role: buyer, default: false}}, {{member: S-1, role: buyer, default: false}}]}}\n",
        member_id(COMPANY)
    ));
    config.push_str("rewards:\n");
    for (id, points, stock, limit) in REWARDS {
        let limit = limit
            .map(|l| format!(", per_member_limit: {l}"))
            .unwrap_or_default();
        config.push_str(&format!(
            "  - {{id: {id}, programme: velo, name: {id}, points: {points}, stock: {stock}{limit}}}\n"
        ));
    }
    let (sku, per_unit, budget) = CAMPAIGN;
    config.push_str(&format!(
        "campaigns:\n  - {{id: promo, partner: shop, name: Promo, skus: [{sku}], starts_on: 2026-01-01, ends_on: 2099-12-31, rule: {{kind: fixed_per_unit, points: {per_unit}}}, budget: {budget}, budget_shards: 1}}\n"
    ));
    config.push_str(&format!(
        "behaviour_campaigns:\n  - {{id: reviews, partner: shop, name: Reviews, event_type: review.written, points: {EVENT_POINTS}, per_member_cap: {EVENT_CAP}, budget: {EVENT_BUDGET}, starts_on: 2026-01-01, ends_on: 2099-12-31}}\n"
    ));
    config
}

// ---------------------------------------------------------------------------------------
// The reference model. Written from the rules in the README and docs, not from the domain
// crate: a member is a list of lots and a debt; every figure is recomputed from them.

#[derive(Debug, Clone)]
struct ModelLot {
    order_id: String,
    remaining: i64,
    /// What the nightly job expired of it.
    expired: i64,
    /// Reserved by open holds (not in `remaining`).
    held: i64,
    available_at: DateTime<Utc>,
    /// Last valid local day.
    expires_on: NaiveDate,
}

impl ModelLot {
    /// Expired: its last valid day (programme time) is over.
    fn expired(&self, now: DateTime<Utc>) -> bool {
        local_day(now) > self.expires_on
    }
}

#[derive(Debug, Clone, Default)]
struct ModelMember {
    lots: Vec<ModelLot>,
    debt: i64,
    /// (kind, points) of every statement entry, in order.
    statement: Vec<(String, i64)>,
    /// Behaviour events paid, and the last event delivered with its answer.
    events: usize,
    last_event: Option<(String, Value)>,
    /// Gift-shop claims per reward.
    claims: [i64; 2],
    erased: bool,
    /// Gold (else Member), and the purchase volume per local month ([`month_of`]).
    gold: bool,
    volume: BTreeMap<i64, i64>,
    /// Points sent per local day (the daily transfer limit).
    sent: BTreeMap<NaiveDate, i64>,
}

#[derive(Debug, Clone)]
struct ModelOrder {
    order_id: String,
    member: usize,
    body: String,
    lines: Vec<ModelLine>,
    cancelled: bool,
    answer: Value,
    refunds: usize,
    /// When it was paid: the month its volume counts in.
    at: DateTime<Utc>,
    /// A company order's buyer, who got a share.
    employee: Option<usize>,
}

impl ModelOrder {
    /// An order as booked, nothing refunded yet.
    fn new(
        order_id: String,
        member: usize,
        body: String,
        lines: Vec<ModelLine>,
        answer: Value,
    ) -> Self {
        let at = first_at(&body);
        ModelOrder {
            order_id,
            member,
            body,
            lines,
            cancelled: false,
            answer,
            refunds: 0,
            at,
            employee: None,
        }
    }
}

/// One order line: what it earned (of which the campaign paid `campaign`) and how much of
/// it has been refunded.
#[derive(Debug, Clone)]
struct ModelLine {
    quantity: i64,
    points: i64,
    campaign: i64,
    /// Its purchase volume (cents).
    volume: i64,
    refunded: i64,
    reversed: i64,
    given_back: i64,
    volume_back: i64,
    /// Of `points`, the employee's (a company order), and how much of it came back.
    employee: i64,
    employee_back: i64,
}

/// What a refund of a line takes back: points, campaign points for its budget, volume.
#[derive(Debug, Clone, Copy, Default)]
struct LineRefund {
    points: i64,
    campaign: i64,
    volume: i64,
    employee: i64,
}

impl ModelLine {
    /// Refund `quantity` more units (cut to what is left). The points taken back, the
    /// campaign points its budget gets back and the volume are each the refunded share,
    /// rounded down, counted from the start; all of it once every unit is back.
    fn refund(&mut self, quantity: i64) -> LineRefund {
        self.refunded += quantity.min(self.quantity - self.refunded);
        let share = |total: i64| {
            if self.refunded >= self.quantity {
                total
            } else {
                total * self.refunded / self.quantity
            }
        };
        let (reversed, given_back, volume_back, employee_back) = (
            share(self.points),
            share(self.campaign),
            share(self.volume),
            share(self.employee),
        );
        let this = LineRefund {
            points: reversed - self.reversed,
            campaign: given_back - self.given_back,
            volume: volume_back - self.volume_back,
            employee: employee_back - self.employee_back,
        };
        (
            self.reversed,
            self.given_back,
            self.volume_back,
            self.employee_back,
        ) = (reversed, given_back, volume_back, employee_back);
        this
    }
    fn left(&self) -> i64 {
        self.quantity - self.refunded
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldState {
    /// Never placed (the member's points did not allow it).
    Refused,
    Open,
    Captured,
    Voided,
    Expired,
}

#[derive(Debug, Clone)]
struct ModelHold {
    hold_id: String,
    member: usize,
    points: i64,
    /// (order of the lot, points reserved in it), oldest expiry first.
    lots: Vec<(String, i64)>,
    expires_at: DateTime<Utc>,
    state: HoldState,
}

#[derive(Debug, Default)]
pub struct Model {
    members: Vec<ModelMember>,
    orders: Vec<ModelOrder>,
    holds: Vec<ModelHold>,
    /// Gift-shop claims that succeeded, in order.
    claims: Vec<ModelClaim>,
    /// Each local month's clearing figures of the shop, from the statements' entries
    /// ([`Model::attribute`]), and how many entries of each member are counted so far.
    months: BTreeMap<String, MonthFigures>,
    counted: Vec<usize>,
    /// Gift-shop stock left per reward.
    stock: [i64; 2],
    /// What the campaign's budget has left ([`CAMPAIGN`]).
    budget_left: i64,
    /// What the behaviour campaign's budget has left ([`EVENT_BUDGET`]).
    event_budget_left: i64,
    /// Campaign points paid, and lines the budget could not pay in full.
    campaign_paid: i64,
    campaign_short: usize,
    /// Members who went up to Gold, and came down.
    tier_ups: usize,
    tier_downs: usize,
    /// Behaviour events sent (their references).
    events: usize,
    /// A rule broken on purpose, to show that the comparison fails.
    broken: Option<BrokenRule>,
}

/// One month of the shop's clearing statement as the model sees it: points issued, taken
/// back, spent net of returned claims, and expired (transfer fees included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MonthFigures {
    issued: i64,
    reversed: i64,
    redeemed: i64,
    expired: i64,
}

/// A gift-shop claim that succeeded: the lots it took, its hold (found by its reference
/// once made), and what its return gave back (points to lots, points expired).
#[derive(Debug, Clone)]
struct ModelClaim {
    member: usize,
    reward: usize,
    lots: Vec<(String, i64)>,
    reference: String,
    returned: Option<(i64, i64)>,
}

/// Rules the model can break on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenRule {
    /// Round an order's points down once for the whole order, not once per line.
    RoundPerOrder,
}

fn local_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Amsterdam).date_naive()
}

/// A local calendar month as a number (months since year 0).
fn month_of(day: NaiveDate) -> i64 {
    i64::from(day.year()) * 12 + i64::from(day.month0())
}

/// Points of a line: 1 per EUR of its net amount, times its group's coefficient and the
/// tier's multiplier, rounded down once per line.
fn line_points(l: &Line, multiplier: i64) -> i64 {
    let coefficient = if l.cocktails { 10 } else { 1 };
    l.quantity * l.unit_minor * coefficient * multiplier / 100
}

impl Model {
    fn new(broken: Option<BrokenRule>) -> Self {
        Model {
            members: vec![ModelMember::default(); MEMBERS + 1],
            orders: Vec::new(),
            holds: Vec::new(),
            claims: Vec::new(),
            months: BTreeMap::new(),
            counted: Vec::new(),
            stock: REWARDS.map(|r| r.2),
            budget_left: CAMPAIGN.2,
            event_budget_left: EVENT_BUDGET,
            campaign_paid: 0,
            campaign_short: 0,
            tier_ups: 0,
            tier_downs: 0,
            events: 0,
            broken,
        }
    }

    /// An order earns the sum of its lines' points in one lot. A line of the campaign's SKU
    /// earns its bonus on top, cut to what the budget has left (lines in order).
    fn order(
        &mut self,
        member: usize,
        order_id: &str,
        lines: &[Line],
        at: DateTime<Utc>,
    ) -> (i64, Vec<ModelLine>) {
        let (sku, per_unit, _) = CAMPAIGN;
        // Up to Gold when this order lifts the rolling volume over the threshold; it earns at
        // Gold itself.
        let volume: i64 = lines.iter().map(|l| l.quantity * l.unit_minor).sum();
        let month = month_of(local_day(at));
        if !self.members[member].gold && self.rolling(member, month) + volume >= GOLD {
            self.members[member].gold = true;
            self.tier_ups += 1;
        }
        let multiplier = if self.members[member].gold { 2 } else { 1 };
        let mut earned: Vec<ModelLine> = lines
            .iter()
            .map(|l| {
                let full = if format!("SKU-{}", l.unit_minor) == sku {
                    per_unit * l.quantity
                } else {
                    0
                };
                let campaign = full.min(self.budget_left);
                self.budget_left -= campaign;
                self.campaign_paid += campaign;
                self.campaign_short += usize::from(campaign < full);
                ModelLine {
                    quantity: l.quantity,
                    points: line_points(l, multiplier) + campaign,
                    campaign,
                    volume: l.quantity * l.unit_minor,
                    refunded: 0,
                    reversed: 0,
                    given_back: 0,
                    volume_back: 0,
                    employee: 0,
                    employee_back: 0,
                }
            })
            .collect();
        if self.broken == Some(BrokenRule::RoundPerOrder) {
            let once: i64 = lines
                .iter()
                .map(|l| l.quantity * l.unit_minor * if l.cocktails { 10 } else { 1 })
                .sum::<i64>()
                * multiplier
                / 100;
            let per_line: i64 = lines.iter().map(|l| line_points(l, multiplier)).sum();
            earned[0].points += once - per_line;
        }
        *self.members[member].volume.entry(month).or_default() += volume;
        let points = earned.iter().map(|l| l.points).sum();
        (self.earn(member, order_id, points, at), earned)
    }

    /// A buyer's order for the company: it earns (tier, campaign, volume) as the company's
    /// order; each line gives the employee [`EMPLOYEE_PERCENT`] of its points, rounded down,
    /// and the company the rest. Returns (all points, the employee's, the lines).
    fn company_order(
        &mut self,
        buyer: usize,
        order_id: &str,
        lines: &[Line],
        at: DateTime<Utc>,
    ) -> (i64, i64, Vec<ModelLine>) {
        // As the company's own order, then the employee's share moved over.
        let statement_len = self.members[COMPANY].statement.len();
        let lots_len = self.members[COMPANY].lots.len();
        let debt_before = self.members[COMPANY].debt;
        let (points, mut earned) = self.order(COMPANY, order_id, lines, at);
        // Undo the company's single lot: it earns only its share.
        self.members[COMPANY].statement.truncate(statement_len);
        self.members[COMPANY].lots.truncate(lots_len);
        self.members[COMPANY].debt = debt_before;
        for l in &mut earned {
            l.employee = l.points * EMPLOYEE_PERCENT / 100;
        }
        let employee: i64 = earned.iter().map(|l| l.employee).sum();
        self.earn(COMPANY, order_id, points - employee, at);
        self.earn(buyer, order_id, employee, at);
        (points, employee, earned)
    }

    /// Purchase volume of the 12 local months up to and including `month`.
    fn rolling(&self, member: usize, month: i64) -> i64 {
        self.members[member]
            .volume
            .range(month - 11..=month)
            .map(|(_, v)| *v)
            .sum()
    }

    /// A refund's volume leaves the order's month, if that month still counts now.
    fn remove_volume(
        &mut self,
        member: usize,
        order_at: DateTime<Utc>,
        volume: i64,
        now: DateTime<Utc>,
    ) {
        let month = month_of(local_day(order_at));
        if month >= month_of(local_day(now)) - 11 {
            *self.members[member].volume.entry(month).or_default() -= volume;
        }
    }

    /// A refund of one order's lines: the points come back (see [`Model::reverse`]), the
    /// campaign's budget gets its share back, and the volume leaves the order's month.
    fn refunded(
        &mut self,
        member: usize,
        order_at: DateTime<Utc>,
        parts: &[LineRefund],
        now: DateTime<Utc>,
    ) -> i64 {
        let back = parts.iter().fold(LineRefund::default(), |a, p| LineRefund {
            points: a.points + p.points,
            campaign: a.campaign + p.campaign,
            volume: a.volume + p.volume,
            employee: a.employee + p.employee,
        });
        self.budget_left += back.campaign;
        self.remove_volume(member, order_at, back.volume, now);
        back.points
    }

    /// Points earned in one lot (named `source`): pending for 14 days, valid 12 months (to
    /// the same day, local time). Debt is paid off first out of the new lot.
    fn earn(&mut self, member: usize, source: &str, points: i64, at: DateTime<Utc>) -> i64 {
        let m = &mut self.members[member];
        if points > 0 {
            let repaid = m.debt.min(points);
            m.debt -= repaid;
            m.lots.push(ModelLot {
                order_id: source.to_string(),
                remaining: points - repaid,
                expired: 0,
                held: 0,
                available_at: at + Duration::days(14),
                expires_on: local_day(at)
                    .checked_add_months(Months::new(12))
                    .unwrap_or(NaiveDate::MAX),
            });
            m.statement.push(("earn".into(), points));
        }
        points
    }

    /// A reversal takes back from the order's own lot first, then from other available
    /// lots (soonest expiry first), and what it cannot find becomes debt. Points of the
    /// order that expired unspent are not charged again. Returns (from own, from others,
    /// to debt, expired).
    fn reverse(
        &mut self,
        member: usize,
        order_id: &str,
        points: i64,
        now: DateTime<Utc>,
    ) -> (i64, i64, i64, i64) {
        if points <= 0 {
            return (0, 0, 0, 0);
        }
        let m = &mut self.members[member];
        let mut left = points;
        let (mut from_own, mut expired) = (0, 0);
        if let Some(own) = m.lots.iter_mut().find(|l| l.order_id == order_id) {
            if own.expired(now) {
                expired = left.min(own.expired);
                own.expired -= expired;
                left -= expired;
            } else {
                from_own = left.min(own.remaining);
                own.remaining -= from_own;
                left -= from_own;
            }
            if from_own > 0 {
                m.statement.push(("reversal".into(), -from_own));
            }
        }
        let mut others: Vec<&mut ModelLot> = m
            .lots
            .iter_mut()
            .filter(|l| {
                l.order_id != order_id
                    && l.remaining > 0
                    && l.available_at <= now
                    && !l.expired(now)
            })
            .collect();
        others.sort_by(|a, b| (a.expires_on, &a.order_id).cmp(&(b.expires_on, &b.order_id)));
        let mut from_others = 0;
        for lot in others {
            let take = left.min(lot.remaining);
            lot.remaining -= take;
            left -= take;
            from_others += take;
        }
        if from_others > 0 {
            m.statement.push(("reversal".into(), -from_others));
        }
        if left > 0 {
            m.debt += left;
            m.statement.push(("debt".into(), -left));
        }
        (from_own, from_others, left, expired)
    }

    /// The nightly job for nights up to `night`: what is valid through that day or earlier
    /// expires, one statement entry per expiry day.
    fn expire(&mut self, night: NaiveDate) {
        for m in &mut self.members {
            let mut by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
            for lot in m.lots.iter_mut().filter(|l| l.expires_on <= night) {
                *by_day.entry(lot.expires_on).or_default() += lot.remaining;
                lot.expired += lot.remaining;
                lot.remaining = 0;
            }
            for (_, points) in by_day.into_iter().filter(|(_, p)| *p > 0) {
                m.statement.push(("expire".into(), -points));
            }
        }
        // Down from Gold when the 12 months that count after this night (those up to the
        // next day's month) fall short. Without orders in between, volume only falls from
        // night to night, so the last night of a jump decides as each would.
        let month = month_of(night + Duration::days(1));
        for member in 0..self.members.len() {
            if self.members[member].gold && self.rolling(member, month) < GOLD {
                self.members[member].gold = false;
                self.tier_downs += 1;
            }
        }
    }

    /// Holds whose 15 minutes are over give their points back (as the API shows them).
    fn lapse(&mut self, now: DateTime<Utc>) {
        for i in 0..self.holds.len() {
            if self.holds[i].state == HoldState::Open && now >= self.holds[i].expires_at {
                self.settle(i, 0, HoldState::Expired);
            }
        }
    }

    /// Resolve hold `i`: `capture` points are spent (oldest lot first), the rest goes back.
    fn settle(&mut self, i: usize, capture: i64, state: HoldState) {
        let hold = &mut self.holds[i];
        hold.state = state;
        let m = &mut self.members[hold.member];
        let mut left = capture;
        for (order_id, points) in &hold.lots {
            let take = left.min(*points);
            left -= take;
            if let Some(lot) = m.lots.iter_mut().find(|l| &l.order_id == order_id) {
                lot.held -= points;
                lot.remaining += points - take;
            }
        }
        if capture > 0 {
            m.statement.push(("redeem".into(), -capture));
        }
    }

    /// A hold: refused when the available points do not cover it or are under the
    /// programme's minimum to redeem (1,000); else it reserves lots, oldest expiry first.
    fn hold(
        &mut self,
        member: usize,
        points: i64,
        now: DateTime<Utc>,
    ) -> Result<usize, &'static str> {
        let reserved = self.reserve(member, points, now);
        let (lots, state, expires_at) = match &reserved {
            Ok(lots) => (lots.clone(), HoldState::Open, now + Duration::minutes(15)),
            // Kept, so that holds are numbered as generated.
            Err(_) => (Vec::new(), HoldState::Refused, now),
        };
        self.holds.push(ModelHold {
            hold_id: String::new(),
            member,
            points,
            lots,
            expires_at,
            state,
        });
        reserved.map(|_| self.holds.len() - 1)
    }

    /// A gift-shop claim: a hold of the reward's price (refused as a hold is), then the
    /// reward's stock and the member's limit, then spent at once.
    fn claim(
        &mut self,
        member: usize,
        reward: usize,
        now: DateTime<Utc>,
    ) -> Result<(), &'static str> {
        let (_, points, _, limit) = REWARDS[reward];
        if let Some(code) = self.refusal(member, points, now) {
            return Err(code);
        }
        let m = &self.members[member];
        if self.stock[reward] == 0 {
            return Err("out_of_stock");
        }
        if limit.is_some_and(|l| m.claims[reward] >= l) {
            return Err("claim_limit_reached");
        }
        let lots = self.reserve(member, points, now)?;
        let m = &mut self.members[member];
        for (order_id, take) in &lots {
            if let Some(lot) = m.lots.iter_mut().find(|l| &l.order_id == order_id) {
                lot.held -= take;
            }
        }
        m.statement.push(("redeem".into(), -points));
        m.claims[reward] += 1;
        self.stock[reward] -= 1;
        self.claims.push(ModelClaim {
            member,
            reward,
            lots,
            reference: String::new(),
            returned: None,
        });
        Ok(())
    }

    /// Count the statement entries made since the last call into `month` (every entry of
    /// a step is made at the step's time; a night's at the morning it ran). The issuer is
    /// always the shop, the programme's only partner.
    fn attribute(&mut self, month: &str) {
        let figures = self.months.entry(month.to_string()).or_default();
        self.counted.resize(self.members.len(), 0);
        for (m, from) in self.members.iter().zip(self.counted.iter_mut()) {
            for (kind, points) in &m.statement[*from..] {
                match kind.as_str() {
                    "earn" => figures.issued += points,
                    "adjustment" if *points > 0 => figures.issued += points,
                    "reversal" | "debt" | "adjustment" => figures.reversed -= points,
                    "redeem" | "claim_return" => figures.redeemed -= points,
                    "expire" | "transfer_fee" => figures.expired -= points,
                    // Transfers move points between members: no issuer's figure changes.
                    _ => {}
                }
            }
            *from = m.statement.len();
        }
    }

    /// Return claim `i` (once; again: as it was): each lot it took gets its points back,
    /// unless the lot's last day is over (those points expire at once: an `expire` entry
    /// after the return's); the reward's stock and the member's count come back.
    fn return_claim(&mut self, i: usize, now: DateTime<Utc>) -> (i64, i64) {
        let c = &mut self.claims[i];
        if let Some(outcome) = c.returned {
            return outcome;
        }
        let m = &mut self.members[c.member];
        let (mut back, mut expired) = (0, 0);
        for (order_id, take) in &c.lots {
            match m.lots.iter_mut().find(|l| &l.order_id == order_id) {
                Some(lot) if !lot.expired(now) => {
                    lot.remaining += take;
                    back += take;
                }
                _ => expired += take,
            }
        }
        m.statement.push(("claim_return".into(), back + expired));
        if expired > 0 {
            m.statement.push(("expire".into(), -expired));
        }
        m.claims[c.reward] -= 1;
        self.stock[c.reward] += 1;
        c.returned = Some((back, expired));
        (back, expired)
    }

    /// A transfer of `points` from one member to another: the programme's rules (size, not
    /// to oneself, no debt, the daily limit), then spending's (the points and the fee must
    /// be available). The points leave the sender's lots oldest expiry first, the fee last;
    /// the receiver gets them as new lots, available at once, with the same last days (and
    /// pays off a debt with them first). Returns the fee.
    fn transfer(
        &mut self,
        from: usize,
        to: usize,
        points: i64,
        transfer_id: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, &'static str> {
        let (min, max, daily, fee_percent) = TRANSFERS;
        if points < min || points > max {
            return Err("invalid_points");
        }
        if from == to {
            return Err("invalid_recipient");
        }
        if self.members[from].debt > 0 {
            return Err("member_has_debt");
        }
        let today = local_day(now);
        let sent = self.members[from].sent.get(&today).copied().unwrap_or(0);
        if sent + points > daily {
            return Err("daily_transfer_limit");
        }
        let fee = points * fee_percent / 100;
        // Sending spends nothing: the minimum balance to redeem does not apply.
        let available: i64 = self.members[from]
            .lots
            .iter()
            .filter(|l| l.available_at <= now && !l.expired(now))
            .map(|l| l.remaining)
            .sum();
        if available < points + fee {
            return Err("insufficient_points");
        }
        let lots = self.take_oldest(from, points + fee, now);
        let mut moved: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        let mut give = points;
        let m = &mut self.members[from];
        for (order_id, take) in lots {
            if let Some(lot) = m.lots.iter_mut().find(|l| l.order_id == order_id) {
                lot.held -= take;
                let to_receiver = give.min(take);
                give -= to_receiver;
                if to_receiver > 0 {
                    *moved.entry(lot.expires_on).or_default() += to_receiver;
                }
            }
        }
        *m.sent.entry(today).or_default() += points;
        m.statement.push(("transfer_out".into(), -points));
        if fee > 0 {
            m.statement.push(("transfer_fee".into(), -fee));
        }
        let r = &mut self.members[to];
        for (expires_on, got) in moved {
            let repaid = r.debt.min(got);
            r.debt -= repaid;
            r.lots.push(ModelLot {
                order_id: format!("transfer-{transfer_id}-{expires_on}"),
                remaining: got - repaid,
                expired: 0,
                held: 0,
                available_at: now,
                expires_on,
            });
        }
        r.statement.push(("transfer_in".into(), points));
        Ok(fee)
    }

    /// An adjustment, once approved (if it needs that): a credit is a new lot, available
    /// at once, expiring 12 months on, paying off a debt first; a debit takes unexpired
    /// points (pending ones too), soonest expiring first, 30 lots to a statement entry,
    /// and only `fraud` may owe the rest. Returns (applied, debt).
    fn adjust(
        &mut self,
        member: usize,
        points: i64,
        fraud: bool,
        adjustment_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64), &'static str> {
        let m = &mut self.members[member];
        if points > 0 {
            let repaid = m.debt.min(points);
            m.debt -= repaid;
            m.lots.push(ModelLot {
                order_id: format!("adjustment:{adjustment_id}"),
                remaining: points - repaid,
                expired: 0,
                held: 0,
                available_at: now,
                expires_on: local_day(now)
                    .checked_add_months(Months::new(12))
                    .unwrap_or(NaiveDate::MAX),
            });
            m.statement.push(("adjustment".into(), points));
            return Ok((points, 0));
        }
        let want = -points;
        let mut lots: Vec<&mut ModelLot> = m
            .lots
            .iter_mut()
            .filter(|l| l.remaining > 0 && !l.expired(now))
            .collect();
        let there: i64 = lots.iter().map(|l| l.remaining).sum();
        if there < want && !fraud {
            return Err("insufficient_points");
        }
        lots.sort_by(|a, b| (a.expires_on, &a.order_id).cmp(&(b.expires_on, &b.order_id)));
        let (mut left, mut chunks) = (want, Vec::new());
        for chunk in lots.chunks_mut(30) {
            let mut took = 0;
            for lot in chunk.iter_mut() {
                if left == 0 {
                    break;
                }
                let take = left.min(lot.remaining);
                lot.remaining -= take;
                left -= take;
                took += take;
            }
            if took > 0 {
                chunks.push(took);
            }
            if left == 0 {
                break;
            }
        }
        for took in &chunks {
            m.statement.push(("adjustment".into(), -took));
        }
        if left > 0 {
            m.debt += left;
            m.statement.push(("debt".into(), -left));
        }
        Ok((want - left, left))
    }

    /// Why spending `points` is refused: the available points do not cover them, or are
    /// under the programme's minimum to redeem (1,000).
    fn refusal(&self, member: usize, points: i64, now: DateTime<Utc>) -> Option<&'static str> {
        let available: i64 = self.members[member]
            .lots
            .iter()
            .filter(|l| l.available_at <= now && !l.expired(now))
            .map(|l| l.remaining)
            .sum();
        if available < points {
            Some("insufficient_points")
        } else if available < 1_000 {
            Some("below_min_balance")
        } else {
            None
        }
    }

    /// Reserve `points` of the member's available lots, oldest expiry first.
    fn reserve(
        &mut self,
        member: usize,
        points: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, &'static str> {
        if let Some(code) = self.refusal(member, points, now) {
            return Err(code);
        }
        Ok(self.take_oldest(member, points, now))
    }

    /// Move `points` (there are enough) of the member's available lots to held, oldest
    /// expiry first.
    fn take_oldest(
        &mut self,
        member: usize,
        points: i64,
        now: DateTime<Utc>,
    ) -> Vec<(String, i64)> {
        let m = &mut self.members[member];
        let mut lots: Vec<&mut ModelLot> = m
            .lots
            .iter_mut()
            .filter(|l| l.remaining > 0 && l.available_at <= now && !l.expired(now))
            .collect();
        lots.sort_by(|a, b| (a.expires_on, &a.order_id).cmp(&(b.expires_on, &b.order_id)));
        let mut left = points;
        let mut reserved = Vec::new();
        for lot in lots {
            if left == 0 {
                break;
            }
            let take = left.min(lot.remaining);
            lot.remaining -= take;
            lot.held += take;
            left -= take;
            reserved.push((lot.order_id.clone(), take));
        }
        reserved
    }

    /// The balance as the member API shows it.
    fn balance(&self, member: usize, now: DateTime<Utc>) -> Balance {
        let m = &self.members[member];
        let today = local_day(now);
        let live = m
            .lots
            .iter()
            .filter(|l| l.remaining + l.held > 0 && !l.expired(now));
        let mut b = Balance {
            tier: if m.gold { "Gold" } else { "Member" }.to_string(),
            debt: m.debt,
            held: m.lots.iter().map(|l| l.held).sum(),
            ..Balance::default()
        };
        for lot in live {
            if lot.available_at > now {
                b.pending += lot.remaining;
                *b.releases.entry(lot.available_at).or_default() += lot.remaining;
            } else {
                b.available += lot.remaining;
            }
            if lot.expires_on <= today + Duration::days(30) {
                *b.expiring.entry(lot.expires_on).or_default() += lot.remaining + lot.held;
            }
        }
        b
    }
}

/// What is compared of a balance.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Balance {
    tier: String,
    available: i64,
    pending: i64,
    held: i64,
    debt: i64,
    releases: BTreeMap<DateTime<Utc>, i64>,
    expiring: BTreeMap<NaiveDate, i64>,
}

fn balance_of(view: &Value) -> Result<Balance, String> {
    let n = |k: &str| {
        view[k]
            .as_i64()
            .ok_or_else(|| format!("balance without {k}: {view}"))
    };
    let mut b = Balance {
        tier: view["tier"]["name"].as_str().unwrap_or("?").to_string(),
        available: n("available")?,
        pending: n("pending")?,
        held: n("held")?,
        debt: n("debt")?,
        ..Balance::default()
    };
    for r in view["releases"].as_array().into_iter().flatten() {
        let at: DateTime<Utc> = r["date"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("release without a date: {r}"))?;
        b.releases
            .insert(at, r["points"].as_i64().unwrap_or(i64::MIN));
    }
    for e in view["expiring"].as_array().into_iter().flatten() {
        let on: NaiveDate = e["date"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("expiry without a date: {e}"))?;
        b.expiring
            .insert(on, e["points"].as_i64().unwrap_or(i64::MIN));
    }
    Ok(b)
}

// ---------------------------------------------------------------------------------------
// The driver.

/// How a run ended badly: the step, the operation and what differed.
#[derive(Debug, Clone)]
pub struct Divergence {
    pub step: usize,
    pub op: Option<Op>,
    pub what: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Some(op) => write!(f, "step {} ({op:?}): {}", self.step, self.what),
            None => write!(f, "at the end: {}", self.what),
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub steps: usize,
    pub orders: usize,
    pub redeliveries: usize,
    pub refunds: usize,
    pub cancellations: usize,
    pub nights: usize,
    pub holds: usize,
    pub captures: usize,
    pub voids: usize,
    pub events: usize,
    pub claims: usize,
    /// Gift-shop claims returned (and of those, returns sent twice count once).
    pub claim_returns: usize,
    /// Coalition clearing months closed (each compared with the model).
    pub months_closed: usize,
    /// Refunds and cancellations delivered before their order.
    pub early_refunds: usize,
    pub erasures: usize,
    /// Bursts of orders of different members at the same moment.
    pub bursts: usize,
    /// Orders bought for the company (80/20).
    pub company_orders: usize,
    /// Transfers between members (refused ones included), and the points they moved.
    pub transfers: usize,
    pub transferred: i64,
    /// Adjustments (refused ones included), and the points they credited or debited.
    pub adjustments: usize,
    pub adjusted: i64,
    /// Campaign points paid, and campaign lines its small budget could not pay in full.
    pub campaign_points: i64,
    pub campaign_short: usize,
    /// Members who went up to Gold at an order, and came down at a night.
    pub tier_ups: usize,
    pub tier_downs: usize,
    pub skipped: usize,
    /// Copies of orders that raced their first delivery.
    pub racing_copies: usize,
    /// Requests answered 503, or lost to a crash, and sent again.
    pub retried: usize,
    /// Nightly runs that failed and ran again.
    pub nights_rerun: usize,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    pub entries: usize,
    /// Points spent by captured holds, over all members.
    pub redeemed: i64,
    pub expired: i64,
    pub reversed: i64,
}

/// The nightly job's queue (moto), shared by the runs of one test, with its faults.
pub struct NightQueue {
    pub sqs: aws_sdk_sqs::Client,
    pub endpoint: String,
    pub faults: crate::SqsFaults,
}

impl NightQueue {
    pub fn new(endpoint: &str) -> Self {
        let faults = crate::SqsFaults::default();
        let config = bonus_sqs::local_config(endpoint)
            .to_builder()
            .interceptor(faults.clone())
            .build();
        NightQueue {
            sqs: aws_sdk_sqs::Client::from_conf(config),
            endpoint: endpoint.to_string(),
            faults,
        }
    }
}

struct Driver<'a> {
    env: TestEnv,
    model: Model,
    queue: &'a NightQueue,
    queue_url: String,
    /// The last month the clearing closed.
    closed_through: Option<bonus_domain::month::Month>,
    stats: RunStats,
}

fn member_id(i: usize) -> String {
    format!("S-{i}")
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

impl Driver<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.env.clock_now()
    }

    /// A signed order webhook; a 503 is sent again, as a sender that retries would.
    async fn post(&mut self, body: &str) -> (StatusCode, Value) {
        let env = &self.env;
        let (answer, again) = resend(&env.faults, || env.order(body)).await;
        self.stats.retried += again;
        answer
    }

    /// A signed behaviour event; a 503 is sent again.
    async fn event(&mut self, body: &str) -> (StatusCode, Value) {
        let env = &self.env;
        let headers = env.signed(crate::SECRET, "msg_evt", body, 0);
        let (answer, again) = resend(&env.faults, || {
            env.call(
                "POST",
                "/v1/partners/shop/events",
                &headers,
                body.to_string(),
            )
        })
        .await;
        self.stats.retried += again;
        answer
    }

    /// A refund or cancellation of `points`: the model's split must be the answer's. A
    /// company order's `employee` share comes back from its buyer, the rest from `member`.
    #[allow(clippy::too_many_arguments)]
    async fn reversal(
        &mut self,
        what: &str,
        member: usize,
        employee: Option<(usize, i64)>,
        order_id: &str,
        points: i64,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let (buyer, share) = employee.unwrap_or((member, 0));
        let mut split = self.model.reverse(member, order_id, points - share, now);
        let theirs = self.model.reverse(buyer, order_id, share, now);
        split = (
            split.0 + theirs.0,
            split.1 + theirs.1,
            split.2 + theirs.2,
            split.3 + theirs.3,
        );
        let (status, answer) = self.post(body).await;
        if status != StatusCode::OK || answer["points"] != points || split_of(&answer) != split {
            return Err(format!(
                "{what} of {order_id}: expected 200 with {points} points split {split:?}, got {status} {answer}"
            ));
        }
        Ok(())
    }

    async fn step(&mut self, op: &Op) -> Result<Option<usize>, String> {
        // Every operation a few minutes after the one before.
        self.env.clock.set(self.now() + Duration::minutes(7));
        let now = self.now();
        self.model.lapse(now);
        match op {
            Op::Hold { member, points } => {
                let n = self.model.holds.len();
                let expected = self.model.hold(*member, *points, now);
                let (status, answer) = self
                    .api(
                        "POST",
                        &format!("/v1/members/{}/holds", member_id(*member)),
                        json!({"points": points, "reference": format!("H-{n}-{}", self.stats.steps)}),
                    )
                    .await;
                // 201, or 200 for the same request sent again after a crash.
                let placed = status == StatusCode::CREATED || status == StatusCode::OK;
                match expected {
                    Ok(i) if placed
                        && answer["status"] == "open"
                        && answer["points"] == *points =>
                    {
                        self.model.holds[i].hold_id =
                            answer["hold_id"].as_str().unwrap_or_default().to_string();
                    }
                    // Refused for the member's points, not for the request: a conflict.
                    Err(code)
                        if status == StatusCode::CONFLICT && answer["error"]["code"] == code => {}
                    _ => {
                        return Err(format!(
                            "hold of {points} for M{member}: expected {expected:?}, got {status} {answer}"
                        ))
                    }
                }
                self.stats.holds += 1;
                Ok(Some(*member))
            }
            Op::Event { member, again } => {
                let m = *member;
                if *again {
                    let Some((body, first)) = self.model.members[m].last_event.clone() else {
                        self.stats.skipped += 1;
                        return Ok(None);
                    };
                    // An event's answer is kept: however late, the first answer again.
                    let (status, answer) = self.event(&body).await;
                    if status != StatusCode::OK || answer != first {
                        return Err(format!(
                            "event delivered again: got {status} {answer}, first answer {first}"
                        ));
                    }
                } else {
                    self.model.events += 1;
                    let reference = format!("E-{}", self.model.events);
                    let occurred_at = now - Duration::minutes(5);
                    let body = json!({
                        "type": "review.written", "event_ref": reference,
                        "member_id": member_id(m),
                        "occurred_at": bonus_domain::clock::ts(occurred_at),
                    })
                    .to_string();
                    let capped = self.model.members[m].events >= EVENT_CAP;
                    let (want, points) = if capped {
                        ("cap_reached", 0)
                    } else if self.model.event_budget_left < EVENT_POINTS {
                        // The budget pays whole events only.
                        ("budget_exhausted", 0)
                    } else {
                        self.model.event_budget_left -= EVENT_POINTS;
                        self.model.members[m].events += 1;
                        let source = format!("evt#{reference}");
                        (
                            "earned",
                            self.model.earn(m, &source, EVENT_POINTS, occurred_at),
                        )
                    };
                    let (status, answer) = self.event(&body).await;
                    if status != StatusCode::OK
                        || answer["status"] != want
                        || answer["points"] != points
                    {
                        return Err(format!(
                            "event {reference}: expected 200 {want} with {points} points, got {status} {answer}"
                        ));
                    }
                    self.model.members[m].last_event = Some((body, answer));
                }
                self.stats.events += 1;
                Ok(Some(m))
            }
            Op::Claim { member, reward } => {
                let (m, reward) = (*member, reward % REWARDS.len());
                let (reward_id, points, _, _) = REWARDS[reward];
                let expected = self.model.claim(m, reward, now);
                let reference = format!("C-{}", self.stats.steps);
                if expected.is_ok() {
                    if let Some(c) = self.model.claims.last_mut() {
                        c.reference = format!("claim/{reward_id}/{reference}");
                    }
                }
                // Every other claim is the member's own, on the member site (the same claim
                // service behind a session instead of a partner key).
                if self.stats.claims % 2 == 1 {
                    let (status, page) = self.site_claim(m, reward_id, &reference).await;
                    let ok = match expected {
                        Ok(()) => {
                            status == StatusCode::CREATED && page.contains("class=\"voucher\">")
                        }
                        Err(code) => {
                            status == StatusCode::CONFLICT
                                && page.contains(&format!("data-error=\"{code}\""))
                        }
                    };
                    if !ok {
                        return Err(format!(
                            "site claim of {reward_id} by M{m}: expected {expected:?}, got {status}"
                        ));
                    }
                    self.stats.claims += 1;
                    return Ok(Some(m));
                }
                let (status, answer) = self
                    .api(
                        "POST",
                        &format!("/v1/members/{}/rewards/{reward_id}/claim", member_id(m)),
                        json!({"reference": reference}),
                    )
                    .await;
                // A claim sent again after a 503 finds its hold and captures it: 200.
                let ok = match expected {
                    Ok(()) => {
                        (status == StatusCode::CREATED || status == StatusCode::OK)
                            && answer["status"] == "captured"
                            && answer["points"] == points
                            && answer["voucher_code"].is_string()
                    }
                    Err(code) => status == StatusCode::CONFLICT && answer["error"]["code"] == code,
                };
                if !ok {
                    return Err(format!(
                        "claim of {reward_id} by M{m}: expected {expected:?}, got {status} {answer}"
                    ));
                }
                self.stats.claims += 1;
                Ok(Some(m))
            }
            Op::ReturnClaim { back, twice } => {
                let Some(i) = self.model.claims.len().checked_sub(1 + back) else {
                    self.stats.skipped += 1;
                    return Ok(None);
                };
                let (m, reference) = {
                    let c = &self.model.claims[i];
                    (c.member, c.reference.clone())
                };
                let code = self
                    .env
                    .store
                    .member_claims("velo", &member_id(m))
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .find(|h| h.reference == reference)
                    .and_then(|h| h.reward.map(|r| r.voucher_code))
                    .ok_or_else(|| format!("claim {reference} of M{m} not found"))?;
                let (back_points, expired) = self.model.return_claim(i, now);
                let path = format!("/v1/partner/claims/{code}/return");
                let mut first: Option<Value> = None;
                for _ in 0..if *twice { 2 } else { 1 } {
                    let (status, answer) = self.api("POST", &path, Value::Null).await;
                    if status != StatusCode::OK
                        || answer["status"] != "returned"
                        || answer["returned"]["points"] != back_points
                        || answer["returned"]["expired"] != expired
                        || first.as_ref().is_some_and(|f| f != &answer)
                    {
                        return Err(format!(
                            "return of {reference}: expected 200 with {back_points} back and {expired} expired, got {status} {answer}"
                        ));
                    }
                    first = Some(answer);
                }
                self.stats.claim_returns += 1;
                Ok(Some(m))
            }
            Op::RefundFirst {
                member,
                lines,
                cancel,
            } => {
                let m = *member;
                let order_id = format!("SIM-{}", self.model.orders.len());
                let occurred_at = now - Duration::minutes(5);
                let body = order_body(&order_id, m, lines, occurred_at);
                let at = bonus_domain::clock::ts(now - Duration::minutes(1));
                let early = if *cancel {
                    json!({"type": "order.cancelled", "order_id": order_id, "occurred_at": at})
                } else {
                    json!({
                        "type": "order.refunded", "order_id": order_id, "refund_id": "R-E",
                        "occurred_at": at, "currency": "EUR",
                        "lines": [{"line_id": "1", "quantity": 1}],
                    })
                };
                let (status, answer) = self.post(&early.to_string()).await;
                if status != StatusCode::ACCEPTED || answer["status"] != "waiting_for_order" {
                    return Err(format!(
                        "early {} of {order_id}: expected 202 waiting_for_order, got {status} {answer}",
                        if *cancel { "cancellation" } else { "refund" }
                    ));
                }
                let (points, mut earned) = self.model.order(m, &order_id, lines, occurred_at);
                let parts: Vec<LineRefund> = earned
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| *cancel || *i == 0)
                    .map(|(_, l)| l.refund(if *cancel { l.quantity } else { 1 }))
                    .collect();
                let taken = self.model.refunded(m, occurred_at, &parts, now);
                self.model.reverse(m, &order_id, taken, now);
                let (status, answer) = self.post(&body).await;
                let applied: i64 = answer["refunds_applied"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r["points"].as_i64().unwrap_or(i64::MIN))
                    .sum();
                if status != StatusCode::OK || answer["points"] != points || applied != taken {
                    return Err(format!(
                        "order {order_id} after its refund: expected 200 with {points} points and {taken} taken back, got {status} {answer}"
                    ));
                }
                let mut booked = ModelOrder::new(order_id, m, body, earned, answer);
                booked.cancelled = *cancel;
                self.model.orders.push(booked);
                self.stats.early_refunds += 1;
                Ok(Some(m))
            }
            Op::Transfer { from, to, points } => {
                let reference = format!("T-{}", self.stats.steps);
                let transfer_id =
                    bonus_domain::transfer::transfer_id(&member_id(*from), &reference);
                let expected = self.model.transfer(*from, *to, *points, &transfer_id, now);
                let (status, answer) = self
                    .api(
                        "POST",
                        &format!("/v1/members/{}/transfers", member_id(*from)),
                        json!({"to_member_id": member_id(*to), "points": points, "reference": reference}),
                    )
                    .await;
                let ok = match expected {
                    // 201, or 200 for the same request sent again after a crash.
                    Ok(fee) => {
                        (status == StatusCode::CREATED || status == StatusCode::OK)
                            && answer["points"] == *points
                            && answer["fee"] == fee
                            && answer["transfer_id"] == transfer_id.as_str()
                    }
                    Err(code @ ("invalid_points" | "invalid_recipient")) => {
                        status == StatusCode::UNPROCESSABLE_ENTITY
                            && answer["error"]["code"] == code
                    }
                    Err(code) => status == StatusCode::CONFLICT && answer["error"]["code"] == code,
                };
                if !ok {
                    return Err(format!(
                        "transfer of {points} from M{from} to M{to}: expected {expected:?}, got {status} {answer}"
                    ));
                }
                self.stats.transfers += 1;
                if expected.is_ok() {
                    self.stats.transferred += points;
                }
                // The sender here; the receiver is compared by the caller.
                Ok(Some(*from))
            }
            Op::Adjust {
                member,
                points,
                fraud,
            } => {
                let reference = format!("A-{}", self.stats.steps);
                let adjustment_id = bonus_domain::adjustment::adjustment_id("shop", &reference);
                let reason = match (*points > 0, *fraud) {
                    (true, _) => "goodwill",
                    (false, true) => "fraud",
                    (false, false) => "correction",
                };
                let body = json!({"member_id": member_id(*member), "points": points,
                    "reason": reason, "note": "simulated", "reference": reference});
                let (status, mut answer) = self.api("POST", "/v1/partner/adjustments", body).await;
                let pending = points.abs() > ADJUST_THRESHOLD;
                if pending {
                    // Waits for a second person: nothing written yet, then approved.
                    if !(status == StatusCode::CREATED || status == StatusCode::OK)
                        || answer["status"] != "pending_approval"
                    {
                        return Err(format!(
                            "adjustment {points} of M{member}: expected pending_approval, got {status} {answer}"
                        ));
                    }
                    self.compare(*member).await?;
                }
                let expected = self
                    .model
                    .adjust(*member, *points, *fraud, &adjustment_id, now);
                if pending {
                    let path = format!("/v1/partner/adjustments/{adjustment_id}/approve");
                    let headers = [
                        ("authorization", format!("Bearer {}", crate::API_KEY)),
                        ("bonus-actor", "Second Person".to_string()),
                    ];
                    let env = &self.env;
                    let (reply, again) =
                        resend(&env.faults, || env.call("POST", &path, &headers, "")).await;
                    self.stats.retried += again;
                    answer = reply.1;
                    let ok = match expected {
                        Ok(_) => reply.0 == StatusCode::OK,
                        Err(code) => {
                            reply.0 == StatusCode::CONFLICT && answer["error"]["code"] == code
                        }
                    };
                    if !ok {
                        return Err(format!(
                            "approval of adjustment {points} of M{member}: expected {expected:?}, got {} {answer}",
                            reply.0
                        ));
                    }
                    if expected.is_err() {
                        self.stats.adjustments += 1;
                        return Ok(Some(*member));
                    }
                } else {
                    let ok = match expected {
                        Ok(_) => status == StatusCode::CREATED || status == StatusCode::OK,
                        Err(code) => {
                            status == StatusCode::CONFLICT && answer["error"]["code"] == code
                        }
                    };
                    if !ok {
                        return Err(format!(
                            "adjustment {points} of M{member}: expected {expected:?}, got {status} {answer}"
                        ));
                    }
                }
                if let Ok((applied, debt)) = expected {
                    if answer["status"] != "applied"
                        || answer["applied"] != applied
                        || answer["debt"] != debt
                    {
                        return Err(format!(
                            "adjustment {points} of M{member}: expected {applied} applied and {debt} owed, got {answer}"
                        ));
                    }
                    self.stats.adjusted += points.abs();
                }
                self.stats.adjustments += 1;
                Ok(Some(*member))
            }
            Op::Erase { member } => {
                let id = member_id(*member);
                let (status, answer) = self
                    .api("DELETE", &format!("/v1/members/{id}"), Value::Null)
                    .await;
                if status != StatusCode::OK
                    || !answer["email"].is_null()
                    || !answer["erased_at"].is_string()
                {
                    return Err(format!("erasure of {id}: got {status} {answer}"));
                }
                self.model.members[*member].erased = true;
                self.stats.erasures += 1;
                Ok(Some(*member))
            }
            Op::Capture { hold, part } => self.resolve(*hold, Some(*part)).await,
            Op::Void { hold } => self.resolve(*hold, None).await,
            Op::Order {
                member,
                lines,
                copies,
            } => {
                let n = self.model.orders.len();
                let order_id = format!("SIM-{n}");
                let occurred_at = now - Duration::minutes(5);
                let body = order_body(&order_id, *member, lines, occurred_at);
                let (points, earned) = self.model.order(*member, &order_id, lines, occurred_at);
                // The copies go out together and race; each must get the same answer.
                let env = &self.env;
                let copies =
                    (0..(*copies).max(1)).map(|_| resend(&env.faults, || env.order(&body)));
                let (answers, again): (Vec<_>, Vec<usize>) =
                    futures::future::join_all(copies).await.into_iter().unzip();
                self.stats.retried += again.iter().sum::<usize>();
                let (status, answer) = answers[0].clone();
                if status != StatusCode::OK || answer["points"] != points {
                    return Err(format!(
                        "order {order_id}: expected 200 with {points} points, got {status} {answer}"
                    ));
                }
                if let Some(other) = answers.iter().find(|a| **a != (status, answer.clone())) {
                    return Err(format!(
                        "order {order_id}: copies answered differently: {answer} and {other:?}"
                    ));
                }
                self.stats.racing_copies += answers.len() - 1;
                self.model
                    .orders
                    .push(ModelOrder::new(order_id, *member, body, earned, answer));
                self.stats.orders += 1;
                Ok(Some(*member))
            }
            Op::CompanyOrder { buyer, lines } => {
                let n = self.model.orders.len();
                let order_id = format!("SIM-{n}");
                let occurred_at = now - Duration::minutes(5);
                let mut body: Value =
                    serde_json::from_str(&order_body(&order_id, *buyer, lines, occurred_at))
                        .map_err(|e| e.to_string())?;
                body["company_id"] = json!(member_id(COMPANY));
                let body = body.to_string();
                let (points, employee, earned) =
                    self.model
                        .company_order(*buyer, &order_id, lines, occurred_at);
                let env = &self.env;
                let ((status, answer), again) = resend(&env.faults, || env.order(&body)).await;
                self.stats.retried += again;
                let shown = if employee > 0 {
                    json!(employee)
                } else {
                    Value::Null
                };
                if status != StatusCode::OK
                    || answer["points"] != points
                    || answer["earned_for"] != member_id(COMPANY).as_str()
                    || answer["employee_points"] != shown
                {
                    return Err(format!(
                        "company order {order_id}: expected 200 with {points} points, {employee} the employee's, got {status} {answer}"
                    ));
                }
                let mut o = ModelOrder::new(order_id, COMPANY, body, earned, answer);
                o.employee = Some(*buyer);
                self.model.orders.push(o);
                self.stats.orders += 1;
                self.stats.company_orders += 1;
                Ok(Some(COMPANY))
            }
            Op::Burst { orders } => {
                let mut planned = Vec::new();
                for (member, lines) in orders {
                    let order_id = format!("SIM-{}", self.model.orders.len() + planned.len());
                    let occurred_at = now - Duration::minutes(5);
                    let body = order_body(&order_id, *member, lines, occurred_at);
                    let (points, earned) = self.model.order(*member, &order_id, lines, occurred_at);
                    planned.push((order_id, *member, earned, body, points));
                }
                let env = &self.env;
                let sends = planned
                    .iter()
                    .map(|(_, _, _, body, _)| resend(&env.faults, move || env.order(body)));
                let answers = futures::future::join_all(sends).await;
                for ((order_id, member, earned, body, points), ((status, answer), again)) in
                    planned.into_iter().zip(answers)
                {
                    self.stats.retried += again;
                    if status != StatusCode::OK || answer["points"] != points {
                        return Err(format!(
                            "order {order_id} in a burst: expected 200 with {points} points, got {status} {answer}"
                        ));
                    }
                    self.model
                        .orders
                        .push(ModelOrder::new(order_id, member, body, earned, answer));
                    self.stats.orders += 1;
                }
                self.stats.bursts += 1;
                // Every member of the burst is compared (run_with).
                Ok(None)
            }
            Op::Redeliver { order } => {
                let Some(o) = self.model.orders.get(*order).cloned() else {
                    return Ok(None);
                };
                let (status, answer) = self.post(&o.body).await;
                // Past the 7 days an order may be late, a delivery is refused as too old;
                // within them it gets the first answer again.
                let late = now - Duration::days(7) > first_at(&o.body);
                let expected = if late {
                    status == StatusCode::UNPROCESSABLE_ENTITY
                        && answer["error"]["code"] == "occurred_at_too_old"
                } else {
                    status == StatusCode::OK && answer == o.answer
                };
                if !expected {
                    return Err(format!(
                        "redelivery of {}: got {status} {answer}, first answer {}",
                        o.order_id, o.answer
                    ));
                }
                self.stats.redeliveries += 1;
                Ok(Some(o.member))
            }
            Op::Refund {
                order,
                line,
                quantity,
            } => {
                let Some(o) = self.model.orders.get_mut(*order) else {
                    return Ok(None);
                };
                let line = line % o.lines.len();
                let left = o.lines[line].left();
                if o.cancelled || left == 0 {
                    self.stats.skipped += 1;
                    return Ok(None);
                }
                let quantity = (*quantity).min(left);
                o.refunds += 1;
                let part = o.lines[line].refund(quantity);
                let body = json!({
                    "type": "order.refunded", "order_id": o.order_id,
                    "refund_id": format!("R-{}", o.refunds),
                    "occurred_at": bonus_domain::clock::ts(now - Duration::minutes(1)),
                    "currency": "EUR",
                    "lines": [{"line_id": (line + 1).to_string(), "quantity": quantity}],
                })
                .to_string();
                let (member, order_id, order_at) = (o.member, o.order_id.clone(), o.at);
                let employee = o.employee.map(|e| (e, part.employee));
                let points = self.model.refunded(member, order_at, &[part], now);
                self.reversal("refund", member, employee, &order_id, points, &body, now)
                    .await?;
                self.stats.refunds += 1;
                Ok(employee.is_none().then_some(member))
            }
            Op::Cancel { order } => {
                let Some(o) = self.model.orders.get_mut(*order) else {
                    return Ok(None);
                };
                if o.cancelled {
                    self.stats.skipped += 1;
                    return Ok(None);
                }
                o.cancelled = true;
                let parts: Vec<LineRefund> = o
                    .lines
                    .iter_mut()
                    .map(|l| {
                        let all = l.quantity;
                        l.refund(all)
                    })
                    .collect();
                let body = json!({
                    "type": "order.cancelled", "order_id": o.order_id,
                    "occurred_at": bonus_domain::clock::ts(now - Duration::minutes(1)),
                })
                .to_string();
                let (member, order_id, order_at) = (o.member, o.order_id.clone(), o.at);
                let employee = o
                    .employee
                    .map(|e| (e, parts.iter().map(|p| p.employee).sum::<i64>()));
                let points = self.model.refunded(member, order_at, &parts, now);
                self.reversal(
                    "cancellation",
                    member,
                    employee,
                    &order_id,
                    points,
                    &body,
                    now,
                )
                .await?;
                self.stats.cancellations += 1;
                Ok(employee.is_none().then_some(member))
            }
            Op::Advance { days } => {
                let before = local_day(now);
                // To the next morning (or later), 03:00 local time, when the job has run.
                let day = before + Duration::days((*days).max(1));
                let morning = Amsterdam
                    .with_ymd_and_hms(day.year(), day.month(), day.day(), 3, 0, 0)
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or("no such morning")?;
                self.env.clock.set(morning);
                self.model.lapse(morning);
                let night = day - Duration::days(1);
                // A failed run is run again, as its schedule would.
                let mut outcome = Err(String::new());
                for _ in 0..8 {
                    outcome = nightly::run_in_process(
                        &self.env.ctx,
                        &self.queue.sqs,
                        &self.queue_url,
                        night,
                        |_, _| {},
                    )
                    .await
                    .map_err(|e| format!("nightly job for {night}: {e}"));
                    if outcome.is_ok() {
                        break;
                    }
                    // Crashed or failed: a new process runs the night again.
                    self.env.faults.restart();
                    self.stats.nights_rerun += 1;
                }
                outcome?;
                self.model.expire(night);
                self.stats.nights += (day - before).num_days() as usize;
                self.close_months(morning).await?;
                Ok(None)
            }
        }
    }

    /// Close every month before `now`'s that is not closed yet (the monthly clearing job,
    /// run again when it failed, as its schedule would), and compare each statement with
    /// the model's figures for the month. The close checks conservation, nets summing to 0
    /// and the matrix itself.
    async fn close_months(&mut self, now: DateTime<Utc>) -> Result<(), String> {
        use bonus_domain::month::Month;
        let current = Month::of(now, Amsterdam);
        let mut month = self
            .closed_through
            .map_or(Month::of(start(), Amsterdam), |m| m.next());
        while month < current {
            let key = month.to_string();
            let mut outcome = Err(String::new());
            for _ in 0..8 {
                outcome = clearing::close(&self.env.store, "velo", &key, now)
                    .await
                    .map_err(|e| format!("clearing close of {key}: {e}"));
                if outcome.is_ok() {
                    break;
                }
                self.env.faults.restart();
            }
            let (closed, _) = outcome?;
            let expected = self.model.months.get(&key).copied().unwrap_or_default();
            let real = closed
                .statements
                .iter()
                .find(|s| s.partner_id == "shop")
                .map(|s| {
                    // One partner: everything it issued was spent at itself.
                    if s.redeemed_at_others != 0 || s.redeemed_from_others != 0 || s.net != 0 {
                        return None;
                    }
                    Some(MonthFigures {
                        issued: s.issued,
                        reversed: s.reversed,
                        redeemed: s.redeemed_at_self,
                        expired: s.expired,
                    })
                })
                .unwrap_or(Some(MonthFigures::default()));
            if real != Some(expected) {
                return Err(format!(
                    "clearing of {key}: real {real:?}, model {expected:?}"
                ));
            }
            self.stats.months_closed += 1;
            self.closed_through = Some(month);
            month = month.next();
        }
        Ok(())
    }

    /// A member API call with the shop's key; a 503 is sent again.
    async fn api(&mut self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let headers = [("authorization", format!("Bearer {}", crate::API_KEY))];
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let env = &self.env;
        let (answer, again) = resend(&env.faults, || {
            env.call(method, path, &headers, body.clone())
        })
        .await;
        self.stats.retried += again;
        answer
    }

    /// A gift-shop claim posted on the member site by the member's own session (made here
    /// directly: logging in is not what this checks). A 503 or a crash is sent again with
    /// the same form, as a browser's resubmit would.
    async fn site_claim(
        &mut self,
        m: usize,
        reward_id: &str,
        reference: &str,
    ) -> (StatusCode, String) {
        let site = simulation_site();
        let now = self.now();
        let sref = bonus_domain::site::SessionRef::new(
            self.env.ctx.random.as_ref(),
            "velo",
            &member_id(m),
            now,
        );
        let session = bonus_dynamodb::site::Session {
            session_id: sref.session_id.clone(),
            programme_id: "velo".into(),
            member_id: member_id(m),
            created_at: now,
            expires_at: sref.expires_at,
            via: "simulation".into(),
            locale: None,
        };
        // Written before the faults can touch it: the claim is what is under test.
        self.env.faults.pause(true);
        let stored = self.env.store.put_session(&session).await;
        self.env.faults.pause(false);
        stored.expect("a session");
        let cookie = format!(
            "{}={}",
            bonus_domain::site::SESSION_COOKIE,
            sref.to_cookie(&site.session_key)
        );
        let body = serde_urlencoded::to_string([
            ("csrf", sref.csrf_token(&site.session_key).as_str()),
            ("reference", reference),
        ])
        .unwrap_or_default();
        let path = format!("/m/velo/{}/shop/{reward_id}", member_id(m));
        let env = &self.env;
        let send = || async {
            let req = http::Request::builder()
                .method("POST")
                .uri(path.as_str())
                .header("cookie", cookie.as_str())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(bytes::Bytes::from(body.clone()))
                .expect("request");
            let resp = bonus_ops::dev::dispatch_with(&env.ctx, Some(site), req).await;
            (resp.status(), Value::String(resp.body().clone()))
        };
        let ((status, page), again) = resend(&env.faults, send).await;
        self.stats.retried += again;
        (status, page.as_str().unwrap_or_default().to_string())
    }

    /// Capture (`part` given) or void hold `i`, as the model says it ends.
    async fn resolve(&mut self, i: usize, part: Option<u8>) -> Result<Option<usize>, String> {
        let Some(hold) = self.model.holds.get(i).cloned() else {
            return Ok(None);
        };
        if hold.state == HoldState::Refused {
            self.stats.skipped += 1;
            return Ok(None);
        }
        let capture = part.map(|p| match p {
            0 => hold.points,
            1 => (hold.points / 2).max(1),
            2 => 1,
            _ => hold.points + 1,
        });
        // (status, error code or the hold's status after)
        let expected: (StatusCode, &str) = match (hold.state, capture) {
            (HoldState::Open, Some(c)) if c > hold.points => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_capture")
            }
            (HoldState::Open, Some(c)) => {
                self.model.settle(i, c, HoldState::Captured);
                (StatusCode::OK, "captured")
            }
            (HoldState::Open, None) => {
                self.model.settle(i, 0, HoldState::Voided);
                (StatusCode::OK, "voided")
            }
            (HoldState::Expired, Some(_)) => (StatusCode::CONFLICT, "hold_expired"),
            (HoldState::Expired, None) => (StatusCode::OK, "expired"),
            (HoldState::Captured, Some(_)) => (StatusCode::OK, "captured"),
            (HoldState::Captured, None) => (StatusCode::CONFLICT, "hold_captured"),
            (HoldState::Voided, Some(_)) => (StatusCode::CONFLICT, "hold_voided"),
            (HoldState::Voided, None) => (StatusCode::OK, "voided"),
            (HoldState::Refused, _) => return Ok(None),
        };
        let (verb, body) = match capture {
            Some(c) => ("capture", json!({ "points": c })),
            None => ("void", Value::Null),
        };
        let (status, answer) = self
            .api("POST", &format!("/v1/holds/{}/{verb}", hold.hold_id), body)
            .await;
        let got = if status.is_success() {
            &answer["status"]
        } else {
            &answer["error"]["code"]
        };
        if (status, got.as_str().unwrap_or("?")) != expected {
            return Err(format!(
                "{verb} of hold #{i} ({:?}, {} points): expected {expected:?}, got {status} {answer}",
                hold.state, hold.points
            ));
        }
        self.stats.captures += usize::from(part.is_some());
        self.stats.voids += usize::from(part.is_none());
        Ok(Some(hold.member))
    }

    /// The campaign's budget and the gift shop's stock have what the model says is left.
    async fn compare_shared(&self) -> Result<(), String> {
        let campaign = self
            .env
            .store
            .get_campaign("shop", "promo")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the campaign is gone")?;
        let status = self
            .env
            .store
            .budget_status(&campaign)
            .await
            .map_err(|e| e.to_string())?;
        let events: Option<bonus_domain::budget::BudgetShard> = self
            .env
            .store
            .get(bonus_dynamodb::keys::budget_shard(
                "shop",
                "reviews#behaviour",
                0,
            ))
            .await
            .map_err(|e| e.to_string())?;
        if events.as_ref().map(|b| b.remaining) != Some(self.model.event_budget_left) {
            return Err(format!(
                "behaviour budget: real {:?} left, model {}",
                events.map(|b| b.remaining),
                self.model.event_budget_left
            ));
        }
        if status.remaining != self.model.budget_left {
            return Err(format!(
                "campaign budget: real {} left, model {}",
                status.remaining, self.model.budget_left
            ));
        }
        for (i, (reward_id, ..)) in REWARDS.iter().enumerate() {
            let stock = self
                .env
                .store
                .get_reward("velo", reward_id)
                .await
                .map_err(|e| e.to_string())?
                .map(|r| r.stock);
            if stock != Some(self.model.stock[i]) {
                return Err(format!(
                    "stock of {reward_id}: real {stock:?}, model {}",
                    self.model.stock[i]
                ));
            }
        }
        Ok(())
    }

    /// The touched member (or all, after a night) agrees with the model.
    async fn compare(&self, member: usize) -> Result<(), String> {
        let now = self.now();
        let id = member_id(member);
        let (status, view) = self.env.balance(&id).await;
        if status != StatusCode::OK {
            return Err(format!("balance of {id}: {status} {view}"));
        }
        let real = balance_of(&view)?;
        let expected = self.model.balance(member, now);
        if real != expected {
            return Err(format!(
                "balance of {id}:\n  real  {real:?}\n  model {expected:?}"
            ));
        }
        let entries = self
            .env
            .store
            .entries("velo", &id)
            .await
            .map_err(|e| e.to_string())?;
        let statement: Vec<(String, i64)> = entries
            .iter()
            .map(|e| {
                let kind = serde_json::to_value(e.kind).unwrap_or(Value::Null);
                (kind.as_str().unwrap_or("?").to_string(), e.points)
            })
            .collect();
        let model = &self.model.members[member].statement;
        if &statement != model {
            return Err(format!(
                "statement of {id}:\n  real  {statement:?}\n  model {model:?}"
            ));
        }
        // An erased member keeps the ledger and loses the address.
        if self.model.members[member].erased {
            let headers = [("authorization", format!("Bearer {}", crate::API_KEY))];
            let path = format!("/v1/members/{id}");
            let (status, profile) = self.env.call("GET", &path, &headers, "").await;
            if status != StatusCode::OK || !profile["email"].is_null() {
                return Err(format!("profile of erased {id}: {status} {profile}"));
            }
        }
        Ok(())
    }

    /// Conservation (issued - reversed = redeemed + expired + outstanding) over the real
    /// statements and balances, and `bonus audit`.
    async fn finish(&mut self) -> Result<(), String> {
        let now = self.now();
        let (mut issued, mut reversed, mut expired, mut redeemed, mut outstanding) =
            (0i64, 0i64, 0i64, 0i64, 0i64);
        let (mut sent, mut received, mut fees) = (0i64, 0i64, 0i64);
        for member in 0..=COMPANY {
            let id = member_id(member);
            for e in self
                .env
                .store
                .entries("velo", &id)
                .await
                .map_err(|e| e.to_string())?
            {
                use bonus_domain::events::EntryKind;
                match e.kind {
                    EntryKind::Earn => issued += e.points,
                    EntryKind::Reversal | EntryKind::Debt => reversed -= e.points,
                    EntryKind::Expire => expired -= e.points,
                    EntryKind::Redeem => redeemed -= e.points,
                    // A returned claim takes its redemption back.
                    EntryKind::ClaimReturn => redeemed -= e.points,
                    EntryKind::TransferOut => sent -= e.points,
                    EntryKind::TransferIn => received += e.points,
                    EntryKind::TransferFee => fees -= e.points,
                    // Not generated by the simulation (tests/tests/merge.rs).
                    EntryKind::Merge => {}
                    EntryKind::Adjustment if e.points > 0 => issued += e.points,
                    EntryKind::Adjustment => reversed -= e.points,
                }
                self.stats.entries += 1;
            }
            let b = self.model.balance(member, now);
            outstanding += b.available + b.pending + b.held - b.debt;
        }
        (self.stats.redeemed, self.stats.expired, self.stats.reversed) =
            (redeemed, expired, reversed);
        // Transfers move points between members (sent = received); their fees leave.
        if sent != received {
            return Err(format!("transfers: sent {sent} != received {received}"));
        }
        if issued - reversed != redeemed + expired + fees + outstanding {
            return Err(format!(
                "conservation: issued {issued} - reversed {reversed} != redeemed {redeemed} + expired {expired} + transfer fees {fees} + outstanding {outstanding}"
            ));
        }
        let all = vec!["velo".to_string(), "other".to_string()];
        let report = bonus_ops::audit::audit(&self.env.store, &all, now, |_, _| {})
            .await
            .map_err(|e| e.to_string())?;
        if !report.differences.is_empty() {
            return Err(format!("audit: {:?}", report.differences));
        }
        Ok(())
    }
}

/// Send, and send again (eight times at most) as a sender would: after a 503, and after a
/// crash of the process during the send (its answer, whatever it was, never arrived; the
/// process is started again). Any other answer is final. Returns it and the sends again.
async fn resend<F, Fut>(faults: &crate::FaultInjector, send: F) -> ((StatusCode, Value), usize)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)>,
{
    let mut again = 0;
    loop {
        let crashes = faults.crashes();
        let answer = send().await;
        let crashed = faults.crashes() != crashes;
        if crashed {
            faults.restart();
        }
        if again == 8 || !(crashed || answer.0 == StatusCode::SERVICE_UNAVAILABLE) {
            return (answer, again);
        }
        again += 1;
    }
}

/// The member site of the simulation: its own key; no message is ever sent from a claim,
/// so its senders point nowhere.
fn simulation_site() -> &'static member_site::Site {
    static SITE: std::sync::OnceLock<member_site::Site> = std::sync::OnceLock::new();
    SITE.get_or_init(|| {
        let config = || {
            aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-1"))
                .build()
        };
        let (ses, sns) = (config(), config());
        member_site::Site {
            session_key: b"simulation-site-session-key-0123456789".to_vec(),
            url: Some("https://points.example/m".into()),
            insecure_cookies: false,
            base_path: "/m".into(),
            senders: bonus_messages::send::Senders {
                ses: bonus_messages::send::first_use(move || aws_sdk_sesv2::Client::new(&ses)),
                sns: bonus_messages::send::first_use(move || aws_sdk_sns::Client::new(&sns)),
                from: "points@example.com".into(),
                unsubscribe_url: String::new(),
                configuration_set: None,
            },
        }
    })
}

/// A canonical `order.paid` delivery.
fn order_body(order_id: &str, member: usize, lines: &[Line], occurred_at: DateTime<Utc>) -> String {
    json!({
        "type": "order.paid",
        "order_id": order_id,
        "member_id": member_id(member),
        "occurred_at": bonus_domain::clock::ts(occurred_at),
        "currency": "EUR",
        "lines": lines.iter().enumerate().map(|(i, l)| {
            let mut line = json!({
                "line_id": (i + 1).to_string(), "sku": format!("SKU-{}", l.unit_minor),
                "quantity": l.quantity,
                "unit_price": format!("{}.{:02}", l.unit_minor / 100, l.unit_minor % 100),
            });
            if l.cocktails {
                line["product_group"] = "cocktails".into();
            }
            line
        }).collect::<Vec<_>>(),
    })
    .to_string()
}

/// (from own, from others, to debt, expired) of a refund's answer.
fn split_of(answer: &Value) -> (i64, i64, i64, i64) {
    let n = |k: &str| answer[k].as_i64().unwrap_or(0);
    (n("from_own"), n("from_others"), n("to_debt"), n("expired"))
}

/// The day a delivery says its order was paid.
fn first_at(body: &str) -> DateTime<Utc> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["occurred_at"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_default()
}

/// Run `ops` on a fresh stack; the first divergence from the model ends the run.
pub async fn run(ops: &[Op], queue: &NightQueue) -> Result<RunStats, Divergence> {
    run_against(ops, queue, None).await
}

/// [`run`] against a model with one rule broken on purpose (None: the true model).
pub async fn run_against(
    ops: &[Op],
    queue: &NightQueue,
    broken: Option<BrokenRule>,
) -> Result<RunStats, Divergence> {
    run_with(ops, queue, broken, None).await
}

/// Faults in a run, chosen by `seed`: DynamoDB faults in `per_mille` of the system's
/// requests, and a crash after `crash_per_mille` of its writes (the test's own reads are
/// spared).
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub seed: u64,
    pub per_mille: u64,
    pub crash_per_mille: usize,
}

/// [`run_against`] with `faults`.
pub async fn run_with(
    ops: &[Op],
    queue: &NightQueue,
    broken: Option<BrokenRule>,
    faults: Option<Faults>,
) -> Result<RunStats, Divergence> {
    let fail = |step, op: Option<&Op>, what| Divergence {
        step,
        op: op.cloned(),
        what,
    };
    let env = TestEnv::with_config(&config()).await;
    env.clock.set(start());
    let name = format!("sim-{}", uuid_like(&env));
    let queue_url = bonus_sqs::ensure_queue(&queue.sqs, &name, 2, 5)
        .await
        .map_err(|e| fail(0, None, format!("queue: {e}")))?;
    for programme_id in ["velo", "other"] {
        env.store
            .set_night_cursor(&bonus_dynamodb::nightly::NightCursor {
                programme_id: programme_id.into(),
                last_done: local_day(start()) - Duration::days(1),
                updated_at: start(),
            })
            .await
            .map_err(|e| fail(0, None, e.to_string()))?;
    }
    // DynamoDB's rule for transactions in flight, which the emulator does not apply.
    env.conflict_rule.enable();
    let mut driver = Driver {
        env,
        model: Model::new(broken),
        queue,
        queue_url,
        closed_through: None,
        stats: RunStats::default(),
    };
    if let Some(f) = faults {
        driver.env.faults.start(f.seed, f.per_mille);
        driver.env.faults.crash(f.crash_per_mille);
        queue.faults.start(f.seed, f.per_mille);
    }
    // The queue outlives the run (shrinking runs again on it): no faults after it.
    struct StopAfter<'a>(&'a crate::SqsFaults);
    impl Drop for StopAfter<'_> {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    let _stop = StopAfter(&queue.faults);
    for (step, op) in ops.iter().enumerate() {
        driver.env.faults.pause(false);
        let touched = Box::pin(driver.step(op))
            .await
            .map_err(|what| fail(step, Some(op), what))?;
        let month = bonus_domain::month::Month::of(driver.now(), Amsterdam).to_string();
        driver.model.attribute(&month);
        let members: Vec<usize> = match (touched, op) {
            (Some(m), Op::Transfer { to, .. }) if m != *to => vec![m, *to],
            (Some(m), Op::CompanyOrder { buyer, .. }) => vec![m, *buyer],
            (Some(m), _) => vec![m],
            (None, Op::Advance { .. }) => (0..=COMPANY).collect(),
            // A company order's refund touches the company and its buyer.
            (None, Op::Refund { .. } | Op::Cancel { .. }) => (0..=COMPANY).collect(),
            (None, Op::Burst { orders }) => orders.iter().map(|(m, _)| *m).collect(),
            (None, _) => Vec::new(),
        };
        driver.env.faults.pause(true);
        for m in members {
            driver
                .compare(m)
                .await
                .map_err(|what| fail(step, Some(op), what))?;
        }
        driver
            .compare_shared()
            .await
            .map_err(|what| fail(step, Some(op), what))?;
        driver.stats.steps += 1;
        if std::env::var("SIM_TRACE").is_ok() {
            eprintln!("SIM step {step} {op:?} nights={}", driver.stats.nights);
        }
    }
    driver.env.faults.pause(true);
    driver.stats.faults = driver.env.faults.counts();
    (driver.stats.campaign_points, driver.stats.campaign_short) =
        (driver.model.campaign_paid, driver.model.campaign_short);
    (driver.stats.tier_ups, driver.stats.tier_downs) =
        (driver.model.tier_ups, driver.model.tier_downs);
    driver.stats.faults.extend(queue.faults.counts());
    driver
        .finish()
        .await
        .map_err(|what| fail(ops.len(), None, what))?;
    Ok(driver.stats)
}

/// A queue name unique to this process and stack.
fn uuid_like(env: &TestEnv) -> String {
    format!(
        "{}-{}",
        std::process::id(),
        env.store
            .table
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    )
}

/// The fewest operations (found greedily) that still fail, with their failure.
pub async fn shrink(
    ops: &[Op],
    queue: &NightQueue,
    broken: Option<BrokenRule>,
    budget: usize,
) -> (Vec<Op>, Divergence) {
    let mut current: Vec<Op> = ops.to_vec();
    let mut failure = match Box::pin(run_against(&current, queue, broken)).await {
        Err(d) => d,
        Ok(_) => {
            return (
                current,
                Divergence {
                    step: 0,
                    op: None,
                    what: "passed when run again: not deterministic".into(),
                },
            )
        }
    };
    // Nothing after the failing step matters.
    current.truncate((failure.step + 1).min(current.len()));
    let mut runs = 0;
    let mut chunk = current.len() / 2;
    while chunk >= 1 && runs < budget {
        let mut i = 0;
        let mut removed_any = false;
        while i < current.len() && runs < budget {
            let mut candidate = current.clone();
            let end = (i + chunk).min(candidate.len());
            candidate.drain(i..end);
            runs += 1;
            match Box::pin(run_against(&candidate, queue, broken)).await {
                Err(d) => {
                    candidate.truncate((d.step + 1).min(candidate.len()));
                    current = candidate;
                    failure = d;
                    removed_any = true;
                }
                Ok(_) => i += chunk,
            }
        }
        if !removed_any {
            chunk /= 2;
        }
    }
    (current, failure)
}
