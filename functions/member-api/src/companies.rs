//! Companies (`bonus_domain::company`): B2B members whose users' orders earn for them.
//! - `POST /v1/companies` `{name, vat_id?}` (scope enrol): a company, enrolled by the caller;
//! - `GET /v1/companies/{company_id}` (scope read_profile): the company and its users;
//! - `PATCH /v1/companies/{company_id}` `{employee_share}` (scope enrol): whether its
//!   employees get their share under `company_rewards: both`;
//! - `PUT /v1/companies/{company_id}/users/{member_id}` `{role, default?}` (scope enrol);
//! - `DELETE /v1/companies/{company_id}/users/{member_id}` (scope enrol).
//!
//! A company is a member: its balance, statement, holds and claims use the member routes
//! with its id, under the same access policy. Adding a user needs the caller to be allowed
//! to change both the company and the person; anything else is the same 404.

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::access::Action;
use bonus_domain::account::Account;
use bonus_domain::company::{parse_role, CompanyAccount, CompanyUser, Role};
use bonus_domain::member::MemberProfile;
use bonus_dynamodb::config::Enrolled;
use bonus_lambda::api::{json, parse_json, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::{authorise, member_account, Scope};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompanyIn {
    name: String,
    #[serde(default)]
    vat_id: Option<String>,
    /// Under `company_rewards: both`: false keeps the employees' share for the company.
    #[serde(default)]
    employee_share: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompanyPatch {
    employee_share: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserIn {
    role: String,
    /// The person's orders earn for this company when they name none (absent: if it is
    /// their first company).
    #[serde(default)]
    default: Option<bool>,
}

#[derive(Debug, Serialize)]
struct UserView<'a> {
    member_id: &'a str,
    role: Role,
}

#[derive(Debug, Serialize)]
struct CompanyView<'a> {
    company_id: &'a str,
    programme_id: &'a str,
    name: &'a str,
    vat_id: Option<&'a str>,
    users: Vec<UserView<'a>>,
    employee_share: bool,
}

fn company_not_found() -> Error {
    Error::not_found("company_not_found", "no such company in this programme")
}

/// The company's account, if the key may do `action` to it and it is a company (else the
/// same 404 for all).
async fn company(
    ctx: &Ctx,
    key: &KeyConfig,
    company_id: &str,
    action: Action,
) -> Result<(Account, CompanyAccount), Error> {
    let (account, _) = member_account(ctx, key, company_id, action)
        .await
        .map_err(|e| {
            if e.code == "member_not_found" {
                company_not_found()
            } else {
                e
            }
        })?;
    match account.company.clone() {
        Some(c) => Ok((account, c)),
        None => Err(company_not_found()),
    }
}

pub(crate) async fn create(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Enrol).await?;
    let input: CompanyIn = parse_json(req.body())?;
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid("invalid_name", "name: 1 to 200 characters"));
    }
    let vat_id = input
        .vat_id
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if vat_id.as_ref().is_some_and(|v| v.len() > 32) {
        return Err(Error::invalid(
            "invalid_vat_id",
            "vat_id: at most 32 characters",
        ));
    }
    // Company ids are the platform's, as member ids are (64 random bits).
    let company_id = format!("C-{}", ctx.random.hex(8).to_uppercase());
    let profile = MemberProfile {
        member_id: company_id.clone(),
        programme_id: key.programme.id.clone(),
        name: Some(name.clone()),
        locale: "en".into(),
        enrolled_at: ctx.now(),
        enrolled_with: vec![key.partner.id.clone()],
        company: Some(bonus_domain::member::Company {
            name: name.clone(),
            vat_id: vat_id.clone(),
        }),
        ..Default::default()
    };
    let marker = CompanyAccount {
        name: name.clone(),
        vat_id: vat_id.clone(),
        no_employee_share: input.employee_share == Some(false),
    };
    match ctx.store.enrol_with(&profile, Some(marker)).await? {
        Enrolled::Yes => {}
        _ => {
            return Err(Error::conflict(
                "member_id_collision",
                "the id drawn for this company was taken; try again",
            ))
        }
    }
    info!(partner_id = %key.partner.id, "company enrolled");
    let view = CompanyView {
        company_id: &company_id,
        programme_id: &key.programme.id,
        name: &name,
        vat_id: vat_id.as_deref(),
        users: Vec::new(),
        employee_share: input.employee_share != Some(false),
    };
    Ok(json(StatusCode::CREATED, &view))
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    company_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::ReadProfile).await?;
    let (account, c) = company(ctx, &key, company_id, Action::ReadProfile).await?;
    let users = ctx
        .store
        .company_users(&account.programme_id, company_id)
        .await?;
    let view = CompanyView {
        company_id,
        programme_id: &account.programme_id,
        name: &c.name,
        vat_id: c.vat_id.as_deref(),
        users: users
            .iter()
            .map(|u| UserView {
                member_id: &u.member_id,
                role: u.role,
            })
            .collect(),
        employee_share: !c.no_employee_share,
    };
    Ok(json(StatusCode::OK, &view))
}

/// Change whether the company's employees get their share (read-modify-write on the
/// company's account, conditional on its version).
pub(crate) async fn update(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    company_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Enrol).await?;
    let input: CompanyPatch = parse_json(req.body())?;
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        bonus_dynamodb::retry::pause(pause).await;
        let (account, _) = company(ctx, &key, company_id, Action::UpdateProfile).await?;
        let mut next = account.clone();
        if let Some(c) = next.company.as_mut() {
            c.no_employee_share = !input.employee_share;
        }
        next.version += 1;
        if next == account || ctx.store.save_account(&next, account.version).await? {
            info!(partner_id = %key.partner.id, "company settings changed");
            return Ok(json(
                StatusCode::OK,
                &serde_json::json!({"company_id": company_id, "employee_share": input.employee_share}),
            ));
        }
        retry.backoff();
    }
    Err(Error::unavailable())
}

/// Add a user or change their role (`put`), or remove them.
pub(crate) async fn user(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    company_id: &str,
    member_id: &str,
    put: bool,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Enrol).await?;
    let input = if put {
        Some(parse_json::<UserIn>(req.body())?)
    } else {
        None
    };
    let role = input.as_ref().map(|i| parse_role(&i.role)).transpose()?;
    let (account, _) = company(ctx, &key, company_id, Action::UpdateProfile).await?;
    // The person must be the caller's to change, and a person (not a company).
    let (person, _) = member_account(ctx, &key, member_id, Action::UpdateProfile).await?;
    if person.company.is_some() {
        return Err(Error::invalid(
            "invalid_member",
            "a company cannot be a user of a company",
        ));
    }
    let user = CompanyUser {
        programme_id: account.programme_id.clone(),
        company_id: company_id.to_string(),
        member_id: member_id.to_string(),
        role: role.unwrap_or(Role::Viewer),
    };
    match input {
        Some(i) => {
            ctx.store.put_company_user(&user, i.default).await?;
            info!(partner_id = %key.partner.id, role = ?user.role, "company user set");
            Ok(json(
                StatusCode::OK,
                &UserView {
                    member_id,
                    role: user.role,
                },
            ))
        }
        None => {
            if !ctx.store.remove_company_user(&user).await? {
                return Err(Error::not_found(
                    "user_not_found",
                    "this member is not a user of the company",
                ));
            }
            info!(partner_id = %key.partner.id, "company user removed");
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"removed": member_id}),
            ))
        }
    }
}
