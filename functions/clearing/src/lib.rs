//! The monthly coalition clearing.
//!
//! On the 1st (13:00 UTC, when the month is over in every time zone) the **planner** puts
//! one task per coalition programme on the clearing queue. The **worker** closes that
//! programme's month: it reads each partner's counters (one Query per partner, O(partners x
//! shards) items, never the ledger entries), computes the statements and the matrix
//! ([`bonus_domain::clearing::clear`]), checks conservation, and writes the closed month once.
//! A failed check stops the task loudly: an error log, a failed batch item, after a few
//! tries the dead-letter queue and its alarm. Then it fans out one statement e-mail per
//! partner with a finance contact over the notifications queue.
//!
//! Running a month again recomputes it and compares: the same figures write nothing; other
//! figures are an error (the stored month stands).

use bonus_metrics::name;
use std::collections::BTreeMap;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tracing::{error, info};

use bonus_domain::clearing::{clear, Clearing, ClearingInput, ConservationError, StatementMail};
use bonus_domain::month::Month;
use bonus_domain::programme::{Programme, ProgrammeKind};
use bonus_dynamodb::clearing::Closing;
use bonus_dynamodb::{Store, StoreError};
use bonus_lambda::app::Ctx;
use bonus_sqs::{self as queue, QueueError};

/// Partners whose counters are read at once.
const READ_CONCURRENCY: usize = 16;
/// How long after the month's end (programme time) it may be closed: in-flight ledger
/// transactions of the month's last seconds have long committed by then.
pub const GRACE_MINUTES: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ClearingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("conservation check failed for {programme_id} {month}: {source}")]
    Conservation {
        programme_id: String,
        month: String,
        source: ConservationError,
    },
    #[error("{programme_id} {month} was closed with other figures; the stored month stands (the counters changed after the close: run `bonus audit`)")]
    Differs { programme_id: String, month: String },
    #[error("unknown programme {0}")]
    UnknownProgramme(String),
    #[error("{0} is not a coalition: its points move no money between partners")]
    NotCoalition(String),
    #[error("{month} is not over yet in {time_zone} (plus {GRACE_MINUTES} minutes)")]
    NotOver { month: String, time_zone: String },
    #[error("bad task: {0}")]
    BadTask(String),
}

/// One task on the clearing queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseTask {
    pub programme_id: String,
    /// `YYYY-MM`.
    pub month: String,
}

/// A programme's clearing input for a month: every partner's counters (read concurrently,
/// one Query each) and the change of the members' outstanding points.
pub async fn input(
    store: &Store,
    programme: &Programme,
    month: &str,
) -> Result<ClearingInput, StoreError> {
    let ids = store.partner_ids(&programme.id).await?;
    let partners: BTreeMap<_, _> = stream::iter(ids)
        .map(|id| async move {
            let c = store.partner_counters(&programme.id, month, &id).await?;
            Ok::<_, StoreError>((id, c))
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let outstanding_change = store.outstanding_change(&programme.id, month).await?;
    Ok(ClearingInput {
        programme_id: programme.id.clone(),
        month: month.to_string(),
        point_value_minor: programme.point_value_minor,
        breakage_fee_percent: programme.breakage_fee_percent,
        // Partners without any movement get no statement.
        partners: partners
            .into_iter()
            .filter(|(_, c)| *c != Default::default())
            .collect(),
        outstanding_change,
    })
}

async fn programme(store: &Store, programme_id: &str) -> Result<Programme, ClearingError> {
    store
        .get_programme(programme_id)
        .await?
        .ok_or_else(|| ClearingError::UnknownProgramme(programme_id.to_string()))
}

/// The month's figures from the counters, checked, without writing (a month still open,
/// or a closed one recomputed).
pub async fn compute(
    store: &Store,
    programme_id: &str,
    month: &str,
) -> Result<Clearing, ClearingError> {
    compute_for(store, &programme(store, programme_id).await?, month).await
}

async fn compute_for(
    store: &Store,
    programme: &Programme,
    month: &str,
) -> Result<Clearing, ClearingError> {
    let input = input(store, programme, month).await?;
    clear(&input).map_err(|source| ClearingError::Conservation {
        programme_id: programme.id.clone(),
        month: month.to_string(),
        source,
    })
}

/// Close a coalition programme's month (see the module docs). Returns the clearing and
/// whether it was written now or reproduced.
pub async fn close(
    store: &Store,
    programme_id: &str,
    month: &str,
    now: DateTime<Utc>,
) -> Result<(Clearing, Closing), ClearingError> {
    let programme = programme(store, programme_id).await?;
    if programme.kind != ProgrammeKind::Coalition {
        return Err(ClearingError::NotCoalition(programme_id.to_string()));
    }
    let over = month
        .parse::<Month>()
        .ok()
        .and_then(|m| m.bounds(programme.time_zone))
        .ok_or_else(|| ClearingError::BadTask(format!("month '{month}' is not YYYY-MM")))?
        .1;
    if now < over + Duration::minutes(GRACE_MINUTES) {
        return Err(ClearingError::NotOver {
            month: month.to_string(),
            time_zone: programme.time_zone.to_string(),
        });
    }
    let clearing = compute_for(store, &programme, month).await?;
    let closing = store
        .close_month(&clearing, programme.breakage_fee_percent, now)
        .await?;
    if let Closing::Differs { .. } = closing {
        return Err(ClearingError::Differs {
            programme_id: programme_id.to_string(),
            month: month.to_string(),
        });
    }
    Ok((clearing, closing))
}

/// What the planner answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannerSummary {
    pub month: String,
    pub programmes: Vec<String>,
}

/// The planner: one close task per coalition programme for last month (`{"month":
/// "YYYY-MM"}` in the event closes another month).
pub async fn planner(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: &serde_json::Value,
) -> Result<PlannerSummary, ClearingError> {
    let month = match event.get("month").and_then(|m| m.as_str()) {
        Some(m) => m
            .parse::<Month>()
            .map_err(|e| ClearingError::BadTask(e.to_string()))?
            .to_string(),
        // Last month, in UTC (the schedule runs when every time zone has left it).
        None => Month::of(ctx.now(), chrono_tz::UTC).previous().to_string(),
    };
    let mut summary = PlannerSummary {
        month: month.clone(),
        programmes: Vec::new(),
    };
    let mut bodies = Vec::new();
    for id in ctx.store.programme_ids().await? {
        let Some(p) = ctx.store.get_programme(&id).await? else {
            continue;
        };
        if p.kind == ProgrammeKind::Coalition {
            let task = CloseTask {
                programme_id: id.clone(),
                month: month.clone(),
            };
            bodies.push(
                serde_json::to_string(&task).map_err(|e| ClearingError::BadTask(e.to_string()))?,
            );
            summary.programmes.push(id);
        }
    }
    queue::send_all(sqs, queue_url, &bodies).await?;
    info!(month = %month, programmes = summary.programmes.len(), "clearing tasks queued");
    Ok(summary)
}

/// Close one task's month and queue the partners' statement e-mails (the notifications
/// consumer sends each once, however often this runs).
pub async fn run_task(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    notify_url: &str,
    task: &CloseTask,
) -> Result<Closing, ClearingError> {
    let (clearing, closing) = close(&ctx.store, &task.programme_id, &task.month, ctx.now()).await?;
    let mut bodies = Vec::new();
    for s in &clearing.statements {
        let partner = ctx.store.get_partner(&s.partner_id).await?;
        if partner.is_some_and(|p| p.finance_email.is_some()) {
            let mail = StatementMail {
                programme_id: task.programme_id.clone(),
                month: task.month.clone(),
                partner_id: s.partner_id.clone(),
            };
            bodies.push(serde_json::json!({ "clearing_statement": mail }).to_string());
        }
    }
    if !notify_url.is_empty() {
        queue::send_all(sqs, notify_url, &bodies).await?;
    }
    if matches!(closing, Closing::Written) {
        // Once per month and programme: a re-run that reproduces the close counts nothing.
        let programme = [("Programme", task.programme_id.as_str())];
        let between: i64 = clearing
            .statements
            .iter()
            .map(|s| s.redeemed_at_others)
            .sum();
        bonus_metrics::count(
            name::CLEARING_STATEMENTS,
            &programme,
            clearing.statements.len() as i64,
        );
        bonus_metrics::count(name::CLEARING_POINTS, &programme, between);
    }
    info!(programme_id = %task.programme_id, month = %task.month,
        partners = clearing.statements.len(), closing = ?closing_name(&closing),
        mails = bodies.len(), "clearing month closed");
    Ok(closing)
}

fn closing_name(c: &Closing) -> &'static str {
    match c {
        Closing::Written => "written",
        Closing::Reproduced => "reproduced",
        Closing::Differs { .. } => "differs",
    }
}

/// The worker Lambda: each record parsed on its own; failures are reported back (partial
/// batch response), retried, and after 3 receives land in the dead-letter queue (alarmed).
pub async fn handle_sqs(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    notify_url: &str,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match serde_json::from_str::<CloseTask>(record.body.as_deref().unwrap_or(""))
        {
            // Boxed: the SDK futures nest deeply (the Lambda runtime's type gets too deep).
            Ok(task) => Box::pin(run_task(ctx, sqs, notify_url, &task))
                .await
                .map(|_| ()),
            Err(e) => Err(ClearingError::BadTask(e.to_string())),
        };
        if let Err(e) = outcome {
            error!(message_id = %id, error = %e, "CLEARING FAILED");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// The statements as CSV: one row per partner, points and values (minor units).
pub fn csv(c: &Clearing) -> String {
    let mut out = String::from(
        "programme,month,partner,issued,reversed,redeemed_at_self,redeemed_at_others,\
         redeemed_from_others,expired,issued_value,reversed_value,redeemed_at_self_value,\
         redeemed_at_others_value,redeemed_from_others_value,expired_value,breakage_fee,net\n",
    );
    for s in &c.statements {
        let cols: Vec<i64> = s
            .points()
            .into_iter()
            .chain(s.values())
            .chain([s.breakage_fee, s.net])
            .collect();
        let cols: Vec<String> = cols.iter().map(i64::to_string).collect();
        out.push_str(&format!(
            "{},{},{},{}\n",
            c.programme_id,
            c.month,
            s.partner_id,
            cols.join(",")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_end_at_local_midnight() {
        let month = |s: &str| s.parse::<Month>().unwrap();
        let (start, end) = month("2026-11").bounds(chrono_tz::Europe::Berlin).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-10-31T23:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-11-30T23:00:00+00:00");
        let (_, end) = month("2026-12")
            .bounds(chrono_tz::Pacific::Honolulu)
            .unwrap();
        assert_eq!(end.to_rfc3339(), "2027-01-01T10:00:00+00:00");
        assert!("2026-13".parse::<Month>().is_err());
        let now: DateTime<Utc> = "2027-01-01T13:00:00Z".parse().unwrap();
        assert_eq!(Month::of(now, chrono_tz::UTC).previous(), month("2026-12"));
    }
}
