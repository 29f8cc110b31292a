//! The member's own pages: account, statement, gift shop, profile, my data. Each reads,
//! asks the access policy (through `authed`), and renders; each form post checks its CSRF
//! token before anything is written.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{Duration, NaiveDate};
use http::StatusCode;
use serde_json::{json, Value};
use tracing::info;

use bonus_domain::access::Action;
use bonus_domain::events::{EntryKind, LedgerEntry};
use bonus_domain::notify::{format_date, Rendered};
use bonus_domain::pii::normalize_email;
use bonus_domain::site::{
    format_money, format_points, normalize_code, normalize_phone, secret_hash, six_digit_code,
    CONTACT_CODE_MINUTES, SITE_LOCALES,
};
use bonus_dynamodb::site::{CodeCheck, ContactChange};
use bonus_lambda::api::{html, Error, Response};
use bonus_lambda::app::Ctx;
use bonus_services::spend::{self, SpendAt};

use crate::auth::{page_vars, Authed};
use crate::render::{self, words};
use crate::web::{form, query, redirect, set_cookie};
use crate::Site;

fn points(me: &Authed, n: i64) -> String {
    format_points(me.locale, n)
}

fn money(me: &Authed, minor: i64) -> String {
    let c = me.programme.currency;
    format_money(me.locale, minor, c.code(), c.exponent())
}

fn date(me: &Authed, text: &str) -> String {
    // Dates are stored as YYYY-MM-DD (local) or an RFC 3339 instant.
    let day = NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d").ok();
    day.map(|d| format_date(me.locale, d))
        .unwrap_or_else(|| text.to_string())
}

pub(crate) fn render_page(
    site: &Site,
    req: &http::Request<Bytes>,
    me: &Authed,
    page: &str,
    status: StatusCode,
    extra: Value,
) -> Result<Response, Error> {
    let mut vars = page_vars(site, req, me.locale, &me.programme, Some(me), page);
    if let Value::Object(m) = extra {
        vars.extend(m);
    }
    let body = render::page(&format!("{page}.html"), &Value::Object(vars))?;
    Ok(html(status, body))
}

/// `GET /m/{programme}/{member}`: available, pending with release dates, expiring soon,
/// debt, tier and the way to the next, and what the points are worth.
pub async fn account(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let me = member!(ctx, site, req, p, m, Action::ReadBalance, None);
    let v = me.account.view(&me.programme, ctx.now());
    let tier = (!me.programme.tiers.is_empty()).then(|| {
        let t = &v.tier;
        json!({
            "name": t.name,
            "next": t.next,
            "to_next": t.to_next.as_ref().map(|x| money(&me, x.minor)),
        })
    });
    let extra = json!({
        "available": points(&me, v.available),
        "available_value": money(&me, v.available_value.minor),
        "pending": points(&me, v.pending),
        "held": points(&me, v.held),
        "debt": (v.debt > 0).then(|| points(&me, v.debt)),
        "releases": v.releases.iter().map(|r| json!({"date": date(&me, &r.date), "points": points(&me, r.points)})).collect::<Vec<_>>(),
        "expiring": v.expiring.iter().map(|r| json!({"date": date(&me, &r.date), "points": points(&me, r.points)})).collect::<Vec<_>>(),
        "tier": tier,
        "point_value": money(&me, me.programme.point_value_minor),
        "companies": my_companies(ctx, &me).await?,
        "offers": my_offers(ctx, &me).await?,
    });
    render_page(site, req, &me, "account", StatusCode::OK, extra)
}

/// The offers valid now whose segment holds the logged-in member (on their own account
/// page), in the site's language (else English, else the offer's first).
async fn my_offers(ctx: &Ctx, me: &Authed) -> Result<Vec<Value>, Error> {
    use bonus_domain::offer::{facts_of, listed_facts};
    if me.relation != bonus_domain::access::Relation::Member {
        return Ok(Vec::new());
    }
    let (p, now) = (&me.programme, ctx.now());
    let offers = ctx.store.offers(&p.id).await?;
    if !offers.iter().any(|o| o.is_valid_at(now)) {
        return Ok(Vec::new());
    }
    let facts = facts_of(&listed_facts(&me.profile), &me.account, p, now);
    let today = now.with_timezone(&p.time_zone).date_naive();
    let mut out = Vec::new();
    for o in offers.iter().filter(|o| o.is_valid_at(now)) {
        if !o.segment.matches(&facts, today, p.base_tier()) {
            continue;
        }
        let (_, text) = o.text_for(me.locale);
        let partner = ctx
            .partner(&o.partner_id)
            .await?
            .map_or(o.partner_id.clone(), |c| c.partner.name.clone());
        let until = o.valid_to.with_timezone(&p.time_zone).date_naive();
        out.push(json!({
            "offer_id": o.offer_id,
            "title": text.title,
            "text": text.text,
            "partner": partner,
            "until": format_date(me.locale, until),
        }));
    }
    Ok(out)
}

/// The companies the logged-in member is a user of (on their own account page), with the
/// names from the companies' accounts.
async fn my_companies(ctx: &Ctx, me: &Authed) -> Result<Vec<Value>, Error> {
    if me.relation != bonus_domain::access::Relation::Member {
        return Ok(Vec::new());
    }
    let p = &me.programme.id;
    let mine = ctx.store.member_companies(p, &me.account.member_id).await?;
    let keys: Vec<(String, String)> = mine
        .iter()
        .map(|c| bonus_dynamodb::keys::account(p, &c.company_id))
        .collect();
    let mut found = ctx.store.batch_get(&keys).await?;
    let mut out = Vec::new();
    for (c, k) in mine.iter().zip(keys) {
        let name = found
            .remove(&k)
            .map(bonus_dynamodb::from_item::<bonus_domain::account::Account>)
            .transpose()?
            .and_then(|a| a.company.map(|c| c.name))
            .unwrap_or_else(|| c.company_id.clone());
        out.push(json!({"company_id": c.company_id, "name": name, "role": c.role}));
    }
    Ok(out)
}

const STATEMENT_PAGE: i32 = 20;

fn entry_kind(e: &LedgerEntry) -> &'static str {
    match e.kind {
        EntryKind::Earn if e.order_id.is_some() => "order",
        EntryKind::Earn => "bonus",
        EntryKind::Reversal => "refund",
        EntryKind::Debt => "debt",
        EntryKind::Redeem
            if e.order_id
                .as_deref()
                .is_some_and(|o| o.starts_with("claim/")) =>
        {
            "reward"
        }
        EntryKind::Redeem => "spent",
        EntryKind::ClaimReturn => "reward_return",
        EntryKind::Expire => "expiry",
        EntryKind::TransferOut => "transfer_out",
        EntryKind::TransferIn => "transfer_in",
        EntryKind::TransferFee => "transfer_fee",
        EntryKind::Merge => "merge",
        EntryKind::Adjustment => "adjustment",
    }
}

/// `GET /m/{programme}/{member}/statement?before=`: newest first, 20 a page.
pub async fn statement(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let me = member!(ctx, site, req, p, m, Action::ReadStatement, None);
    let before = match query(req, "before") {
        None => None,
        Some(b) => Some(
            b.parse::<u64>()
                .map_err(|_| Error::malformed("invalid_cursor", "before: a number"))?,
        ),
    };
    let (entries, more) = ctx
        .store
        .entries_page(p, m, STATEMENT_PAGE, before, None)
        .await?;
    let t = words(me.locale);
    let tz = me.programme.time_zone;
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            let kind = entry_kind(e);
            let what = match kind {
                // A company's order names the employee; an employee's share, the company.
                "order" => match (&e.order_id, &e.counterparty) {
                    (Some(o), Some(who)) => format!("{o} · {who}"),
                    (o, _) => o.clone().unwrap_or_default(),
                },
                "refund" | "spent" => e.order_id.clone().unwrap_or_default(),
                "transfer_out" | "transfer_in" | "transfer_fee" | "merge" => {
                    e.counterparty.clone().unwrap_or_default()
                }
                // The partner's note to the member.
                "adjustment" => e
                    .reason
                    .split_once(": ")
                    .map(|(_, note)| note.to_string())
                    .unwrap_or_default(),
                "reward" => e
                    .order_id
                    .as_deref()
                    .and_then(|o| o.split('/').nth(1))
                    .unwrap_or("")
                    .to_string(),
                _ => String::new(),
            };
            json!({
                "date": format_date(me.locale, e.at.with_timezone(&tz).date_naive()),
                "kind": t["kinds"][kind],
                "what": what,
                "points": if e.points > 0 { format!("+{}", points(&me, e.points)) } else { points(&me, e.points) },
                "negative": e.points < 0,
            })
        })
        .collect();
    let next = if more {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    render_page(
        site,
        req,
        &me,
        "statement",
        StatusCode::OK,
        json!({ "entries": rows, "next": next, "first_page": before.is_none() }),
    )
}

/// `GET /m/{programme}/{member}/shop`: rewards within stock and limits, and my vouchers.
pub async fn shop(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
    outcome: Option<(StatusCode, Value)>,
) -> Result<Response, Error> {
    let me = member!(ctx, site, req, p, m, Action::ReadBalance, None);
    shop_page(ctx, site, req, &me, outcome).await
}

async fn shop_page(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    me: &Authed,
    outcome: Option<(StatusCode, Value)>,
) -> Result<Response, Error> {
    let (rewards, vouchers) = tokio::try_join!(
        ctx.store.rewards(&me.programme.id),
        ctx.store
            .member_vouchers(&me.programme.id, &me.account.member_id),
    )?;
    let available = me.account.view(&me.programme, ctx.now()).available;
    let mut claimed: HashMap<&str, i64> = HashMap::new();
    for v in &vouchers {
        if let Some(r) = &v.reward {
            *claimed.entry(r.reward_id.as_str()).or_default() += 1;
        }
    }
    let names: HashMap<&str, &str> = rewards
        .iter()
        .map(|r| (r.reward_id.as_str(), r.name.as_str()))
        .collect();
    let items: Vec<Value> = rewards
        .iter()
        .map(|r| {
            let left = r
                .per_member_limit
                .map(|l| l - claimed.get(r.reward_id.as_str()).copied().unwrap_or(0));
            let why_not = if r.stock <= 0 {
                Some("out_of_stock")
            } else if left.is_some_and(|l| l <= 0) {
                Some("limit_reached")
            } else if available < r.points {
                Some("not_enough_points")
            } else {
                None
            };
            json!({
                "reward_id": r.reward_id, "name": r.name, "description": r.description,
                "points": points(me, r.points), "stock": points(me, r.stock.max(0)),
                "limit_left": left, "why_not": why_not,
            })
        })
        .collect();
    let my: Vec<Value> = vouchers
        .iter()
        .filter_map(|h| {
            let r = h.reward.as_ref()?;
            Some(json!({
                "name": names.get(r.reward_id.as_str()).copied().unwrap_or(r.reward_id.as_str()),
                "code": r.voucher_code,
                "points": points(me, h.captured),
                "date": format_date(me.locale, h.created_at.with_timezone(&me.programme.time_zone).date_naive()),
            }))
        })
        .collect();
    let (status, result) = outcome.unwrap_or((StatusCode::OK, Value::Null));
    render_page(
        site,
        req,
        me,
        "shop",
        status,
        json!({
            "rewards": items, "vouchers": my, "available": points(me, available),
            "reference": ctx.random.hex(8), "result": result,
        }),
    )
}

/// `POST /m/{programme}/{member}/shop/{reward}` `{csrf, reference}`: claim it (the same
/// claim service as the API, so stock, limits and balance hold the same way; the form's
/// reference makes a double submit one claim).
pub async fn claim(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
    reward_id: &str,
) -> Result<Response, Error> {
    let fields = form(req)?;
    let me = member!(ctx, site, req, p, m, Action::Hold, Some(&fields));
    let not_found = || Error::not_found("reward_not_found", "no such reward in this programme");
    if !bonus_domain::ids::valid_id(reward_id) {
        return Err(not_found());
    }
    let reward = ctx
        .store
        .get_reward(p, reward_id)
        .await?
        .ok_or_else(not_found)?;
    let reference = fields
        .get("reference")
        .filter(|r| bonus_domain::ids::valid_id(r) && r.len() <= 64)
        .cloned()
        .ok_or_else(|| Error::invalid("invalid_reference", "the form lacks its reference"))?;
    // The gift shop spends at the member's own partner (the one that enrolled them; for
    // members ops enrolled, the programme's first partner): the redeemer in clearing.
    let partner_id = match me.account.enrolled_with.first() {
        Some(p) => p.clone(),
        None => ctx
            .store
            .partner_ids(p)
            .await?
            .into_iter()
            .min()
            .ok_or_else(|| Error::conflict("no_partner", "the programme has no partner"))?,
    };
    let at = SpendAt {
        programme: &me.programme,
        partner_id: &partner_id,
        // The programme's own gift shop, not a partner's till: its limits do not apply.
        limits: None,
    };
    let admit = me.admit(Action::Hold);
    let body = format!("site:{reference}");
    match spend::claim_reward(ctx, &at, m, &reward, &reference, body.as_bytes(), &admit).await {
        Ok(hold) => {
            info!(
                programme_id = p,
                reward_id, "reward claimed on the member site"
            );
            let code = hold.reward.map(|r| r.voucher_code).unwrap_or_default();
            let me = member!(ctx, site, req, p, m, Action::Hold, None);
            shop_page(
                ctx,
                site,
                req,
                &me,
                Some((
                    StatusCode::CREATED,
                    json!({"ok": true, "name": reward.name, "code": code}),
                )),
            )
            .await
        }
        Err(e) if !e.is_server_error() && e.code != "member_not_found" => {
            let status = bonus_lambda::api::status_of(e.kind);
            shop_page(
                ctx,
                site,
                req,
                &me,
                Some((status, json!({"ok": false, "code": e.code}))),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// `GET /m/{programme}/{member}/profile`
pub async fn profile(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
    outcome: Option<(StatusCode, Value)>,
) -> Result<Response, Error> {
    let me = member!(ctx, site, req, p, m, Action::ReadProfile, None);
    let outcome = outcome.or_else(|| {
        query(req, "saved").map(|_| (StatusCode::OK, json!({"ok": true, "code": "saved"})))
    });
    profile_page(ctx, site, req, &me, outcome).await
}

async fn profile_page(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    me: &Authed,
    outcome: Option<(StatusCode, Value)>,
) -> Result<Response, Error> {
    let now = ctx.now();
    let (email_pending, sms_pending) = tokio::try_join!(
        ctx.store
            .contact_change_pending(&me.programme.id, &me.account.member_id, "email", now),
        ctx.store
            .contact_change_pending(&me.programme.id, &me.account.member_id, "sms", now),
    )?;
    let p = &me.profile;
    let (status, result) = outcome.unwrap_or((StatusCode::OK, Value::Null));
    render_page(
        site,
        req,
        me,
        "profile",
        status,
        json!({
            "email": p.email, "phone": p.phone,
            "consent_email": p.consents.email, "consent_sms": p.consents.sms,
            "channel": p.preferences.channel.as_deref().unwrap_or("email"),
            "earned": p.preferences.earned_messages.as_deref().unwrap_or("per_order"),
            // The language the member sees the site in (saving makes it their messages' too).
            "member_locale": me.locale,
            "site_locales": SITE_LOCALES,
            "email_pending": email_pending, "sms_pending": sms_pending,
            "display_name": p.display_name.as_deref().unwrap_or(""),
            "findable_email": p.findable.by_email, "findable_phone": p.findable.by_phone,
            "result": result,
        }),
    )
}

fn checked(fields: &HashMap<String, String>, name: &str) -> bool {
    fields
        .get(name)
        .is_some_and(|v| v == "on" || v == "yes" || v == "true")
}

/// `POST /m/{programme}/{member}/profile` `{csrf, consent_email?, consent_sms?, channel,
/// earned, locale}`: consents per channel, preferred channel, per order or daily digest,
/// language.
pub async fn save_settings(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let fields = form(req)?;
    let me = member!(ctx, site, req, p, m, Action::UpdateProfile, Some(&fields));
    let before = me.profile.clone();
    let mut after = before.clone();
    after.consents.email = checked(&fields, "consent_email");
    after.consents.sms = checked(&fields, "consent_sms");
    after.findable.by_email = checked(&fields, "findable_email");
    after.findable.by_phone = checked(&fields, "findable_phone");
    if let Some(name) = fields.get("display_name") {
        let name = name.trim();
        if name.chars().count() > 40 {
            return Err(Error::invalid(
                "invalid_display_name",
                "display_name: at most 40 characters",
            ));
        }
        after.display_name = (!name.is_empty()).then(|| name.to_string());
    }
    let pick = |name: &str, allowed: &[&str]| -> Result<Option<String>, Error> {
        match fields.get(name) {
            None => Ok(None),
            Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v.clone())),
            Some(_) => Err(Error::invalid(
                "invalid_preferences",
                format!("{name}: not one of the choices"),
            )),
        }
    };
    if let Some(c) = pick("channel", &["email", "sms", "none"])? {
        after.preferences.channel = Some(c);
    }
    if let Some(e) = pick("earned", &["per_order", "daily_digest", "off"])? {
        after.preferences.earned_messages = Some(e);
    }
    let mut cookies = Vec::new();
    if let Some(l) = pick("locale", &SITE_LOCALES)? {
        if bonus_domain::notify::template_locale(&after.locale) != l {
            after.locale = l.clone();
        }
        // The site follows the member's new language too.
        cookies.push(format!(
            "{}={l}; Path=/; Max-Age=31536000; SameSite=Lax{}",
            crate::LOCALE_COOKIE,
            if site.insecure_cookies {
                ""
            } else {
                "; Secure"
            }
        ));
    }
    if after != before && !ctx.store.save_profile(&before, &after).await? {
        return Err(Error::conflict(
            "member_erased",
            "the member's personal data was erased",
        ));
    }
    info!(programme_id = p, "member settings saved on the member site");
    Ok(redirect(
        &format!("{}/profile?saved=1", me.home()),
        &cookies,
    ))
}

/// `POST /m/{programme}/{member}/profile/contact` `{csrf, channel, address}`: a code to the
/// new address or number; the profile changes only when it comes back.
pub async fn change_contact(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let fields = form(req)?;
    let me = member!(ctx, site, req, p, m, Action::UpdateProfile, Some(&fields));
    let channel = fields.get("channel").map(String::as_str).unwrap_or("");
    let typed = fields.get("address").map(|a| a.trim()).unwrap_or("");
    let address = match channel {
        "email" => normalize_email(typed),
        "sms" => normalize_phone(typed),
        _ => None,
    };
    let Some(address) = address else {
        return profile_page(
            ctx,
            site,
            req,
            &me,
            Some((
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"ok": false, "code": "address_invalid"}),
            )),
        )
        .await;
    };
    let now = ctx.now();
    let bucket = bonus_domain::site::member_bucket(p, m, now);
    if !ctx
        .store
        .throttle(
            "contact-member",
            &bucket,
            bonus_domain::site::LOGIN_MESSAGES_PER_MEMBER_PER_HOUR,
            now,
        )
        .await?
    {
        return Err(Error::new(
            bonus_domain::ErrorKind::TooManyRequests,
            "too_many_login_requests",
            "too many codes asked for this hour",
        ));
    }
    let code = six_digit_code(ctx.random.as_ref());
    ctx.store
        .put_contact_change(
            p,
            m,
            &ContactChange {
                channel: channel.to_string(),
                address: address.clone(),
                code_sha256: secret_hash("contact", &code),
                attempts: 0,
                expires_at: now + Duration::minutes(CONTACT_CODE_MINUTES),
            },
        )
        .await?;
    let t = words(me.locale);
    let vars = json!({
        "t": t, "code": code, "programme_name": me.programme.name, "minutes": CONTACT_CODE_MINUTES,
    });
    let text = render::page("mail_code.txt", &vars)?;
    let sent = if channel == "email" {
        let r = Rendered {
            locale: me.locale.to_string(),
            subject: format!(
                "{}: {}",
                me.programme.name,
                t["mail"]["code_subject"].as_str().unwrap_or("")
            ),
            html: format!(
                "<!doctype html><html lang=\"{}\"><body><p>{}</p></body></html>",
                me.locale,
                bonus_lambda::api::escape_html(&text)
            ),
            text,
            sms: String::new(),
        };
        bonus_messages::send::with_backoff(|| {
            bonus_messages::send::send_email(&site.senders, &address, &r, None)
        })
        .await
    } else {
        bonus_messages::send::with_backoff(|| {
            bonus_messages::send::send_sms(&site.senders, &address, &text)
        })
        .await
    };
    if let Err(e) = sent {
        tracing::warn!(code = e.code(), "contact code not sent");
        return Err(Error::unavailable());
    }
    profile_page(
        ctx,
        site,
        req,
        &me,
        Some((
            StatusCode::OK,
            json!({"ok": true, "code": "code_sent", "channel": channel}),
        )),
    )
    .await
}

/// `POST /m/{programme}/{member}/profile/contact/confirm` `{csrf, channel, code}`
pub async fn confirm_contact(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let fields = form(req)?;
    let me = member!(ctx, site, req, p, m, Action::UpdateProfile, Some(&fields));
    let channel = fields.get("channel").map(String::as_str).unwrap_or("");
    let code = fields.get("code").and_then(|c| normalize_code(c));
    let check = match (channel, code) {
        ("email" | "sms", Some(code)) => {
            ctx.store
                .check_contact_code(p, m, channel, &secret_hash("contact", &code), ctx.now())
                .await?
        }
        _ => CodeCheck::Void,
    };
    let CodeCheck::Accepted(change) = check else {
        return profile_page(
            ctx,
            site,
            req,
            &me,
            Some((
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"ok": false, "code": "code_wrong", "channel": channel}),
            )),
        )
        .await;
    };
    let before = me.profile.clone();
    let mut after = before.clone();
    if change.channel == "email" {
        after.email = Some(change.address);
        after.email_undeliverable = None;
    } else {
        after.phone = Some(change.address);
        after.sms_undeliverable = None;
    }
    if !ctx.store.save_profile(&before, &after).await? {
        return Err(Error::conflict(
            "member_erased",
            "the member's personal data was erased",
        ));
    }
    info!(programme_id = p, channel = %change.channel, "contact changed on the member site");
    Ok(redirect(&format!("{}/profile?saved=1", me.home()), &[]))
}

/// `GET /m/{programme}/{member}/data`: download, or erase with a confirmation.
pub async fn my_data(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let me = member!(ctx, site, req, p, m, Action::ReadProfile, None);
    render_page(
        site,
        req,
        &me,
        "data",
        StatusCode::OK,
        json!({ "error": Value::Null }),
    )
}

/// `GET /m/{programme}/{member}/data.json`: everything held about the member (GDPR access).
pub async fn download(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let me = member!(ctx, site, req, p, m, Action::ReadProfile, None);
    let mut entries: Vec<LedgerEntry> = Vec::new();
    let mut before = None;
    loop {
        let (page, more) = ctx.store.entries_page(p, m, 200, before, None).await?;
        before = page.last().map(|e| e.seq);
        entries.extend(page);
        if !more || before.is_none() {
            break;
        }
    }
    let (lots, vouchers) = tokio::try_join!(ctx.store.lots(p, m), ctx.store.member_vouchers(p, m))?;
    let body = json!({
        "exported_at": ctx.now(),
        "programme": { "id": me.programme.id, "name": me.programme.name },
        "profile": me.profile,
        "balance": me.account.view(&me.programme, ctx.now()),
        "lots": lots,
        "statement": entries,
        "vouchers": vouchers,
        "session": { "created_at": me.session.created_at, "expires_at": me.session.expires_at, "via": me.session.via },
    });
    let mut resp = bonus_lambda::api::json(StatusCode::OK, &body);
    if let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"{p}-{m}.json\"")) {
        resp.headers_mut()
            .insert(http::header::CONTENT_DISPOSITION, v);
    }
    info!(programme_id = p, "member downloaded their data");
    Ok(resp)
}

/// `POST /m/{programme}/{member}/erase` `{csrf, confirm}`: the same erasure as the API
/// (`DELETE /v1/members/{id}`), then every session ends.
pub async fn erase(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let fields = form(req)?;
    let me = member!(ctx, site, req, p, m, Action::Erase, Some(&fields));
    if !checked(&fields, "confirm") {
        return render_page(
            site,
            req,
            &me,
            "data",
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "error": "confirm_erase" }),
        );
    }
    ctx.store.erase_member(&me.profile, ctx.now()).await?;
    ctx.store.delete_contact_changes(p, m).await?;
    ctx.store.delete_all_sessions(p, m).await?;
    info!(programme_id = p, "member erased on the member site");
    let gone = set_cookie(site, crate::web::session_cookie_name(site), "", 0);
    let vars = page_vars(site, req, me.locale, &me.programme, None, "erased");
    let body = render::page("erased.html", &Value::Object(vars))?;
    Ok(crate::web::with_cookies(
        html(StatusCode::OK, body),
        &[gone],
    ))
}
