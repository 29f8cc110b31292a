//! The partner's own settings:
//! - `GET /v1/partner`: who it is, its programme, its own rates and redemption limits;
//! - `PATCH /v1/partner` `{rates?, redemption?}`: its own base rate and product-group
//!   coefficients (they replace the programme's for orders at this partner, which issues
//!   those points and pays for them in clearing), and when and how much members may spend
//!   here, and its sandbox mode (`sandbox: true`: its orders are answered, never booked),
//!   and its subscription to its members' events (`webhooks: {url, events}`, outgoing
//!   webhooks signed with its webhook secret).
//!   `null` removes a setting. Made over the version read, recorded in the audit trail.

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::changes::{Change, Subject};
use bonus_domain::config::PartnerRatesIn;
use bonus_domain::outgoing::Subscription;
use bonus_domain::programme::{Partner, PartnerRates, RedemptionLimits};
use bonus_lambda::api::{json, parse_json, Error, Response};
use bonus_lambda::app::Ctx;

use crate::{actor, authorise};

#[derive(Debug, Serialize)]
struct SettingsView<'a> {
    partner_id: &'a str,
    name: &'a str,
    programme_id: &'a str,
    time_zone: String,
    currency: &'a str,
    /// The rates orders here earn at: the partner's own where set, else the programme's.
    earning: EarningView,
    rates: &'a PartnerRates,
    redemption: &'a RedemptionLimits,
    /// Orders are answered, never booked.
    sandbox: bool,
    webhooks: Option<&'a Subscription>,
}

#[derive(Debug, Serialize)]
struct EarningView {
    points_per_unit: String,
    product_groups: std::collections::BTreeMap<String, String>,
}

/// What the partner's settings are; also the settings stored in its audit trail.
#[derive(Debug, Serialize)]
struct Stored<'a> {
    rates: &'a PartnerRates,
    redemption: &'a RedemptionLimits,
    sandbox: bool,
    webhooks: Option<&'a Subscription>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    /// Absent: unchanged; null: the programme's.
    #[serde(default, with = "double_option")]
    rates: Option<Option<PartnerRatesIn>>,
    #[serde(default, with = "double_option")]
    redemption: Option<Option<RedemptionLimits>>,
    #[serde(default)]
    sandbox: Option<bool>,
    #[serde(default, with = "double_option")]
    webhooks: Option<Option<Subscription>>,
}

/// `Option<Option<T>>` that tells an absent field (None) from `null` (Some(None)).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn view<'a>(
    partner: &'a Partner,
    programme: &'a bonus_domain::programme::Programme,
) -> SettingsView<'a> {
    let effective = programme.with_partner_rates(partner);
    SettingsView {
        partner_id: &partner.id,
        name: &partner.name,
        programme_id: &programme.id,
        time_zone: partner.time_zone.name().to_string(),
        currency: programme.currency.code(),
        earning: EarningView {
            points_per_unit: effective.points_per_unit.normalize().to_string(),
            product_groups: effective
                .product_groups
                .iter()
                .map(|(g, c)| (g.clone(), c.0.normalize().to_string()))
                .collect(),
        },
        rates: &partner.rates,
        redemption: &partner.redemption,
        sandbox: partner.sandbox,
        webhooks: partner.webhooks.as_ref(),
    }
}

pub(crate) async fn show(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let partner = crate::stored_partner(ctx, &key).await?;
    Ok(json(StatusCode::OK, &view(&partner, &key.programme)))
}

pub(crate) async fn update(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let patch: SettingsPatch = parse_json(req.body())?;
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        bonus_dynamodb::retry::pause(pause).await;
        let old = crate::stored_partner(ctx, &key).await?;
        let mut new = old.clone();
        match &patch.rates {
            None => {}
            Some(None) => new.rates = PartnerRates::default(),
            Some(Some(r)) => new.rates = r.to_rates(),
        }
        match &patch.redemption {
            None => {}
            Some(None) => new.redemption = RedemptionLimits::default(),
            Some(Some(r)) => new.redemption = r.clone(),
        }
        if let Some(on) = patch.sandbox {
            new.sandbox = on;
        }
        if let Some(w) = &patch.webhooks {
            if let Some(w) = w {
                w.validate()
                    .map_err(|e| Error::invalid("invalid_field", e))?;
            }
            new.webhooks = w.clone();
        }
        new.rates
            .validate()
            .map_err(|e| Error::invalid("invalid_field", format!("rates.{e}")))?;
        new.redemption
            .validate()
            .map_err(|e| Error::invalid("invalid_field", format!("redemption.{e}")))?;
        if new.rates == old.rates
            && new.redemption == old.redemption
            && new.sandbox == old.sandbox
            && new.webhooks == old.webhooks
        {
            return Ok(json(StatusCode::OK, &view(&old, &key.programme)));
        }
        let before = Stored {
            rates: &old.rates,
            redemption: &old.redemption,
            sandbox: old.sandbox,
            webhooks: old.webhooks.as_ref(),
        };
        let after = Stored {
            rates: &new.rates,
            redemption: &new.redemption,
            sandbox: new.sandbox,
            webhooks: new.webhooks.as_ref(),
        };
        let change = Change::of(
            &old.id,
            &ctx.random.hex(4),
            ctx.now(),
            &who,
            Subject::Settings,
            &old.id,
            "updated",
            Some(&before),
            Some(&after),
        );
        if ctx
            .store
            .update_partner_settings(&old, &new, &change)
            .await?
        {
            ctx.forget_partner(&old.id);
            info!(partner = %old.id, "partner settings changed");
            return Ok(json(StatusCode::OK, &view(&new, &key.programme)));
        }
        retry.backoff();
    }
    Err(Error::unavailable())
}
