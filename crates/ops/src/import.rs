//! `bonus import orders`: a bulk import of the deliveries a shop lost (JSON lines of
//! canonical `order.paid`, `order.refunded` and `order.cancelled` events), booked through the
//! order webhook's own handler (`order_webhook::book_imported`): idempotent on the same
//! business keys as webhooks (the order id, the refund id), so an import run twice, or over
//! orders that did arrive, books nothing twice.

use std::collections::BTreeMap;

use bonus_dynamodb::keys;
use bonus_lambda::app::Ctx;
use serde::Deserialize;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub lines: usize,
    /// Booked by this run (refunds of orders not booked yet wait for them, and count here).
    pub booked: usize,
    /// Booked before (by a webhook or an earlier import): answered as then, nothing written.
    pub already_booked: usize,
    /// Refused, by error code (line numbers in `refusals`).
    pub refused: BTreeMap<String, usize>,
    /// (line number, code, message) of each refused line.
    pub refusals: Vec<(usize, String, String)>,
    /// Failed on our side (try the import again: it goes on where it stopped).
    pub failed: usize,
}

#[derive(Deserialize)]
struct Keys {
    #[serde(rename = "type")]
    event_type: String,
    order_id: String,
    #[serde(default)]
    refund_id: Option<String>,
}

/// The idempotency record a line's event has once booked (None: not one we can name).
fn record_keys(partner_id: &str, line: &str) -> Option<(String, String)> {
    let k: Keys = serde_json::from_str(line).ok()?;
    if !bonus_domain::ids::valid_external_id(&k.order_id) {
        return None;
    }
    let event = match k.event_type.as_str() {
        "order.paid" => "order.paid".to_string(),
        "order.cancelled" => "order.cancelled".to_string(),
        "order.refunded" => format!("order.refunded#{}", k.refund_id?),
        _ => return None,
    };
    Some(keys::order_event(partner_id, &k.order_id, &event))
}

/// Import `lines` for `partner_id`; `progress` is told after each line.
pub async fn import(
    ctx: &Ctx,
    partner_id: &str,
    lines: &[String],
    progress: impl Fn(usize),
) -> ImportSummary {
    let mut s = ImportSummary::default();
    for (i, line) in lines.iter().enumerate() {
        progress(i + 1);
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        s.lines += 1;
        let number = i + 1;
        if let Some(k) = record_keys(partner_id, text) {
            match ctx.store.get::<serde_json::Value>(k).await {
                Ok(Some(_)) => {
                    s.already_booked += 1;
                    continue;
                }
                Ok(None) => {}
                Err(_) => {
                    s.failed += 1;
                    continue;
                }
            }
        }
        let resp = Box::pin(order_webhook::book_imported(
            ctx,
            partner_id,
            text.as_bytes(),
        ))
        .await;
        let status = resp.status();
        if status.is_success() {
            s.booked += 1;
        } else if status.is_server_error() {
            s.failed += 1;
        } else {
            let body: serde_json::Value = serde_json::from_str(resp.body()).unwrap_or_default();
            let code = body["error"]["code"]
                .as_str()
                .unwrap_or("refused")
                .to_string();
            let message = body["error"]["message"].as_str().unwrap_or("").to_string();
            *s.refused.entry(code.clone()).or_default() += 1;
            s.refusals.push((number, code, message));
        }
    }
    s
}
