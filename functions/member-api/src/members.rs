//! Members: enrol, profile, balance, statement, erasure.
//!
//! - `POST /v1/members` (scope `enrol`): the platform assigns the member id; the partner's
//!   own customer id goes in `external_id`.
//! - `GET /v1/members/{id}` (`read_profile`), `PATCH` (`enrol`), `DELETE` = erasure (`erase`)
//! - `GET /v1/members/{id}/balance` (`read_balance`)
//! - `GET /v1/members/{id}/entries?limit=&cursor=` (`read_balance`): the statement, newest
//!   first, paged with an opaque cursor.
//!
//! Who may do which of these to which member: `bonus_domain::access` (docs/security.md).

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::access::{Action, Grant};
use bonus_domain::events::LedgerEntry;
use bonus_domain::ids::valid_external_id;
use bonus_domain::member::{Company, Consents, Findable, MemberProfile, Preferences};
use bonus_domain::pii::normalize_email;
use bonus_dynamodb::config::Enrolled;
use bonus_lambda::api::{json, parse_json, query_param, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::{authorise, member_account, member_not_found, Scope};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileIn {
    #[serde(default)]
    member_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    consents: Option<Consents>,
    #[serde(default)]
    preferences: Option<Preferences>,
    #[serde(default)]
    company: Option<Company>,
    /// The member's customer id at the calling partner's shop.
    #[serde(default)]
    external_id: Option<String>,
    /// The name other members see on transfers ("" clears it: a masked id is shown).
    #[serde(default)]
    display_name: Option<String>,
    /// Whether other members may find this member by e-mail or phone to send points.
    #[serde(default)]
    findable: Option<Findable>,
}

/// A profile as the API shows it.
#[derive(Debug, Serialize)]
struct ProfileView<'a> {
    member_id: &'a str,
    programme_id: &'a str,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    name: Option<&'a str>,
    locale: &'a str,
    time_zone: Option<&'a str>,
    company: Option<&'a Company>,
    consents: &'a Consents,
    preferences: &'a Preferences,
    enrolled_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    erased_at: Option<DateTime<Utc>>,
    display_name: Option<&'a str>,
    findable: Findable,
}

fn profile_view(p: &MemberProfile) -> ProfileView<'_> {
    ProfileView {
        member_id: &p.member_id,
        programme_id: &p.programme_id,
        email: p.email.as_deref(),
        phone: p.phone.as_deref(),
        name: p.name.as_deref(),
        locale: &p.locale,
        time_zone: p.time_zone.as_deref(),
        company: p.company.as_ref(),
        consents: &p.consents,
        preferences: &p.preferences,
        enrolled_at: p.enrolled_at,
        erased_at: p.erased_at,
        display_name: p.display_name.as_deref(),
        findable: p.findable,
    }
}

fn invalid(code: &'static str, message: impl Into<String>) -> Error {
    Error::invalid(code, message)
}

/// Empty strings clear a field.
fn text(v: Option<String>) -> Option<Option<String>> {
    v.map(|s| {
        let t = s.trim().to_string();
        (!t.is_empty()).then_some(t)
    })
}

/// Apply the given fields to a profile, validating each.
fn apply(p: &mut MemberProfile, input: ProfileIn, key: &KeyConfig) -> Result<(), Error> {
    if let Some(email) = text(input.email) {
        p.email = match email {
            Some(e) => Some(
                normalize_email(&e)
                    .ok_or_else(|| invalid("invalid_email", "email: not an e-mail address"))?,
            ),
            None => None,
        };
        // A new address is worth trying, even if the old one bounced.
        p.email_undeliverable = None;
    }
    if let Some(phone) = text(input.phone) {
        if let Some(ph) = &phone {
            let digits = ph.strip_prefix('+').unwrap_or("");
            if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "invalid_phone",
                    "phone: international format, + and 8-15 digits (+31612345678)",
                ));
            }
        }
        p.phone = phone;
        p.sms_undeliverable = None;
    }
    if let Some(name) = text(input.name) {
        if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            return Err(invalid("invalid_name", "name: at most 200 characters"));
        }
        p.name = name;
    }
    if let Some(name) = text(input.display_name) {
        if name.as_ref().is_some_and(|n| n.chars().count() > 40) {
            return Err(invalid(
                "invalid_display_name",
                "display_name: at most 40 characters",
            ));
        }
        p.display_name = name;
    }
    if let Some(f) = input.findable {
        p.findable = f;
    }
    if let Some(locale) = input.locale {
        let ok = locale.len() >= 2
            && locale.len() <= 10
            && locale.split(['-', '_']).all(|part| {
                !part.is_empty()
                    && part.len() <= 8
                    && part.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if !ok {
            return Err(invalid(
                "invalid_locale",
                "locale: a language tag such as nl or en-GB",
            ));
        }
        p.locale = locale;
    }
    if let Some(tz) = text(input.time_zone) {
        if let Some(t) = &tz {
            t.parse::<chrono_tz::Tz>().map_err(|_| {
                invalid(
                    "invalid_time_zone",
                    "time_zone: an IANA zone such as Europe/Amsterdam",
                )
            })?;
        }
        p.time_zone = tz;
    }
    if let Some(c) = input.consents {
        p.consents = c;
    }
    if let Some(pref) = input.preferences {
        if pref
            .channel
            .as_deref()
            .is_some_and(|c| !matches!(c, "email" | "sms" | "none"))
        {
            return Err(invalid(
                "invalid_preferences",
                "preferences.channel: email, sms or none",
            ));
        }
        if pref
            .earned_messages
            .as_deref()
            .is_some_and(|c| !matches!(c, "per_order" | "daily_digest" | "off"))
        {
            return Err(invalid(
                "invalid_preferences",
                "preferences.earned_messages: per_order, daily_digest or off",
            ));
        }
        p.preferences = pref;
    }
    if let Some(c) = input.company {
        if c.name.trim().is_empty() || c.name.chars().count() > 200 {
            return Err(invalid("invalid_company", "company.name: 1-200 characters"));
        }
        p.company = Some(c);
    }
    if let Some(ext) = input.external_id {
        if !valid_external_id(&ext) {
            return Err(invalid(
                "invalid_external_id",
                "external_id: 1-128 characters, no '#' or control characters",
            ));
        }
        p.external_ids.insert(key.partner.id.clone(), ext);
    }
    Ok(())
}

pub(crate) async fn enrol(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Enrol).await?;
    let input: ProfileIn = parse_json(req.body())?;
    // Member ids are the platform's: a caller-chosen id that turned out to be taken would
    // tell the caller that somebody (perhaps another partner's member) has it.
    if input.member_id.is_some() {
        return Err(invalid(
            "member_id_assigned",
            "member_id: member ids are assigned by the platform; send your own customer id as external_id",
        ));
    }
    // 64 random bits: not guessable, so a member id is no way into another partner's members.
    let member_id = format!("M-{}", ctx.random.hex(8).to_uppercase());
    let mut profile = MemberProfile {
        member_id: member_id.clone(),
        programme_id: key.programme.id.clone(),
        locale: "en".into(),
        enrolled_at: ctx.now(),
        enrolled_with: vec![key.partner.id.clone()],
        ..Default::default()
    };
    apply(&mut profile, input, &key)?;
    match ctx.store.enrol_member(&profile).await? {
        Enrolled::Yes => {}
        // Only the caller's own customer ids are looked at: this says nothing about members
        // it did not enrol.
        Enrolled::CustomerIdTaken => {
            let ext = profile
                .external_ids
                .get(&key.partner.id)
                .cloned()
                .unwrap_or_default();
            let existing = ctx
                .store
                .member_by_external_id(&key.partner.id, &ext)
                .await?
                .map(|l| l.member_id)
                .unwrap_or_default();
            return Err(Error::conflict(
                "member_exists",
                format!("your customer id {ext} is already enrolled as member {existing}"),
            ));
        }
        // 64 random bits collided: a retry draws another id.
        Enrolled::MemberIdTaken => {
            return Err(Error::conflict(
                "member_id_collision",
                "the member id drawn for this enrolment was taken; try again",
            ))
        }
    }
    info!(partner_id = %key.partner.id, "member enrolled");
    Ok(json(StatusCode::CREATED, &profile_view(&profile)))
}

async fn profile(
    ctx: &Ctx,
    key: &KeyConfig,
    member_id: &str,
    action: Action,
) -> Result<MemberProfile, Error> {
    member_account(ctx, key, member_id, action).await?;
    ctx.store
        .get_profile(&key.programme.id, member_id)
        .await?
        .ok_or_else(member_not_found)
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::ReadProfile).await?;
    let p = profile(ctx, &key, member_id, Action::ReadProfile).await?;
    Ok(json(StatusCode::OK, &profile_view(&p)))
}

pub(crate) async fn update(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Enrol).await?;
    let input: ProfileIn = parse_json(req.body())?;
    if input.member_id.is_some() {
        return Err(invalid("invalid_field", "member_id cannot be changed"));
    }
    let mut p = profile(ctx, &key, member_id, Action::UpdateProfile).await?;
    if p.erased_at.is_some() {
        return Err(Error::conflict(
            "member_erased",
            "the member's personal data was erased",
        ));
    }
    let before = p.clone();
    apply(&mut p, input, &key)?;
    if !ctx.store.save_profile(&before, &p).await? {
        return Err(Error::conflict(
            "member_erased",
            "the member's personal data was erased",
        ));
    }
    info!(partner_id = %key.partner.id, "member profile updated");
    Ok(json(StatusCode::OK, &profile_view(&p)))
}

/// GDPR erasure: the personal data goes (profile fields, customer-id links, the e-mail index
/// entry); the account, lots and statement stay, under the member id alone.
pub(crate) async fn erase(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Erase).await?;
    let p = profile(ctx, &key, member_id, Action::Erase).await?;
    let erased = ctx.store.erase_member(&p, ctx.now()).await?;
    // The member site: logged out everywhere, and no pending address change survives.
    ctx.store
        .delete_contact_changes(&key.programme.id, member_id)
        .await?;
    ctx.store
        .delete_all_sessions(&key.programme.id, member_id)
        .await?;
    info!(partner_id = %key.partner.id, "member erased");
    Ok(json(StatusCode::OK, &profile_view(&erased)))
}

pub(crate) async fn balance(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::ReadBalance).await?;
    let (account, _) = member_account(ctx, &key, member_id, Action::ReadBalance).await?;
    let view = account.view(&key.programme, ctx.now());
    info!(partner_id = %key.partner.id, "balance read");
    Ok(json(StatusCode::OK, &view))
}

#[derive(Debug, Serialize)]
struct EntriesPage<'a> {
    member_id: &'a str,
    entries: &'a [LedgerEntry],
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

const CURSOR_PREFIX: &str = "entries:";

fn encode_cursor(seq: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{seq}"))
}

fn decode_cursor(text: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(CURSOR_PREFIX)?
        .parse()
        .ok()
}

pub(crate) async fn entries(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::ReadBalance).await?;
    let limit = match query_param(req, "limit") {
        None => 50,
        Some(l) => match l.parse::<i32>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => return Err(Error::malformed("invalid_limit", "limit: 1 to 200")),
        },
    };
    let before = match query_param(req, "cursor") {
        None => None,
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| Error::malformed("invalid_cursor", "cursor: not one we gave out"))?,
        ),
    };
    let (_, grant) = member_account(ctx, &key, member_id, Action::ReadStatement).await?;
    // Another partner of the programme sees only the entries it caused.
    let only = (grant == Grant::OwnEntries).then_some(key.partner.id.as_str());
    let (entries, more) = ctx
        .store
        .entries_page(&key.programme.id, member_id, limit, before, only)
        .await?;
    let next_cursor = if more {
        entries.last().map(|e| encode_cursor(e.seq))
    } else {
        None
    };
    Ok(json(
        StatusCode::OK,
        &EntriesPage {
            member_id,
            entries: &entries,
            next_cursor,
        },
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeIn {
    duplicate_id: String,
}

/// `POST /v1/members/{member_id}/merge` `{duplicate_id}` (scope enrol): merge the duplicate
/// into this member (`bonus_domain::merge`). Both must be members the key may change; any
/// other is the same 404. Sent again, it goes on where it stopped (or answers as done).
pub(crate) async fn merge(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Enrol).await?;
    let input: MergeIn = parse_json(req.body())?;
    let admit = |a: Option<bonus_domain::account::Account>| {
        Ok(crate::admit(&key, a, Action::UpdateProfile)?.0)
    };
    let merged = Box::pin(bonus_services::merge::merge(
        ctx,
        &key.programme.id,
        member_id,
        &input.duplicate_id,
        &admit,
    ))
    .await?;
    info!(partner_id = %key.partner.id, points = merged.points, "members merged");
    Ok(json(StatusCode::OK, &merged))
}
