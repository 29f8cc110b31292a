//! A partner rotates its own credentials:
//! - `GET /v1/partner/keys`, `POST /v1/partner/keys` `{label, scopes}` (the new key is shown
//!   once), `DELETE /v1/partner/keys/{key_id}` (revoked at once in this process, everywhere
//!   within the configuration cache period);
//! - `GET /v1/partner/webhook-secrets`, `POST /v1/partner/webhook-secrets` (a new Standard
//!   Webhooks secret next to the current one, shown once), `DELETE
//!   /v1/partner/webhook-secrets/{secret_id}` (never the last one).
//!
//! Keys are stored by their SHA-256 only; secrets sealed (KMS). Their ids are short hashes,
//! never the secret. Every change lands in the audit trail with who made it.

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use bonus_domain::changes::{Change, Subject};
use bonus_domain::error::parse_json;
use bonus_domain::member::{hash_api_key, new_api_key, ApiKeyRecord, Scope};
use bonus_lambda::api::{json, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::{actor, authorise};

/// At most this many webhook secrets at once (a rotation: the old and the new).
const MAX_SECRETS: usize = 2;

#[derive(Debug, Serialize)]
struct KeyView<'a> {
    key_id: &'a str,
    label: &'a str,
    scopes: &'a [Scope],
    created_at: DateTime<Utc>,
    revoked: bool,
}

fn key_id(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

fn change(
    ctx: &Ctx,
    key: &KeyConfig,
    who: &bonus_domain::changes::Actor,
    id: &str,
    action: &str,
) -> Change {
    let audit = crate::Audit {
        ctx,
        partner_id: &key.partner.id,
        who,
    };
    audit.change::<serde_json::Value>(Subject::Settings, id, action, None, None)
}

pub(crate) async fn list_keys(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let keys = ctx.store.partner_keys(&key.partner.id).await?;
    let views: Vec<KeyView> = keys
        .iter()
        .map(|(hash, rec)| KeyView {
            key_id: key_id(hash),
            label: &rec.label,
            scopes: &rec.scopes,
            created_at: rec.created_at,
            revoked: rec.revoked,
        })
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "keys": views })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyIn {
    label: String,
    scopes: Vec<Scope>,
}

pub(crate) async fn create_key(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let input: NewKeyIn = parse_json(req.body())?;
    let label = input.label.trim().to_string();
    if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_field",
            "label: 1 to 64 printable characters",
        ));
    }
    if input.scopes.is_empty() {
        return Err(Error::invalid("invalid_field", "scopes: at least one"));
    }
    let mut scopes = input.scopes.clone();
    scopes.sort();
    scopes.dedup();
    // A label names one live key: a create sent twice finds the first and is refused, and
    // the caller lists its keys (the key itself is shown only once).
    let existing = ctx.store.partner_keys(&key.partner.id).await?;
    if existing.iter().any(|(_, r)| !r.revoked && r.label == label) {
        return Err(Error::conflict(
            "key_label_taken",
            "a live key has this label: revoke it, or choose another label",
        ));
    }
    let plain = new_api_key(ctx.random.as_ref());
    let hash = hash_api_key(&plain);
    let rec = ApiKeyRecord {
        partner_id: key.partner.id.clone(),
        label: label.clone(),
        scopes: scopes.clone(),
        created_at: ctx.now(),
        revoked: false,
    };
    let record = change(
        ctx,
        &key,
        &who,
        &format!("key:{}", key_id(&hash)),
        "key_created",
    );
    if !ctx.store.create_api_key(&hash, &rec, &record).await? {
        return Err(Error::unavailable());
    }
    info!(partner = %key.partner.id, key_id = key_id(&hash), "API key created");
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({"key": plain, "key_id": key_id(&hash), "label": label, "scopes": scopes,
            "note": "the key is shown this once; only its SHA-256 is stored"}),
    ))
}

pub(crate) async fn revoke_key(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let not_found = || Error::not_found("key_not_found", "no such key of this partner");
    let keys = ctx.store.partner_keys(&key.partner.id).await?;
    let (hash, rec) = keys
        .iter()
        .find(|(h, _)| key_id(h) == id)
        .ok_or_else(not_found)?;
    if !rec.revoked {
        let record = change(ctx, &key, &who, &format!("key:{id}"), "key_revoked");
        if !ctx
            .store
            .revoke_api_key(&key.partner.id, hash, &record)
            .await?
        {
            return Err(not_found());
        }
        ctx.forget_partner(&key.partner.id);
        info!(partner = %key.partner.id, key_id = id, "API key revoked");
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"key_id": id, "label": rec.label, "revoked": true}),
    ))
}

/// A sealed secret's id: the start of its SHA-256 (the secret is never shown again).
fn secret_id(sealed: &str) -> String {
    hex::encode(&Sha256::digest(sealed.as_bytes())[..8])
}

pub(crate) async fn list_secrets(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let partner = crate::stored_partner(ctx, &key).await?;
    let ids: Vec<String> = partner
        .webhook_secrets
        .iter()
        .map(|s| secret_id(s))
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "secret_ids": ids }),
    ))
}

pub(crate) async fn add_secret(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let partner = crate::stored_partner(ctx, &key).await?;
    if partner.webhook_secrets.len() >= MAX_SECRETS {
        return Err(Error::conflict(
            "too_many_secrets",
            "two secrets are in use (a rotation): remove the old one first",
        ));
    }
    let mut bytes = [0u8; 32];
    ctx.random.fill(&mut bytes);
    let plain = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    let sealed = ctx
        .sealer
        .seal(&plain)
        .await
        .map_err(bonus_domain::error::internal)?;
    let id = secret_id(&sealed);
    let mut list = partner.webhook_secrets.clone();
    list.push(sealed);
    let record = change(
        ctx,
        &key,
        &who,
        &format!("webhook_secret:{id}"),
        "secret_added",
    );
    if !ctx
        .store
        .replace_webhook_secrets(&partner, &list, &record)
        .await?
    {
        return Err(Error::conflict(
            "partner_changed",
            "the partner's settings changed meanwhile: try again",
        ));
    }
    ctx.forget_partner(&key.partner.id);
    info!(partner = %key.partner.id, secret_id = %id, "webhook secret added");
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({"secret": plain, "secret_id": id,
            "secret_ids": list.iter().map(|s| secret_id(s)).collect::<Vec<_>>(),
            "note": "sign with the new secret; both verify until the old one is removed. It is shown this once"}),
    ))
}

pub(crate) async fn remove_secret(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let partner = crate::stored_partner(ctx, &key).await?;
    if !partner.webhook_secrets.iter().any(|s| secret_id(s) == id) {
        return Err(Error::not_found(
            "secret_not_found",
            "no such webhook secret of this partner",
        ));
    }
    let list: Vec<String> = partner
        .webhook_secrets
        .iter()
        .filter(|s| secret_id(s) != id)
        .cloned()
        .collect();
    if list.is_empty() {
        return Err(Error::conflict(
            "last_secret",
            "this is the partner's only webhook secret: add the next one first",
        ));
    }
    let record = change(
        ctx,
        &key,
        &who,
        &format!("webhook_secret:{id}"),
        "secret_removed",
    );
    if !ctx
        .store
        .replace_webhook_secrets(&partner, &list, &record)
        .await?
    {
        return Err(Error::conflict(
            "partner_changed",
            "the partner's settings changed meanwhile: try again",
        ));
    }
    ctx.forget_partner(&key.partner.id);
    info!(partner = %key.partner.id, secret_id = %id, "webhook secret removed");
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"secret_ids": list.iter().map(|s| secret_id(s)).collect::<Vec<_>>()}),
    ))
}
