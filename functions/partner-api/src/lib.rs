//! The partner API: a partner runs its own part of the programme, authenticated by one of
//! its API keys with the `manage` scope (`Authorization: Bearer`).
//!
//! Every route is in [`ROUTES`] (and in `docs/openapi.yaml`). There is no partner id in any
//! path: everything is the calling key's partner's, so no request can even name another
//! partner's campaign, and one that does not exist for this partner is a 404 whether or not
//! another partner has one of that id. Writes carry the acting person in the `Bonus-Actor`
//! header (else the key's label) and land in the partner's audit trail, in the same
//! transaction as the change.

mod adjustments;
mod behaviour;
mod campaigns;
mod changes;
mod claims;
mod credentials;
mod deliveries;
mod imports;
mod offers;
mod packs;
mod reports;
mod rewards;
mod settings;

use bytes::Bytes;
use http::Method;

use bonus_domain::changes::{parse_actor, Actor};
use bonus_domain::member::Scope;
use bonus_lambda::api::{bearer, respond, segments, with_allow, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

/// Every route this function serves: (method, path template).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/partner"),
    ("PATCH", "/v1/partner"),
    ("GET", "/v1/partner/campaigns"),
    ("POST", "/v1/partner/campaigns"),
    ("GET", "/v1/partner/campaigns/{campaign_id}"),
    ("PATCH", "/v1/partner/campaigns/{campaign_id}"),
    ("POST", "/v1/partner/campaigns/{campaign_id}/top-ups"),
    ("GET", "/v1/partner/campaigns/{campaign_id}/report"),
    ("GET", "/v1/partner/changes"),
    ("GET", "/v1/partner/keys"),
    ("POST", "/v1/partner/keys"),
    ("DELETE", "/v1/partner/keys/{key_id}"),
    ("GET", "/v1/partner/webhook-secrets"),
    ("POST", "/v1/partner/webhook-secrets"),
    ("DELETE", "/v1/partner/webhook-secrets/{secret_id}"),
    ("GET", "/v1/partner/rewards"),
    ("POST", "/v1/partner/rewards"),
    ("PATCH", "/v1/partner/rewards/{reward_id}"),
    ("POST", "/v1/partner/rewards/{reward_id}/stock"),
    ("GET", "/v1/partner/packs"),
    ("POST", "/v1/partner/campaigns/{campaign_id}/packs"),
    ("GET", "/v1/partner/invoices/{month}"),
    ("POST", "/v1/partner/plans"),
    ("GET", "/v1/partner/clearing/{month}"),
    ("GET", "/v1/partner/members"),
    ("GET", "/v1/partner/members/{member_id}"),
    ("GET", "/v1/partner/adjustments"),
    ("POST", "/v1/partner/adjustments"),
    ("GET", "/v1/partner/adjustments/{adjustment_id}"),
    ("POST", "/v1/partner/adjustments/{adjustment_id}/approve"),
    ("POST", "/v1/partner/adjustments/{adjustment_id}/reject"),
    ("GET", "/v1/partner/behaviour-campaigns"),
    ("POST", "/v1/partner/behaviour-campaigns"),
    ("GET", "/v1/partner/behaviour-campaigns/{campaign_id}"),
    ("PATCH", "/v1/partner/behaviour-campaigns/{campaign_id}"),
    ("GET", "/v1/partner/webhook-deliveries"),
    ("POST", "/v1/partner/imports"),
    ("GET", "/v1/partner/imports/{import_id}"),
    ("GET", "/v1/partner/offers"),
    ("POST", "/v1/partner/offers"),
    ("GET", "/v1/partner/offers/{offer_id}"),
    ("PATCH", "/v1/partner/offers/{offer_id}"),
    ("GET", "/v1/partner/offers/{offer_id}/preview"),
    ("POST", "/v1/partner/offers/{offer_id}/send"),
    ("GET", "/v1/partner/claims/{voucher_code}"),
    ("POST", "/v1/partner/claims/{voucher_code}/return"),
];

/// Entry point for every route this function serves.
pub async fn handle(ctx: &Ctx, req: http::Request<Bytes>) -> Response {
    let path = segments(req.uri().path());
    let m = req.method().clone();
    let result = match path.as_slice() {
        ["v1", "partner"] => match m {
            Method::GET => settings::show(ctx, &req).await,
            Method::PATCH => Box::pin(settings::update(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "campaigns"] => match m {
            Method::GET => campaigns::list(ctx, &req).await,
            Method::POST => Box::pin(campaigns::create(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "campaigns", id] => match m {
            Method::GET => campaigns::show(ctx, &req, id).await,
            Method::PATCH => Box::pin(campaigns::update(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "campaigns", id, "top-ups"] => match m {
            Method::POST => Box::pin(campaigns::top_up(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "campaigns", id, "report"] => match m {
            Method::GET => Box::pin(campaigns::report(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "adjustments"] => match m {
            Method::GET => adjustments::list(ctx, &req).await,
            Method::POST => Box::pin(adjustments::create(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "adjustments", id] => match m {
            Method::GET => adjustments::show(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "adjustments", id, decision @ ("approve" | "reject")] => match m {
            Method::POST => {
                Box::pin(adjustments::decide(ctx, &req, id, *decision == "approve")).await
            }
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "clearing", month] => match m {
            Method::GET => reports::clearing(ctx, &req, month).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "members"] => match m {
            Method::GET => reports::find_member(ctx, &req).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "members", id] => match m {
            Method::GET => reports::member(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "keys"] => match m {
            Method::GET => credentials::list_keys(ctx, &req).await,
            Method::POST => Box::pin(credentials::create_key(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "keys", id] => match m {
            Method::DELETE => Box::pin(credentials::revoke_key(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "webhook-secrets"] => match m {
            Method::GET => credentials::list_secrets(ctx, &req).await,
            Method::POST => Box::pin(credentials::add_secret(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "webhook-secrets", id] => match m {
            Method::DELETE => Box::pin(credentials::remove_secret(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "rewards"] => match m {
            Method::GET => rewards::list(ctx, &req).await,
            Method::POST => Box::pin(rewards::create(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "rewards", id] => match m {
            Method::PATCH => Box::pin(rewards::update(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "rewards", id, "stock"] => match m {
            Method::POST => Box::pin(rewards::restock(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "packs"] => match m {
            Method::GET => packs::list(ctx, &req).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "campaigns", id, "packs"] => match m {
            Method::POST => Box::pin(packs::buy(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "invoices", month] => match m {
            Method::GET => packs::invoices(ctx, &req, month).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "plans"] => match m {
            Method::POST => packs::plan(ctx, &req).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "behaviour-campaigns"] => match m {
            Method::GET => behaviour::list(ctx, &req).await,
            Method::POST => Box::pin(behaviour::create(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "behaviour-campaigns", id] => match m {
            Method::GET => behaviour::show(ctx, &req, id).await,
            Method::PATCH => Box::pin(behaviour::update(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "imports"] => match m {
            Method::POST => Box::pin(imports::create(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "imports", id] => match m {
            Method::GET => imports::show(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "webhook-deliveries"] => match m {
            Method::GET => deliveries::list(ctx, &req).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "offers"] => match m {
            Method::GET => offers::list(ctx, &req).await,
            Method::POST => Box::pin(offers::create(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "offers", id] => match m {
            Method::GET => offers::show(ctx, &req, id).await,
            Method::PATCH => Box::pin(offers::update(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "offers", id, "preview"] => match m {
            Method::GET => Box::pin(offers::preview(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "offers", id, "send"] => match m {
            Method::POST => Box::pin(offers::send(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "claims", code] => match m {
            Method::GET => claims::show(ctx, &req, code).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "claims", code, "return"] => match m {
            Method::POST => Box::pin(claims::return_claim(ctx, &req, code)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "partner", "changes"] => match m {
            Method::GET => changes::list(ctx, &req).await,
            _ => Err(Error::method_not_allowed()),
        },
        _ => Err(Error::route_not_found()),
    };
    with_allow(respond("partner-api", result), ROUTES, req.uri().path())
}

/// The caller's key, if it carries the `manage` scope (a 401 for no key, a 403 for a key
/// without the scope).
pub(crate) async fn authorise(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
) -> Result<std::sync::Arc<KeyConfig>, Error> {
    let token = bearer(req.headers()).ok_or_else(Error::unauthorized)?;
    let key = ctx.api_key(token).await?.ok_or_else(Error::unauthorized)?;
    if !key.key.scopes.contains(&Scope::Manage) {
        return Err(Error::forbidden(
            "missing_scope",
            "this API key lacks the manage scope",
        ));
    }
    Ok(key)
}

/// Who changes the partner's things, and when: makes the audit-trail records its writes
/// carry in their own transactions.
pub(crate) struct Audit<'a> {
    pub ctx: &'a Ctx,
    pub partner_id: &'a str,
    pub who: &'a Actor,
}

impl Audit<'_> {
    pub(crate) fn change<T: serde::Serialize>(
        &self,
        subject: bonus_domain::changes::Subject,
        id: &str,
        action: &str,
        before: Option<&T>,
        after: Option<&T>,
    ) -> bonus_domain::changes::Change {
        bonus_domain::changes::Change::of(
            self.partner_id,
            &self.ctx.random.hex(4),
            self.ctx.now(),
            self.who,
            subject,
            id,
            action,
            before,
            after,
        )
    }
}

/// A caller's reference (top-ups, packs, restocks): 1-64 characters, no '#'.
pub(crate) fn check_reference(reference: &str) -> Result<(), Error> {
    if bonus_domain::ids::valid_external_id(reference) && reference.len() <= 64 {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_field",
            "reference: 1 to 64 characters, no '#'",
        ))
    }
}

/// A JSON merge patch (RFC 7396, one level): `null` removes a field, anything else sets it.
pub(crate) fn merge_patch(
    mut body: serde_json::Value,
    patch: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    if let Some(o) = body.as_object_mut() {
        for (k, v) in patch {
            if v.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    body
}

/// The calling partner as stored (its settings and sealed secrets, not the cached copy).
pub(crate) async fn stored_partner(
    ctx: &Ctx,
    key: &KeyConfig,
) -> Result<bonus_domain::programme::Partner, Error> {
    ctx.store
        .get_partner(&key.partner.id)
        .await?
        .ok_or_else(Error::unauthorized)
}

/// Who acts: the `Bonus-Actor` header (a person's name), else the key's label; through the
/// API under that key.
pub(crate) fn actor(key: &KeyConfig, req: &http::Request<Bytes>) -> Result<Actor, Error> {
    let name = match req.headers().get("bonus-actor") {
        None => key.key.label.clone(),
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| Error::invalid("invalid_actor", "Bonus-Actor: printable text"))?;
            parse_actor(text)
                .map_err(|e| Error::invalid("invalid_actor", format!("Bonus-Actor: {e}")))?
        }
    };
    Ok(Actor {
        name,
        via: format!("api:{}", key.key.label),
    })
}
