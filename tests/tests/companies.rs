//! Companies: users with roles, orders that earn for the company, refunds that come back
//! from it, its tier from its own volume, its statement naming the employee, and 50 buyers
//! ordering into one company at once, through the real handlers and the embedded DynamoDB.

use futures::future::join_all;
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";
const KEY: &str = "bk_5cfe7a8497bbc15c0789802476203e080db6ecb2_1a14dfe1";
const KEY_OTHER: &str = "bk_fb7796ade50e1d1375b3ccf5316fba7313593e04_0efdedd2";

/// A closed B2B programme (Gold at 1,000 EUR a year), partner `office` (auto-enrols), and a
/// second partner `rival` in the same programme.
const CONFIG: &str = r#"
programmes:
  - id: b2b
    name: Office supplies
    kind: closed
    currency: EUR
    company_rewards: company
    tiers: [{name: Silver, threshold: 0, multiplier: 1}, {name: Gold, threshold: 1000, multiplier: 2}]
partners:
  - id: office
    programme: b2b
    name: Office
    auto_enrol: true
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: crm, key: bk_5cfe7a8497bbc15c0789802476203e080db6ecb2_1a14dfe1, scopes: [read_balance, read_profile, hold, enrol]}
  - id: rival
    programme: b2b
    name: Rival
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: crm, key: bk_fb7796ade50e1d1375b3ccf5316fba7313593e04_0efdedd2, scopes: [read_balance, read_profile, hold, enrol]}
"#;

async fn call(
    env: &TestEnv,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let headers = [("authorization", format!("Bearer {key}"))];
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    // Boxed: the handlers' futures are deep, and this test's own body is long.
    Box::pin(env.call(method, path, &headers, body)).await
}

async fn order(
    env: &TestEnv,
    order_id: &str,
    member: &str,
    company: Option<&str>,
    euros: i64,
) -> Value {
    let mut body = json!({
        "type": "order.paid", "order_id": order_id, "member_id": member,
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "PAPER", "quantity": 1, "unit_price": format!("{euros}.00")}]
    });
    if let Some(c) = company {
        body["company_id"] = json!(c);
    }
    let body = body.to_string();
    let headers = env.signed(SECRET, &format!("msg-{order_id}"), &body, 0);
    let (status, answer) = Box::pin(env.call(
        "POST",
        "/v1/partners/office/webhooks/orders",
        &headers,
        body,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn enrol(env: &TestEnv, key: &str) -> String {
    let (s, m) = call(env, key, "POST", "/v1/members", json!({"name": "Employee"})).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    m["member_id"].as_str().unwrap().to_string()
}

async fn new_company(env: &TestEnv) -> String {
    let (s, c) = call(
        env,
        KEY,
        "POST",
        "/v1/companies",
        json!({"name": "ACME GmbH", "vat_id": "DE123456789"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    c["company_id"].as_str().unwrap().to_string()
}

async fn add_user(env: &TestEnv, company: &str, member: &str, role: &str, default: bool) {
    let (s, u) = call(
        env,
        KEY,
        "PUT",
        &format!("/v1/companies/{company}/users/{member}"),
        json!({"role": role, "default": default}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
}

#[tokio::test]
async fn a_buyers_orders_earn_for_the_company_and_its_refunds_come_back_from_it() {
    let env = TestEnv::with_config(CONFIG).await;
    let acme = new_company(&env).await;
    let (anna, vic, solo) = (
        enrol(&env, KEY).await,
        enrol(&env, KEY).await,
        enrol(&env, KEY).await,
    );
    add_user(&env, &acme, &anna, "buyer", true).await;
    add_user(&env, &acme, &vic, "viewer", false).await;
    let (s, c) = call(
        &env,
        KEY,
        "GET",
        &format!("/v1/companies/{acme}"),
        Value::Null,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["users"].as_array().unwrap().len(), 2, "{c}");

    // Anna names no company: her default company earns.
    let a = order(&env, "O-1", &anna, None, 600).await;
    assert_eq!(
        (
            a["member_id"].as_str(),
            a["earned_for"].as_str(),
            a["points"].as_i64()
        ),
        (Some(anna.as_str()), Some(acme.as_str()), Some(600))
    );
    // Named explicitly: the same; the company's volume (1,200 EUR) lifts it to Gold, and
    // this order's own points already earn at Gold.
    let b = order(&env, "O-2", &anna, Some(&acme), 600).await;
    assert_eq!(
        (
            b["earned_for"].as_str(),
            b["points"].as_i64(),
            b["tier"].as_str()
        ),
        (Some(acme.as_str()), Some(1200), Some("Gold"))
    );
    // A viewer does not buy for it: the points are the viewer's, and the answer says why.
    let v = order(&env, "O-3", &vic, Some(&acme), 100).await;
    assert_eq!(
        (v.get("earned_for"), v["company"]["status"].as_str()),
        (None, Some("not_a_buyer")),
        "{v}"
    );
    // A company the buyer is not in, or an id that is no company: the same answer.
    let s1 = order(&env, "O-4", &solo, Some(&acme), 100).await;
    let s2 = order(&env, "O-5", &solo, Some(&anna), 100).await;
    assert_eq!(
        (
            s1["company"]["status"].as_str(),
            s2["company"]["status"].as_str()
        ),
        (Some("not_a_buyer"), Some("not_a_buyer"))
    );

    let company = env.store.get_account("b2b", &acme).await.unwrap().unwrap();
    let anna_account = env.store.get_account("b2b", &anna).await.unwrap().unwrap();
    assert_eq!(
        (company.lifetime_earned, anna_account.lifetime_earned),
        (1800, 0)
    );
    assert_eq!(company.tier, "Gold");
    // The company's statement names the employee who earned each entry.
    let entries = env.store.entries("b2b", &acme).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.points, e.counterparty.as_deref()))
            .collect::<Vec<_>>(),
        vec![(600, Some(anna.as_str())), (1200, Some(anna.as_str()))]
    );

    // A refund of O-2 comes back from the company (where the points went).
    let body = json!({"type": "order.cancelled", "order_id": "O-2", "refund_id": "X-1",
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR"})
    .to_string();
    let headers = env.signed(SECRET, "msg-x", &body, 0);
    let (s, r) = Box::pin(env.call(
        "POST",
        "/v1/partners/office/webhooks/orders",
        &headers,
        body,
    ))
    .await;
    assert_eq!(
        (s, r["points"].as_i64(), r["from_own"].as_i64()),
        (StatusCode::OK, Some(1200), Some(1200)),
        "{r}"
    );
    let company = env.store.get_account("b2b", &acme).await.unwrap().unwrap();
    assert_eq!(company.pending.values().sum::<i64>(), 600);

    // Removed from the company, Anna earns for herself again.
    let (s, _) = call(
        &env,
        KEY,
        "DELETE",
        &format!("/v1/companies/{acme}/users/{anna}"),
        Value::Null,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let after = order(&env, "O-6", &anna, None, 50).await;
    assert_eq!(
        (after.get("earned_for"), after["points"].as_i64()),
        (None, Some(50))
    );
    let anna_account = env.store.get_account("b2b", &anna).await.unwrap().unwrap();
    assert_eq!(
        (anna_account.lifetime_earned, anna_account.default_company),
        (50, None)
    );
}

#[tokio::test]
async fn another_partner_can_neither_see_nor_change_the_company() {
    let env = TestEnv::with_config(CONFIG).await;
    let acme = new_company(&env).await;
    let anna = enrol(&env, KEY).await;
    // The rival partner of a closed programme: the same 404 as for no company at all.
    let (s1, a) = call(
        &env,
        KEY_OTHER,
        "GET",
        &format!("/v1/companies/{acme}"),
        Value::Null,
    )
    .await;
    let (s2, b) = call(
        &env,
        KEY_OTHER,
        "GET",
        "/v1/companies/C-NOSUCH",
        Value::Null,
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(a, b);
    let (s, _) = call(
        &env,
        KEY_OTHER,
        "PUT",
        &format!("/v1/companies/{acme}/users/{anna}"),
        json!({"role": "owner"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A person is not a company; a bad role is refused before anything is written.
    let (s, e) = call(
        &env,
        KEY,
        "GET",
        &format!("/v1/companies/{anna}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("company_not_found"))
    );
    let (s, e) = call(
        &env,
        KEY,
        "PUT",
        &format!("/v1/companies/{acme}/users/{anna}"),
        json!({"role": "boss"}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_role"))
    );
    assert!(env
        .store
        .company_users("b2b", &acme)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_buyers_ordering_into_one_company_at_once_are_all_booked() {
    let env = TestEnv::with_config(CONFIG).await;
    env.conflict_rule.enable();
    let acme = new_company(&env).await;
    let mut buyers = Vec::new();
    for _ in 0..50 {
        let b = enrol(&env, KEY).await;
        add_user(&env, &acme, &b, "buyer", true).await;
        buyers.push(b);
    }
    let answers = join_all(buyers.iter().enumerate().map(|(i, b)| {
        let env = &env;
        async move { order(env, &format!("H-{i}"), b, None, 10).await }
    }))
    .await;
    assert!(
        answers
            .iter()
            .all(|a| a["earned_for"] == json!(acme) && a["points"] == 10),
        "{answers:?}"
    );
    let company = env.store.get_account("b2b", &acme).await.unwrap().unwrap();
    assert_eq!((company.lifetime_earned, company.entry_seq), (500, 50));
    company.check().unwrap();
}

#[tokio::test]
async fn bonus_apply_creates_companies_and_their_users_and_checks_them() {
    let config = format!(
        "{CONFIG}members:\n  - {{id: P-1, programme: b2b, partner: office}}\n  - {{id: P-2, programme: b2b, partner: office}}\ncompanies:\n  - id: ACME\n    programme: b2b\n    name: ACME GmbH\n    partner: office\n    users:\n      - {{member: P-1, role: owner}}\n      - {{member: P-2, role: viewer}}\n"
    );
    let env = TestEnv::with_config(&config).await;
    let users = env.store.company_users("b2b", "ACME").await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| (u.member_id.as_str(), u.role))
            .collect::<Vec<_>>(),
        vec![
            ("P-1", bonus_domain::company::Role::Owner),
            ("P-2", bonus_domain::company::Role::Viewer)
        ]
    );
    // Applied again: nothing new, nothing lost.
    let plan = bonus_ops::apply::plan_file(&config).unwrap();
    bonus_ops::apply::apply(&env.store, &plan).await.unwrap();
    assert_eq!(
        env.store.company_users("b2b", "ACME").await.unwrap().len(),
        2
    );
    // The owner's orders earn for ACME.
    let a = order(&env, "O-1", "P-1", None, 20).await;
    assert_eq!(a["earned_for"], "ACME");
    // Mistakes are named by field.
    let bad = config.replace("{member: P-2, role: viewer}", "{member: P-9, role: boss}");
    let errors = bonus_ops::apply::plan_file(&bad).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("companies") || e.contains("role")),
        "{errors:?}"
    );
}

/// `company_rewards: both`, 80/20: each line rounded down once for the employee, the
/// company gets the rest; a refund takes each share back from where it went.
#[tokio::test]
async fn an_80_20_split_rounds_each_line_and_refunds_take_each_share_back() {
    let config = CONFIG.replace(
        "company_rewards: company",
        "company_rewards: both\n    company_employee_percent: 20",
    );
    let env = TestEnv::with_config(&config).await;
    let acme = new_company(&env).await;
    let anna = enrol(&env, KEY).await;
    add_user(&env, &acme, &anna, "buyer", true).await;
    // Line 1: 99 points (employee 19.8 -> 19, company 80); line 2: 51 (10.2 -> 10, 41).
    let body = json!({
        "type": "order.paid", "order_id": "S-1", "member_id": anna,
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR",
        "lines": [
            {"line_id": "1", "sku": "DESK", "quantity": 1, "unit_price": "99.00"},
            {"line_id": "2", "sku": "LAMP", "quantity": 3, "unit_price": "17.00"}
        ]
    })
    .to_string();
    let headers = env.signed(SECRET, "msg-s1", &body, 0);
    let (s, a) = Box::pin(env.call(
        "POST",
        "/v1/partners/office/webhooks/orders",
        &headers,
        body,
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(
        (
            a["points"].as_i64(),
            a["employee_points"].as_i64(),
            a["earned_for"].as_str()
        ),
        (Some(150), Some(29), Some(acme.as_str()))
    );
    let pending = |a: &bonus_domain::account::Account| a.pending.values().sum::<i64>();
    let company = env.store.get_account("b2b", &acme).await.unwrap().unwrap();
    let employee = env.store.get_account("b2b", &anna).await.unwrap().unwrap();
    assert_eq!((pending(&company), pending(&employee)), (121, 29));
    // Each statement says who: the company's names the employee, the employee's the company.
    let (ce, ee) = (
        env.store.entries("b2b", &acme).await.unwrap(),
        env.store.entries("b2b", &anna).await.unwrap(),
    );
    assert_eq!(
        (ce[0].points, ce[0].counterparty.as_deref()),
        (121, Some(anna.as_str()))
    );
    assert_eq!(
        (ee[0].points, ee[0].counterparty.as_deref()),
        (29, Some(acme.as_str()))
    );
    // Tiers follow the company's volume (150 EUR), not the employee's.
    assert_eq!(
        (
            company.volume.values().sum::<i64>(),
            employee.volume.values().sum::<i64>()
        ),
        (15_000, 0)
    );

    // Line 2 back: its 51 points, 10 from the employee and 41 from the company.
    let refund = json!({"type": "order.refunded", "order_id": "S-1", "refund_id": "R-1",
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR",
        "lines": [{"line_id": "2", "quantity": 3}]})
    .to_string();
    let headers = env.signed(SECRET, "msg-r1", &refund, 0);
    let (s, r) = Box::pin(env.call(
        "POST",
        "/v1/partners/office/webhooks/orders",
        &headers,
        refund,
    ))
    .await;
    assert_eq!(
        (s, r["points"].as_i64(), r["from_own"].as_i64()),
        (StatusCode::OK, Some(51), Some(51)),
        "{r}"
    );
    let company = env.store.get_account("b2b", &acme).await.unwrap().unwrap();
    let employee = env.store.get_account("b2b", &anna).await.unwrap().unwrap();
    assert_eq!((pending(&company), pending(&employee)), (80, 19));

    // A company that keeps its employees' share: all to the company.
    let (s, c) = call(
        &env,
        KEY,
        "POST",
        "/v1/companies",
        json!({"name": "Solo AG", "employee_share": false}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let solo = c["company_id"].as_str().unwrap().to_string();
    let ben = enrol(&env, KEY).await;
    add_user(&env, &solo, &ben, "owner", true).await;
    let b = order(&env, "S-2", &ben, None, 99).await;
    assert_eq!(
        (b["earned_for"].as_str(), b.get("employee_points")),
        (Some(solo.as_str()), None)
    );
    let report =
        bonus_ops::audit::audit(&env.store, &["b2b".to_string()], env.clock_now(), |_, _| {})
            .await
            .unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
}

/// A refund that came before its split order is applied with it, to both shares.
#[tokio::test]
async fn a_refund_before_a_split_order_takes_back_from_both_when_the_order_comes() {
    let config = CONFIG.replace("company_rewards: company", "company_rewards: both");
    let env = TestEnv::with_config(&config).await;
    let acme = new_company(&env).await;
    let anna = enrol(&env, KEY).await;
    add_user(&env, &acme, &anna, "buyer", true).await;
    let cancel = json!({"type": "order.cancelled", "order_id": "E-1", "refund_id": "X",
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR"})
    .to_string();
    let headers = env.signed(SECRET, "msg-c", &cancel, 0);
    let (s, _) = Box::pin(env.call(
        "POST",
        "/v1/partners/office/webhooks/orders",
        &headers,
        cancel,
    ))
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let a = order(&env, "E-1", &anna, None, 100).await;
    assert_eq!(
        (a["points"].as_i64(), a["employee_points"].as_i64()),
        (Some(100), Some(20))
    );
    let company = env.store.get_account("b2b", &acme).await.unwrap().unwrap();
    let employee = env.store.get_account("b2b", &anna).await.unwrap().unwrap();
    assert_eq!(
        (
            company.outstanding(),
            employee.outstanding(),
            company.debt,
            employee.debt
        ),
        (0, 0, 0, 0)
    );
}
