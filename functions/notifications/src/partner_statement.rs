//! A partner's monthly clearing statement, e-mailed to its finance contact (`finance_email`)
//! once the month is closed, with the point packs it bought that month (invoiced apart). The clearing worker queues one task per partner
//! (`{"clearing_statement": {...}}`); the message is claimed like a member message, so a
//! task delivered again, or the month closed again, sends nothing twice.

use std::sync::OnceLock;

use chrono::Duration;
use serde_json::json;
use tracing::{info, warn};

use bonus_domain::money::Money;
use bonus_domain::notify::Rendered;
use bonus_dynamodb::notify::{Claim, Delivery};
use bonus_lambda::app::Ctx;

use bonus_messages::send::{send_email, with_backoff};

use crate::deliver::CLAIM_LEASE_MINUTES;
use crate::{NotifyError, Outcome, Senders};

/// The task: [`bonus_domain::clearing::StatementMail`].
pub type PartnerStatementTask = bonus_domain::clearing::StatementMail;

const TEMPLATE: &str = r#"{% block subject %}{{ programme }}: clearing statement {{ month }} for {{ partner }}{% endblock %}
{% block text %}Clearing statement {{ month }}, {{ programme }}, partner {{ partner }} (1 point = {{ point_value }} {{ currency }}).

                                       points       value
Points you issued                 {{ "%11s"|format(s.issued) }} {{ "%11s"|format(v.issued) }}
Reversed by returns               {{ "%11s"|format(s.reversed) }} {{ "%11s"|format(v.reversed) }}
Your points spent with you        {{ "%11s"|format(s.redeemed_at_self) }} {{ "%11s"|format(v.at_self) }}
Your points spent at others       {{ "%11s"|format(s.redeemed_at_others) }} {{ "%11s"|format(v.at_others) }}
Others' points spent with you     {{ "%11s"|format(s.redeemed_from_others) }} {{ "%11s"|format(v.from_others) }}
Your points expired (breakage)    {{ "%11s"|format(s.expired) }} {{ "%11s"|format(v.expired) }}
Operator fee on breakage                      {{ "%11s"|format(v.fee) }}

Net: {{ v.net }} {{ currency }} ({% if s.net > 0 %}you are paid{% elif s.net < 0 %}you pay{% else %}nothing to settle{% endif %}).
{% for row in spent_at %}Your points spent at {{ row.0 }}: {{ row.1 }}
{% endfor %}{% if packs %}
Point packs bought in {{ month }} (invoiced apart from the clearing):
{% for p in packs %}  {{ p.pack_id }} for campaign {{ p.campaign_id }}: {{ p.points }} points, {{ p.price }} {{ currency }} (reference {{ p.reference }})
{% endfor %}  Total {{ packs_total }} {{ currency }}
{% endif %}
The month is closed: these figures are final. The full clearing (CSV, JSON) is available from the operator.
{% endblock %}
{% block html %}<!doctype html>
<html lang="en"><body style="font-family: sans-serif">
<h2>Clearing statement {{ month }}</h2>
<p>{{ programme }}, partner {{ partner }}; 1 point = {{ point_value }} {{ currency }}.</p>
<table cellpadding="4" style="border-collapse: collapse">
<tr><th align="left"></th><th align="right">points</th><th align="right">{{ currency }}</th></tr>
<tr><td>Points you issued</td><td align="right">{{ s.issued }}</td><td align="right">{{ v.issued }}</td></tr>
<tr><td>Reversed by returns</td><td align="right">{{ s.reversed }}</td><td align="right">{{ v.reversed }}</td></tr>
<tr><td>Your points spent with you</td><td align="right">{{ s.redeemed_at_self }}</td><td align="right">{{ v.at_self }}</td></tr>
<tr><td>Your points spent at others</td><td align="right">{{ s.redeemed_at_others }}</td><td align="right">{{ v.at_others }}</td></tr>
<tr><td>Others' points spent with you</td><td align="right">{{ s.redeemed_from_others }}</td><td align="right">{{ v.from_others }}</td></tr>
<tr><td>Your points expired (breakage)</td><td align="right">{{ s.expired }}</td><td align="right">{{ v.expired }}</td></tr>
<tr><td>Operator fee on breakage</td><td></td><td align="right">{{ v.fee }}</td></tr>
<tr><th align="left">Net</th><td></td><th align="right">{{ v.net }}</th></tr>
</table>
{% if packs %}<h3>Point packs bought in {{ month }}</h3>
<p>Invoiced apart from the clearing.</p>
<table cellpadding="4" style="border-collapse: collapse">
<tr><th align="left">pack</th><th align="left">campaign</th><th align="right">points</th><th align="right">{{ currency }}</th><th align="left">reference</th></tr>
{% for p in packs %}<tr><td>{{ p.pack_id }}</td><td>{{ p.campaign_id }}</td><td align="right">{{ p.points }}</td><td align="right">{{ p.price }}</td><td>{{ p.reference }}</td></tr>
{% endfor %}<tr><th align="left">Total</th><td></td><td></td><th align="right">{{ packs_total }}</th><td></td></tr>
</table>
{% endif %}<p>{% if s.net > 0 %}You are paid {{ v.net }} {{ currency }}.{% elif s.net < 0 %}You pay {{ v.net_abs }} {{ currency }}.{% else %}Nothing to settle.{% endif %} The month is closed: these figures are final.</p>
</body></html>
{% endblock %}
{% block sms %}{% endblock %}"#;

fn environment() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // A constant template: a failure here is a bug caught by the tests.
        if let Err(e) = env.add_template("partner_statement", TEMPLATE) {
            warn!(error = %e, "partner statement template");
        }
        env
    })
}

/// The e-mail for a partner's statement.
pub fn render(vars: &serde_json::Value) -> Result<Rendered, NotifyError> {
    Ok(bonus_messages::render_template(
        environment(),
        "partner_statement",
        "en",
        vars,
    )?)
}

/// Send one partner's statement of a closed month (nothing without a finance contact).
pub async fn run(
    ctx: &Ctx,
    senders: &Senders,
    task: &PartnerStatementTask,
) -> Result<Outcome, NotifyError> {
    let store = &ctx.store;
    let Some(partner) = store.get_partner(&task.partner_id).await? else {
        return Ok(Outcome::Sent(0));
    };
    let Some(address) = partner.finance_email.clone() else {
        return Ok(Outcome::Sent(0));
    };
    let (Some(programme), Some((_, clearing))) = (
        store.get_programme(&task.programme_id).await?,
        store.closed_month(&task.programme_id, &task.month).await?,
    ) else {
        return Err(NotifyError::BadTask(format!(
            "{} {} is not closed",
            task.programme_id, task.month
        )));
    };
    let Some(s) = clearing
        .statements
        .iter()
        .find(|s| s.partner_id == task.partner_id)
    else {
        return Ok(Outcome::Sent(0));
    };
    let m = |minor: i64| Money::new(minor, programme.currency).amount_string();
    // Point packs the partner bought that month: invoiced apart, listed with the statement.
    let packs = store.invoice_lines(&task.partner_id, &task.month).await?;
    let packs_total: i64 = packs.iter().map(|p| p.price_minor).sum();
    let vars = json!({
        "programme": programme.name,
        "partner": partner.name,
        "month": task.month,
        "currency": programme.currency.code(),
        "point_value": m(clearing.point_value_minor),
        "s": s,
        "v": {
            "issued": m(s.issued_value), "reversed": m(s.reversed_value),
            "at_self": m(s.redeemed_at_self_value), "at_others": m(s.redeemed_at_others_value),
            "from_others": m(s.redeemed_from_others_value), "expired": m(s.expired_value),
            "fee": m(s.breakage_fee), "net": m(s.net), "net_abs": m(s.net.abs()),
        },
        "packs": packs.iter().map(|p| json!({"pack_id": p.pack_id, "campaign_id": p.campaign_id,
            "points": p.points, "price": Money::new(p.price_minor, p.currency).amount_string(),
            "reference": p.reference})).collect::<Vec<_>>(),
        "packs_total": m(packs_total),
        "spent_at": clearing.matrix.get(&s.partner_id).map(|r| r.iter()
            .filter(|(at, _)| **at != s.partner_id)
            .map(|(at, p)| (at.clone(), *p)).collect::<Vec<_>>()).unwrap_or_default(),
    });
    let rendered = render(&vars)?;
    let now = ctx.now();
    let mut d = Delivery {
        event_id: format!(
            "clearing:{}:{}:{}",
            task.programme_id, task.month, task.partner_id
        ),
        channel: "email".into(),
        programme_id: task.programme_id.clone(),
        member_id: format!("partner:{}", task.partner_id),
        message: "partner_statement".into(),
        locale: "en".into(),
        status: "sending".into(),
        provider_id: None,
        at: now,
        summary: rendered.subject.clone(),
        failure: None,
        expires_ttl: (now + Duration::days(bonus_dynamodb::notify::KEEP_DAYS)).timestamp(),
    };
    let lease = Duration::minutes(CLAIM_LEASE_MINUTES);
    match store.claim_delivery(&d, now - lease).await? {
        Claim::Claimed => {}
        Claim::Done => return Ok(Outcome::Sent(0)),
        Claim::Busy(since) => return Ok(Outcome::Deferred(since + lease + Duration::seconds(1))),
    }
    match with_backoff(|| send_email(senders, &address, &rendered, None)).await {
        // The provider id is not kept: a bounce of a finance address is not a member's.
        Ok(_) => d.status = "sent".into(),
        Err(e) => {
            warn!(message_id = %d.event_id, code = %e.code(), "statement e-mail failed; retried later");
            store.release_delivery(&d).await?;
            return Err(NotifyError::Provider(e.code().to_string()));
        }
    }
    store.finish_delivery(&d).await?;
    info!(programme_id = %task.programme_id, month = %task.month, partner_id = %task.partner_id,
        "clearing statement sent");
    Ok(Outcome::Sent(1))
}
