//! The monthly statement e-mail: earned, spent, expired, available, expiring soon.
//!
//! On the 1st the scheduler asks for last month's statements ([`plan`]): one task per
//! programme and member-list shard goes onto the notifications queue. A shard task pages
//! through its members, 500 at a time, putting one task per member on the queue and its own
//! continuation last, so no Lambda runs long however many members there are. A member task
//! sums the month's statement entries and sends one e-mail, claimed like any message:
//! running the month again sends nothing twice.

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use bonus_domain::month::Month;
use bonus_domain::notify;
use bonus_dynamodb::keys::MEMBER_LIST_SHARDS;
use bonus_lambda::app::Ctx;
use bonus_sqs as queue;

use crate::deliver::{self, Message};
use crate::{NotifyError, Outcome, Senders};

/// Members per shard task.
pub const PAGE: i32 = 500;

/// One statement task on the notifications queue (body `{"statement": {...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementTask {
    pub programme_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// A member-list shard to page through (from `after`) ...
    #[serde(default)]
    pub shard: Option<u32>,
    #[serde(default)]
    pub after: Option<String>,
    /// ... or one member's statement.
    #[serde(default)]
    pub member_id: Option<String>,
}

fn body(task: &StatementTask) -> Result<String, NotifyError> {
    serde_json::to_string(&json!({ "statement": task }))
        .map_err(|e| NotifyError::Provider(e.to_string()))
}

/// The month before `today`'s, as `YYYY-MM`.
pub fn previous_month(today: NaiveDate) -> String {
    Month::of_date(today).previous().to_string()
}

/// Queue the statements of `month` for every programme that sends them. Returns the tasks.
pub async fn plan(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    month: &str,
) -> Result<usize, NotifyError> {
    let mut bodies = Vec::new();
    for id in ctx.store.programme_ids().await? {
        let Some(programme) = ctx.store.get_programme(&id).await? else {
            continue;
        };
        if !programme.messages.monthly_statement {
            continue;
        }
        for shard in 0..MEMBER_LIST_SHARDS {
            bodies.push(body(&StatementTask {
                programme_id: id.clone(),
                month: month.to_string(),
                shard: Some(shard),
                after: None,
                member_id: None,
            })?);
        }
    }
    queue::send_all(sqs, queue_url, &bodies).await?;
    Ok(bodies.len())
}

/// Run one statement task.
pub async fn run(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    task: &StatementTask,
) -> Result<Outcome, NotifyError> {
    match (&task.member_id, task.shard) {
        (Some(member), _) => member_statement(ctx, senders, task, member).await,
        (None, Some(shard)) => {
            let (members, next) = ctx
                .store
                .members_page(&task.programme_id, shard, task.after.as_deref(), PAGE)
                .await?;
            let mut bodies = members
                .into_iter()
                .map(|m| {
                    body(&StatementTask {
                        member_id: Some(m),
                        shard: None,
                        after: None,
                        ..task.clone()
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(after) = next {
                bodies.push(body(&StatementTask {
                    after: Some(after),
                    ..task.clone()
                })?);
            }
            queue::send_all(sqs, queue_url, &bodies).await?;
            Ok(Outcome::Sent(0))
        }
        (None, None) => Err(NotifyError::BadTask(
            "statement task without member or shard".into(),
        )),
    }
}

async fn member_statement(
    ctx: &Ctx,
    senders: &Senders,
    task: &StatementTask,
    member_id: &str,
) -> Result<Outcome, NotifyError> {
    let p = &task.programme_id;
    let first = NaiveDate::parse_from_str(&format!("{}-01", task.month), "%Y-%m-%d")
        .map_err(|_| NotifyError::BadTask(format!("month '{}' is not YYYY-MM", task.month)))?;
    let Some(profile) = ctx.store.get_profile(p, member_id).await? else {
        return Ok(Outcome::Sent(0));
    };
    if !notify::channels(&profile).contains(&notify::Channel::Email) {
        return Ok(Outcome::Sent(0));
    }
    let (Some(programme), Some(account)) = (
        ctx.store.get_programme(p).await?,
        ctx.store.get_account(p, member_id).await?,
    ) else {
        return Ok(Outcome::Sent(0));
    };
    // The month in the programme's calendar.
    let next_first = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let local_midnight = |d: NaiveDate| {
        programme
            .time_zone
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map_or(Utc::now(), |t| t.with_timezone(&Utc))
    };
    let (from, to) = (local_midnight(first), local_midnight(next_first));
    // Statement entries, newest first, until the month's start.
    let mut entries = Vec::new();
    let mut before = None;
    loop {
        let (page, more) = ctx
            .store
            .entries_page(p, member_id, 100, before, None)
            .await?;
        let reached_start = page.last().is_none_or(|e| e.at < from);
        before = page.last().map(|e| e.seq);
        entries.extend(page);
        if !more || reached_start {
            break;
        }
    }
    let totals = notify::month_totals(&entries, from, to);
    let view = account.view(&programme, ctx.now());
    if totals == notify::MonthTotals::default() && view.available == 0 && view.pending == 0 {
        return Ok(Outcome::Sent(0)); // nothing to say
    }
    let tz = deliver::member_tz(&profile, Some(&programme));
    let mut vars = json!({
        "month": notify::format_month(&profile.locale, first.year(), first.month()),
        "earned": totals.earned,
        "spent": totals.spent,
        "expired": totals.expired,
        "available": view.available,
        "expiring_soon": view.expiring_30d,
    });
    deliver::add_common(ctx, &mut vars, Some(&programme), senders, (p, member_id));
    let msg = Message {
        id: format!("statement:{p}:{member_id}:{}", task.month),
        template: "monthly_statement",
        vars,
        on: deliver::EMAIL_ONLY,
    };
    deliver::send(ctx, senders, &profile, tz, &msg).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_is_for_the_month_before() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(previous_month(d("2026-12-01")), "2026-11");
        assert_eq!(previous_month(d("2027-01-01")), "2026-12");
        assert_eq!(previous_month(d("2026-03-15")), "2026-02");
    }
}
