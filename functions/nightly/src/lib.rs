//! The nightly job, fanned out over SQS.
//!
//! - **Planner** ([`plan_run`], [`enqueue`], [`finish_run`]): for each programme, the nights
//!   from its cursor to `as_of`, one task per night and index shard on the work queue; then
//!   the cursor moves to `as_of`. It also sweeps lapsed checkout holds.
//! - **Worker** ([`run_task`], [`handle_sqs`]): for its night and shard, reads the members
//!   indexed as due (nothing else) and writes each member's night (`bonus_domain::nightly`)
//!   conditional on the account version read. A task carries the run's `as_of`, so a member
//!   is brought all the way up to `as_of` whichever night's task finds it first: tasks may
//!   run in any order, and a missed night is caught up in one go.
//!
//! Re-running a night changes nothing: members already processed up to it are skipped, and a
//! shard that finished is remembered.

use bonus_metrics::name;
use std::collections::HashMap;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use bonus_domain::nightly::{plan_night, NightCounts, NIGHT_SHARDS};
use bonus_domain::programme::Programme;
use bonus_dynamodb::nightly::{NightCursor, ShardDone};
use bonus_dynamodb::retry;
use bonus_dynamodb::{Store, StoreError};
use bonus_sqs::{self as queue, QueueError};

/// How far back a programme's first run looks for members due earlier.
pub const FIRST_RUN_DAYS: i64 = 31;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("programme {0} not found")]
    NoProgramme(String),
    #[error("member {0}: {1}")]
    Member(String, String),
    #[error("bad task: {0}")]
    BadTask(String),
}

/// One unit of work: the members of a programme indexed as due on `night`, in one shard,
/// brought up to `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub programme_id: String,
    pub night: NaiveDate,
    pub as_of: NaiveDate,
    pub shard: u32,
}

/// What the planner decided for a run.
#[derive(Debug, Clone, Default)]
pub struct RunPlan {
    pub as_of: Option<NaiveDate>,
    pub tasks: Vec<Task>,
    /// Programmes and the nights they cover.
    pub programmes: Vec<(String, Vec<NaiveDate>)>,
    /// Items read by the planner's probes (one per shard with work).
    pub probes_read: u64,
}

/// The nights each programme needs for `as_of`: from the night after its cursor to `as_of`
/// in date order (`as_of` alone when it was done already: an explicit re-run).
impl RunPlan {
    /// The most nights any programme catches up in this run.
    pub fn nights(&self) -> usize {
        self.programmes
            .iter()
            .map(|(_, n)| n.len())
            .max()
            .unwrap_or(0)
    }
}

pub async fn plan_run(store: &Store, as_of: NaiveDate) -> Result<RunPlan, JobError> {
    let mut plan = RunPlan {
        as_of: Some(as_of),
        ..RunPlan::default()
    };
    for programme_id in store.programme_ids().await? {
        let first = match store.night_cursor(&programme_id).await? {
            Some(c) if c.last_done >= as_of => as_of,
            Some(c) => c.last_done + Duration::days(1),
            None => as_of - Duration::days(FIRST_RUN_DAYS),
        };
        let nights: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= as_of).collect();
        for night in &nights {
            for shard in 0..NIGHT_SHARDS {
                // Only shards with someone due become tasks (at most one item read each).
                if store.any_due(&programme_id, *night, shard).await? {
                    plan.probes_read += 1;
                    plan.tasks.push(Task {
                        programme_id: programme_id.clone(),
                        night: *night,
                        as_of,
                        shard,
                    });
                }
            }
        }
        plan.programmes.push((programme_id, nights));
    }
    Ok(plan)
}

pub async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    tasks: &[Task],
) -> Result<(), JobError> {
    let bodies = tasks
        .iter()
        .map(|t| serde_json::to_string(t).map_err(|e| JobError::BadTask(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    queue::send_all(sqs, queue_url, &bodies).await?;
    Ok(())
}

/// Move each programme's cursor to `as_of` (once its tasks are on the queue: a task that
/// fails ends in the dead-letter queue, with an alarm, and a redrive finishes it).
pub async fn finish_run(store: &Store, plan: &RunPlan, now: DateTime<Utc>) -> Result<(), JobError> {
    let Some(as_of) = plan.as_of else {
        return Ok(());
    };
    for (programme_id, _) in &plan.programmes {
        let last_done = match store.night_cursor(programme_id).await? {
            Some(c) => c.last_done.max(as_of),
            None => as_of,
        };
        store
            .set_night_cursor(&NightCursor {
                programme_id: programme_id.clone(),
                last_done,
                updated_at: now,
            })
            .await?;
    }
    Ok(())
}

/// Programmes, loaded once per worker invocation.
#[derive(Default)]
pub struct Programmes(HashMap<String, Programme>);

impl Programmes {
    async fn get(&mut self, store: &Store, id: &str) -> Result<Programme, JobError> {
        if let Some(p) = self.0.get(id) {
            return Ok(p.clone());
        }
        let p = store
            .get_programme(id)
            .await?
            .ok_or_else(|| JobError::NoProgramme(id.to_string()))?;
        self.0.insert(id.to_string(), p.clone());
        Ok(p)
    }
}

/// Do one task. A shard already done is skipped.
pub async fn run_task(
    store: &Store,
    programmes: &mut Programmes,
    task: &Task,
    now: DateTime<Utc>,
) -> Result<ShardDone, JobError> {
    if let Some(done) = store
        .shard_done(&task.programme_id, task.night, task.shard)
        .await?
    {
        // A re-delivered task: the shard's work is done (and doing it again would change
        // nothing: members are only ever brought forward).
        return Ok(ShardDone {
            counts: NightCounts::default(),
            items_read: 0,
            done_at: done.done_at,
        });
    }
    let programme = programmes.get(store, &task.programme_id).await?;
    let due = store
        .due_members(&task.programme_id, task.night, task.shard)
        .await?;
    let mut items_read = due.len() as u64;
    let mut counts = NightCounts::default();
    // One member that cannot be brought forward must not keep the others back: it is
    // logged, and the task fails at the end (so it is retried; the members written are
    // done and skipped then) instead of at that member.
    let mut failed: Vec<String> = Vec::new();
    for account in due {
        let member = account.member_id.clone();
        match bring_forward(store, &programme, task, account, now, &mut counts).await {
            Ok(reads) => items_read += reads,
            Err(e) => {
                tracing::error!(member_id = %member, error = %e, "member's night not written");
                failed.push(member);
            }
        }
    }
    if let Some(first) = failed.first() {
        return Err(JobError::Member(
            first.clone(),
            format!(
                "{} member(s) of the shard not brought forward; the task is retried",
                failed.len()
            ),
        ));
    }
    let done = ShardDone {
        counts,
        done_at: now,
        items_read,
    };
    store
        .mark_shard_done(&task.programme_id, task.night, task.shard, &done)
        .await?;
    Ok(done)
}

/// Bring one member up to the task's night: plan, write, and again while the night is
/// written in several plans (a long pause) or the account moved under the job. Returns the
/// extra items read.
async fn bring_forward(
    store: &Store,
    programme: &Programme,
    task: &Task,
    mut account: bonus_domain::account::Account,
    now: DateTime<Utc>,
    counts: &mut NightCounts,
) -> Result<u64, JobError> {
    let member = account.member_id.clone();
    let mut items_read = 0;
    let mut first = true;
    let mut retry = store.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        // Each pass re-reads at once unless it asks to back off.
        retry.now();
        let Some(plan) = plan_night(programme, &account, task.as_of, now)
            .map_err(|e| JobError::Member(member.clone(), e.to_string()))?
        else {
            return Ok(items_read); // already brought up to as_of
        };
        if store.write_night(&plan, account.version).await? {
            let mut c = plan.counts;
            // A member counts once, however many plans its night took.
            c.members = u64::from(first);
            first = false;
            *counts += c;
            if plan.complete {
                return Ok(items_read);
            }
            // More of the night is left: go on from what was just written.
            account = plan.account;
            retry = store.retry();
            continue;
        }
        // The index is eventually consistent and members keep buying: read and replan.
        items_read += 1;
        match store.get_account(&task.programme_id, &member).await? {
            Some(fresh) => account = fresh,
            None => return Ok(items_read),
        }
    }
    Err(JobError::Member(
        member,
        "kept changing under the job".into(),
    ))
}

/// The worker Lambda: each record is parsed on its own, so one bad body never fails the
/// batch; failed records are reported back (partial batch response) and retried, and after
/// 5 receives land in the dead-letter queue.
pub async fn handle_sqs(store: &Store, event: SqsEvent, now: DateTime<Utc>) -> SqsBatchResponse {
    let mut programmes = Programmes::default();
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let task: Result<Task, _> = serde_json::from_str(record.body.as_deref().unwrap_or(""));
        let outcome = match task {
            Ok(task) => run_task(store, &mut programmes, &task, now)
                .await
                .map(|done| {
                    let programme = [("Programme", task.programme_id.as_str())];
                    bonus_metrics::count(name::NIGHTLY_ACCOUNTS, &programme, done.counts.members as i64);
                    bonus_metrics::count(name::POINTS_RELEASED, &programme, done.counts.points_released);
                    info!(programme_id = %task.programme_id, night = %task.night, shard = task.shard,
                        members = done.counts.members, expired = done.counts.points_expired,
                        items_read = done.items_read, "night shard done");
                }),
            Err(e) => Err(JobError::BadTask(e.to_string())),
        };
        if let Err(e) = outcome {
            bonus_metrics::count(name::NIGHTLY_FAILURES, &[], 1);
            error!(message_id = %id, error = %e, "night task failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    if !failures.is_empty() {
        warn!(failed = failures.len(), "night tasks reported for retry");
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// What the planner answers (and the CLI prints).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlannerSummary {
    pub as_of: Option<NaiveDate>,
    pub tasks: usize,
    pub nights: usize,
    pub holds_swept: usize,
}

/// The night a scheduled run is for: `{"as_of": "2027-01-15"}` in the event, else yesterday
/// (UTC). The schedule runs at 01:30 UTC, after the previous day ended in the programme
/// time zones of Europe.
pub fn as_of_from_event(
    event: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<NaiveDate, JobError> {
    match event.get("as_of").and_then(|v| v.as_str()) {
        Some(text) => text
            .parse()
            .map_err(|_| JobError::BadTask(format!("as_of: '{text}' is not a date (YYYY-MM-DD)"))),
        None => Ok(now.date_naive() - Duration::days(1)),
    }
}

/// The planner Lambda: sweep lapsed holds, put the run's tasks on the work queue, move the
/// cursors.
pub async fn planner(
    ctx: &bonus_lambda::app::Ctx,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: &serde_json::Value,
) -> Result<PlannerSummary, JobError> {
    let now = ctx.now();
    let as_of = as_of_from_event(event, now)?;
    let swept = bonus_services::holds::sweep(ctx, 1_000)
        .await
        .map_err(|e| JobError::BadTask(format!("hold sweep: {}", e.message)))?;
    let plan = plan_run(&ctx.store, as_of).await?;
    enqueue(sqs, queue_url, &plan.tasks).await?;
    finish_run(&ctx.store, &plan, now).await?;
    let summary = PlannerSummary {
        as_of: Some(as_of),
        tasks: plan.tasks.len(),
        nights: plan.nights(),
        holds_swept: swept.released,
    };
    info!(as_of = %as_of, tasks = summary.tasks, holds_swept = summary.holds_swept, "night planned");
    Ok(summary)
}

/// What a whole run did (the CLI's summary; the benchmark's figures).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunSummary {
    pub as_of: Option<NaiveDate>,
    pub nights: usize,
    pub tasks: usize,
    pub holds_swept: usize,
    pub counts: NightCounts,
    /// DynamoDB items the workers read (the due members, plus re-reads on conflicts).
    pub items_read: u64,
}

/// Run the planner and the workers in this process, over a real queue (moto locally):
/// what `bonus run nightly` does on the local stack. `progress(done, total)` is called as
/// tasks finish.
pub async fn run_in_process(
    ctx: &bonus_lambda::app::Ctx,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    as_of: NaiveDate,
    progress: impl Fn(usize, usize),
) -> Result<RunSummary, JobError> {
    let now = ctx.now();
    let swept = bonus_services::holds::sweep(ctx, 1_000)
        .await
        .map_err(|e| JobError::BadTask(format!("hold sweep: {}", e.message)))?;
    let plan = plan_run(&ctx.store, as_of).await?;
    enqueue(sqs, queue_url, &plan.tasks).await?;
    let mut summary = RunSummary {
        as_of: Some(as_of),
        nights: plan.nights(),
        tasks: plan.tasks.len(),
        holds_swept: swept.released,
        items_read: plan.probes_read,
        ..RunSummary::default()
    };
    let mut programmes = Programmes::default();
    let mut done = 0usize;
    let mut idle = 0u32;
    while done < plan.tasks.len() {
        let batch = queue::receive(sqs, queue_url, 1).await?;
        if batch.is_empty() {
            idle += 1;
            if idle > 30 {
                return Err(JobError::BadTask(format!(
                    "{} of {} tasks never came back from the queue",
                    plan.tasks.len() - done,
                    plan.tasks.len()
                )));
            }
            continue;
        }
        idle = 0;
        for message in batch {
            let task: Task = match serde_json::from_str(&message.body) {
                Ok(t) => t,
                Err(e) => {
                    warn!(error = %e, "not a night task; left for the dead-letter queue");
                    continue;
                }
            };
            match run_task(&ctx.store, &mut programmes, &task, now).await {
                Ok(shard) => {
                    queue::delete(sqs, queue_url, &message.receipt_handle).await?;
                    summary.counts += shard.counts;
                    summary.items_read += shard.items_read;
                    done += 1;
                    progress(done, plan.tasks.len());
                }
                Err(e) => warn!(error = %e, "night task failed; it will be retried"),
            }
        }
    }
    finish_run(&ctx.store, &plan, now).await?;
    Ok(summary)
}
