//! A partner's bulk imports over the partner API: the job (lines, who, when) and each line's
//! outcome as the deferred-webhooks worker booked it. Kept 90 days.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{from_item, keys, to_item, Store, StoreError};

pub const KEEP_DAYS: i64 = 90;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportJob {
    pub partner_id: String,
    pub import_id: String,
    pub lines: usize,
    /// Lines refused before they were queued (not JSON, no type or order id).
    pub refused_early: Vec<LineOutcome>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_ttl: i64,
}

/// What became of one line: the webhook's answer status, and its error code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineOutcome {
    pub line: usize,
    pub status: u16,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl Store {
    /// A new import's job item: false if the id is taken.
    pub async fn create_import(&self, job: &ImportJob) -> Result<bool, StoreError> {
        let item = to_item(
            (
                keys::import_pk(&job.partner_id, &job.import_id),
                "JOB".into(),
            ),
            "import",
            job,
        )?;
        self.try_commit(vec![self.put_new(item)?]).await
    }

    pub async fn put_import_line(
        &self,
        partner_id: &str,
        import_id: &str,
        outcome: &LineOutcome,
    ) -> Result<(), StoreError> {
        let ttl = (Utc::now() + Duration::days(KEEP_DAYS)).timestamp();
        let mut item = to_item(
            (
                keys::import_pk(partner_id, import_id),
                format!("LINE#{:07}", outcome.line),
            ),
            "import_line",
            outcome,
        )?;
        item.insert(
            crate::schema::TTL_ATTRIBUTE.into(),
            AttributeValue::N(ttl.to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// The import's job and every line's outcome so far (one Query, paged).
    pub async fn import_state(
        &self,
        partner_id: &str,
        import_id: &str,
    ) -> Result<Option<(ImportJob, Vec<LineOutcome>)>, StoreError> {
        let items = self
            .query_items(&keys::import_pk(partner_id, import_id), "")
            .await?;
        let mut job = None;
        let mut lines = Vec::new();
        for item in items {
            match item.get(keys::SK) {
                Some(AttributeValue::S(sk)) if sk == "JOB" => job = Some(from_item(item)?),
                _ => lines.push(from_item(item)?),
            }
        }
        Ok(job.map(|j| (j, lines)))
    }
}
