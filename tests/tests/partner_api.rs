//! The partner API (`/v1/partner/...`, functions/partner-api) over the embedded DynamoDB:
//! a vendor's own campaigns, budgets, reports, rates and audit trail, and what another
//! partner (or a key without `manage`) can never see or change.

use bytes::Bytes;
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SHOP_KEY: &str = "bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088";
const RIVAL_KEY: &str = "bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49";
const WIDGET_KEY: &str = "bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9";
const SHOP_SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";
const RIVAL_SECRET: &str = "whsec_b3RoZXItc2hvcC1zZWNyZXQtMDEyMzQ1Njc4OQ==";

const CONFIG: &str = r#"
programmes:
  - id: velo
    name: Velo
    kind: coalition
    currency: EUR
    time_zone: Europe/Amsterdam
partners:
  - id: shop
    programme: velo
    name: Shop
    time_zone: Europe/Amsterdam
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: backoffice, key: bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088, scopes: [manage]}
      - {label: widget, key: bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9, scopes: [read_balance, hold]}
  - id: rival
    programme: velo
    name: Rival
    webhook_secrets: [whsec_b3RoZXItc2hvcC1zZWNyZXQtMDEyMzQ1Njc4OQ==]
    api_keys:
      - {label: backoffice, key: bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49, scopes: [manage]}
members:
  - id: M-1
    programme: velo
    external_ids: {shop: "C-77"}
"#;

fn helmets() -> Value {
    json!({
        "id": "helmets",
        "name": "Helmets at 1.3% of cost",
        "skus": ["HELMET-1"],
        "starts_on": "2026-11-20",
        "ends_on": "2026-11-30",
        "rule": {"kind": "cost_percent"},
        "budget": 150000
    })
}

async fn call(
    env: &TestEnv,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    env.call_as(key, "Jana Novak", method, path, body).await
}

/// The raw body and content type of a GET (reports in CSV and SVG).
async fn raw(env: &TestEnv, key: &str, path: &str) -> (StatusCode, String, String) {
    let req = http::Request::builder()
        .method("GET")
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Bytes::new())
        .unwrap();
    let resp = bonus_ops::dev::dispatch(&env.ctx, req).await;
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (resp.status(), ct, resp.body().clone())
}

async fn order_at(
    env: &TestEnv,
    partner: &str,
    secret: &str,
    id: &str,
    lines: Value,
) -> (StatusCode, Value) {
    let body = json!({
        "type": "order.paid", "order_id": id, "member_id": "M-1",
        "occurred_at": "2026-11-23T11:00:00Z", "currency": "EUR", "lines": lines
    })
    .to_string();
    let headers = env.signed(secret, &format!("msg_{id}"), &body, 0);
    env.call(
        "POST",
        &format!("/v1/partners/{partner}/webhooks/orders"),
        &headers,
        body,
    )
    .await
}

#[tokio::test]
async fn a_vendor_campaign_created_over_the_api_pays_130_points_per_helmet_and_shows_in_its_report()
{
    let env = TestEnv::with_config(CONFIG).await;
    let (status, created) = call(&env, SHOP_KEY, "POST", "/v1/partner/campaigns", helmets()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "running");
    assert_eq!(created["budget"], 150000);
    assert_eq!(created["budget_remaining"], 150000);
    assert_eq!(
        created["rule"],
        json!({"kind": "cost_percent", "percent": "1.3"})
    );

    // The same body again is the same campaign; another body under the id is a conflict.
    let (status, again) = call(&env, SHOP_KEY, "POST", "/v1/partner/campaigns", helmets()).await;
    assert_eq!((status, &again), (StatusCode::OK, &created));
    let mut other = helmets();
    other["budget"] = json!(1);
    let (status, e) = call(&env, SHOP_KEY, "POST", "/v1/partner/campaigns", other).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "campaign_exists");

    // Two helmets at 129.00 with a cost price of 100.00: 258 base + 2 x 130 campaign.
    let (status, booked) = order_at(
        &env,
        "shop",
        SHOP_SECRET,
        "O-1",
        json!([{"line_id": "1", "sku": "HELMET-1", "quantity": 2,
                "unit_price": "129.00", "cost_price": "100.00"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{booked}");
    assert_eq!(booked["points"], 518);
    assert_eq!(booked["lines"][0]["campaigns"][0]["points"], 260);

    let (status, shown) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/campaigns/helmets",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["budget_spent"], 260);
    assert_eq!(shown["budget_remaining"], 149740);

    let (status, report) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/campaigns/helmets/report",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let campaign_period = &report["periods"][3];
    assert_eq!(campaign_period["from"], "2026-11-20");
    assert_eq!(campaign_period["points_issued"], 260);
    assert_eq!(campaign_period["quantity"], 2);
    assert_eq!(campaign_period["turnover_minor"], 25800);
    assert_eq!(campaign_period["member_buyers"], 1);

    let (status, ct, csv) = raw(
        &env,
        SHOP_KEY,
        "/v1/partner/campaigns/helmets/report?format=csv",
    )
    .await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    assert!(csv.lines().count() >= 5, "{csv}");
    assert!(csv.contains("2026-11-20"), "{csv}");
    let (status, ct, svg) = raw(
        &env,
        SHOP_KEY,
        "/v1/partner/campaigns/helmets/report?format=svg",
    )
    .await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/svg+xml"));
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/campaigns/helmets/report?format=pdf",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "invalid_format");

    // The audit trail: one change, by Jana, the campaign after it.
    let (status, trail) = call(&env, SHOP_KEY, "GET", "/v1/partner/changes", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let changes = trail["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{trail}");
    assert_eq!(changes[0]["actor"], "Jana Novak");
    assert_eq!(changes[0]["via"], "api:backoffice");
    assert_eq!(changes[0]["subject"], "campaign");
    assert_eq!(changes[0]["subject_id"], "helmets");
    assert_eq!(changes[0]["action"], "created");
    assert_eq!(changes[0]["before"], Value::Null);
    assert_eq!(changes[0]["after"]["budget"], 150000);
}

#[tokio::test]
async fn top_ups_count_once_per_reference_and_patches_keep_budgets_growing() {
    let env = TestEnv::with_config(CONFIG).await;
    call(&env, SHOP_KEY, "POST", "/v1/partner/campaigns", helmets()).await;
    let path = "/v1/partner/campaigns/helmets/top-ups";
    let (status, first) = call(
        &env,
        SHOP_KEY,
        "POST",
        path,
        json!({"points": 50000, "reference": "pack-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        first,
        json!({"campaign_id": "helmets", "reference": "pack-1", "points": 50000, "budget": 200000})
    );
    let (status, again) = call(
        &env,
        SHOP_KEY,
        "POST",
        path,
        json!({"points": 50000, "reference": "pack-1"}),
    )
    .await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "POST",
        path,
        json!({"points": 1, "reference": "pack-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "top_up_conflict");
    let (_, shown) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/campaigns/helmets",
        Value::Null,
    )
    .await;
    assert_eq!(
        (shown["budget"].clone(), shown["budget_remaining"].clone()),
        (json!(200000), json!(200000))
    );

    // A patch: renamed and ended early; the budget cannot shrink, the shards are fixed.
    let campaign = "/v1/partner/campaigns/helmets";
    let (status, patched) = call(
        &env,
        SHOP_KEY,
        "PATCH",
        campaign,
        json!({"name": "Helmet week", "ends_on": "2026-11-25", "weekdays": ["mon", "tue"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Helmet week");
    assert_eq!(patched["ends_on"], "2026-11-25");
    assert_eq!(patched["budget"], 200000);
    let (status, e) = call(&env, SHOP_KEY, "PATCH", campaign, json!({"budget": 10})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("budget_cannot_shrink"))
    );
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "PATCH",
        campaign,
        json!({"budget_shards": 8}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("budget_shards_fixed"))
    );
    let (status, e) = call(&env, SHOP_KEY, "PATCH", campaign, json!({"id": "other"})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "PATCH",
        campaign,
        json!({"ends_on": "2026-11-01"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        e["error"]["message"],
        "ends_on: must not be before starts_on"
    );

    // Created, topped up, patched: three changes, newest first, with before and after.
    let (_, trail) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/changes?limit=2",
        Value::Null,
    )
    .await;
    let changes = trail["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["action"], "updated");
    assert_eq!(changes[0]["before"]["name"], "Helmets at 1.3% of cost");
    assert_eq!(changes[0]["after"]["name"], "Helmet week");
    assert_eq!(changes[1]["action"], "topped_up");
    assert_eq!(
        (
            changes[1]["before"]["budget"].clone(),
            changes[1]["after"]["budget"].clone()
        ),
        (json!(150000), json!(200000))
    );
    let cursor = trail["next_cursor"].as_str().expect("a next page");
    let (_, rest) = call(
        &env,
        SHOP_KEY,
        "GET",
        &format!("/v1/partner/changes?cursor={cursor}"),
        Value::Null,
    )
    .await;
    let rest = rest["changes"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["action"], "created");
}

#[tokio::test]
async fn campaigns_are_validated_as_strictly_as_the_config_file_and_refusals_change_nothing() {
    let env = TestEnv::with_config(CONFIG).await;
    let with = |field: &str, value: Value| {
        let mut b = helmets();
        if value.is_null() {
            b.as_object_mut().unwrap().remove(field);
        } else {
            b[field] = value;
        }
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with("budget", json!(0)),
            "budget: must be a positive number of points, at most 1000000000000",
        ),
        (
            with("ends_on", json!("2026-11-01")),
            "ends_on: must not be before starts_on",
        ),
        (
            with("tiers", json!(["Diamond"])),
            "tiers: 'Diamond' is not a tier of the partner's programme",
        ),
        (
            with("skus", json!([])),
            "skus: list SKUs, or product_groups, or set all_products (exactly one of them)",
        ),
        (
            with("all_products", json!(true)),
            "skus: list SKUs, or product_groups, or set all_products (exactly one of them)",
        ),
        (with("skus", json!(["A", "A"])), "skus: a SKU appears twice"),
        (
            with("hours", json!({"from": 19, "to": 17})),
            "hours: from 0-23 and to 1-24, from before to",
        ),
        (
            with("rule", json!({"kind": "fixed_per_unit", "points": 0})),
            "rule.points: must be above 0 and at most 1000000",
        ),
        (
            with("rule", json!({"kind": "cost_percent", "percent": "101"})),
            "rule.percent: must be above 0 and at most 100",
        ),
        (with("name", json!("  ")), "name: 1 to 200 characters"),
        (
            with("weekdays", json!(["mon", "mon"])),
            "weekdays: a day appears twice",
        ),
        (
            with("partner", json!("rival")),
            "partner: leave it out; a campaign is the calling key's partner's",
        ),
        (
            with("id", json!("has space")),
            "id: 'has space' must be 1-128 characters of A-Z a-z 0-9 . _ : @ / -",
        ),
    ];
    for (body, message) in cases {
        let (status, e) = call(
            &env,
            SHOP_KEY,
            "POST",
            "/v1/partner/campaigns",
            body.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(e["error"]["code"], "invalid_field", "{body}");
        assert_eq!(e["error"]["message"], message, "{body}");
    }
    // Wrong shapes: the field is named.
    for (body, field) in [
        (with("budget", json!("lots")), "budget"),
        (with("rule", json!({"kind": "double"})), "rule"),
        (with("colour", json!("red")), "colour"),
    ] {
        let (status, e) = call(&env, SHOP_KEY, "POST", "/v1/partner/campaigns", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            e["error"]["message"].as_str().unwrap().contains(field),
            "{e}"
        );
    }
    let (status, e) = env
        .call(
            "POST",
            "/v1/partner/campaigns",
            &[("authorization", format!("Bearer {SHOP_KEY}"))],
            "{",
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (_, list) = call(&env, SHOP_KEY, "GET", "/v1/partner/campaigns", Value::Null).await;
    assert_eq!(list["campaigns"], json!([]));
    let (_, trail) = call(&env, SHOP_KEY, "GET", "/v1/partner/changes", Value::Null).await;
    assert_eq!(trail["changes"], json!([]));
}

#[tokio::test]
async fn product_group_and_happy_hour_campaigns_pay_only_on_their_lines_and_hours() {
    let env = TestEnv::with_config(CONFIG).await;
    let body = json!({
        "id": "bread-hour", "name": "Bread happy hour", "product_groups": ["bread"],
        "starts_on": "2026-11-20", "ends_on": "2026-11-30", "hours": {"from": 11, "to": 13},
        "rule": {"kind": "per_currency_unit", "points": "4"}, "budget": 1000
    });
    let (status, c) = call(&env, SHOP_KEY, "POST", "/v1/partner/campaigns", body).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    // 11:00 UTC is 12:00 in Amsterdam: inside the hours. Bread 5.00 earns 5 + 20; wine 10.00 earns 10.
    let (status, booked) = order_at(&env, "shop", SHOP_SECRET, "O-1", json!([
        {"line_id": "1", "sku": "LOAF", "quantity": 1, "unit_price": "5.00", "product_group": "bread"},
        {"line_id": "2", "sku": "WINE", "quantity": 1, "unit_price": "10.00", "product_group": "wine"}
    ])).await;
    assert_eq!(status, StatusCode::OK, "{booked}");
    assert_eq!(booked["lines"][0]["points"], 25);
    assert_eq!(booked["lines"][1]["points"], 10);
    assert_eq!(booked["points"], 35);
    // Its report needs SKUs.
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/campaigns/bread-hour/report",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("report_needs_skus"))
    );
}

#[tokio::test]
async fn a_partner_sets_its_own_rate_and_its_orders_earn_at_it() {
    let env = TestEnv::with_config(CONFIG).await;
    let (status, s) = call(
        &env,
        RIVAL_KEY,
        "PATCH",
        "/v1/partner",
        json!({"rates": {"points_per_unit": "20", "product_groups": {"bread": "5"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["earning"]["points_per_unit"], "20");
    assert_eq!(s["earning"]["product_groups"]["bread"], "5");
    // 10.00 of wine at the rival: 200 points; 2.00 of bread: 2 x 20 x 5 = 200; at the shop
    // the programme's 1 point per euro still holds.
    let (_, booked) = order_at(&env, "rival", RIVAL_SECRET, "R-1", json!([
        {"line_id": "1", "sku": "WINE", "quantity": 1, "unit_price": "10.00"},
        {"line_id": "2", "sku": "LOAF", "quantity": 1, "unit_price": "2.00", "product_group": "bread"}
    ])).await;
    assert_eq!(booked["points"], 400, "{booked}");
    let (_, booked) = order_at(
        &env,
        "shop",
        SHOP_SECRET,
        "S-1",
        json!([
            {"line_id": "1", "sku": "WINE", "quantity": 1, "unit_price": "10.00"}
        ]),
    )
    .await;
    assert_eq!(booked["points"], 10, "{booked}");
    // Out of range: refused, nothing changed.
    let (status, e) = call(
        &env,
        RIVAL_KEY,
        "PATCH",
        "/v1/partner",
        json!({"rates": {"points_per_unit": "2000"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        e["error"]["message"],
        "rates.points_per_unit: must be between 0 and 1000"
    );
    let (_, s) = call(&env, RIVAL_KEY, "GET", "/v1/partner", Value::Null).await;
    assert_eq!(s["rates"]["points_per_unit"], "20");
    // null: back to the programme's.
    let (_, s) = call(
        &env,
        RIVAL_KEY,
        "PATCH",
        "/v1/partner",
        json!({"rates": null}),
    )
    .await;
    assert_eq!(s["earning"]["points_per_unit"], "1");
    let (_, trail) = call(&env, RIVAL_KEY, "GET", "/v1/partner/changes", Value::Null).await;
    let changes = trail["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["subject"], "settings");
    assert_eq!(changes[0]["before"]["rates"]["points_per_unit"], "20");
    assert_eq!(changes[0]["after"]["rates"]["points_per_unit"], Value::Null);
}

#[tokio::test]
async fn another_partner_never_sees_or_changes_a_partners_campaigns_reports_or_trail() {
    let env = TestEnv::with_config(CONFIG).await;
    call(&env, SHOP_KEY, "POST", "/v1/partner/campaigns", helmets()).await;
    let (_, missing) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/campaigns/nothing",
        Value::Null,
    )
    .await;
    assert_eq!(missing["error"]["code"], "campaign_not_found");
    for (method, path, body) in [
        ("GET", "/v1/partner/campaigns/helmets", Value::Null),
        (
            "PATCH",
            "/v1/partner/campaigns/helmets",
            json!({"name": "Mine now"}),
        ),
        (
            "POST",
            "/v1/partner/campaigns/helmets/top-ups",
            json!({"points": 5, "reference": "x"}),
        ),
        ("GET", "/v1/partner/campaigns/helmets/report", Value::Null),
    ] {
        let (status, e) = call(&env, RIVAL_KEY, method, path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(
            e, missing,
            "{method} {path}: told apart from a campaign that does not exist"
        );
    }
    // Its own id "helmets" is its own campaign, apart from the shop's.
    let (status, _) = call(&env, RIVAL_KEY, "POST", "/v1/partner/campaigns", helmets()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = call(&env, RIVAL_KEY, "GET", "/v1/partner/campaigns", Value::Null).await;
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1);
    assert_eq!(list["campaigns"][0]["partner_id"], "rival");
    let (_, trail) = call(&env, RIVAL_KEY, "GET", "/v1/partner/changes", Value::Null).await;
    assert_eq!(trail["changes"].as_array().unwrap().len(), 1);
    let (_, shop) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/campaigns/helmets",
        Value::Null,
    )
    .await;
    assert_eq!(shop["name"], "Helmets at 1.3% of cost");
    assert_eq!(shop["budget"], 150000);

    // A key without `manage` is refused before anything is read; no key at all is a 401.
    for (method, path) in [
        ("GET", "/v1/partner"),
        ("GET", "/v1/partner/campaigns"),
        ("POST", "/v1/partner/campaigns"),
        ("GET", "/v1/partner/changes"),
    ] {
        let (status, e) = call(&env, WIDGET_KEY, method, path, helmets()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("missing_scope"))
        );
        let (status, _) = env.call(method, path, &[], "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_partner_reads_its_own_clearing_statement_and_finds_members_by_its_customer_ids() {
    let env = TestEnv::with_config(CONFIG).await;
    // M-1 earns 300 at the shop in November (pending until 7 December).
    order_at(
        &env,
        "shop",
        SHOP_SECRET,
        "O-1",
        json!([
        {"line_id": "1", "sku": "WINE", "quantity": 1, "unit_price": "300.00"}]),
    )
    .await;
    env.clock.set("2026-11-24T12:00:00Z".parse().unwrap());
    let rival_till = [("authorization", format!("Bearer {RIVAL_KEY}"))];
    let (status, _) = env
        .call("GET", "/v1/partner/members/M-1", &rival_till, "")
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a coalition partner sees a member's balance"
    );
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/clearing/2026-11",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("month_not_closed"))
    );
    env.clock.set("2026-12-01T13:00:00Z".parse().unwrap());
    bonus_ops::clearing::close(&env.store, "velo", "2026-11", env.clock_now())
        .await
        .unwrap();
    let (status, mine) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/clearing/2026-11",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["statement"]["partner_id"], "shop");
    assert_eq!(mine["statement"]["issued"], 300);
    assert!(mine.get("statements").is_none(), "only its own statement");
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/clearing/november",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_month"))
    );

    // By its own customer id; another partner's customer ids are not its to use.
    let (status, found) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/members?customer_id=C-77",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["member_id"], "M-1");
    assert_eq!(found["balance"]["pending"], 300);
    let (status, e) = call(
        &env,
        RIVAL_KEY,
        "GET",
        "/v1/partner/members?customer_id=C-77",
        Value::Null,
    )
    .await;
    let (_, none) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/members?customer_id=C-78",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e, none);
    let (status, _) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/members/M-404",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_vendor_buys_a_pack_for_its_campaign_once_and_it_is_on_the_months_invoice() {
    let env = TestEnv::with_config(CONFIG).await;
    call(&env, SHOP_KEY, "POST", "/v1/partner/campaigns", helmets()).await;
    let (status, packs) = call(&env, SHOP_KEY, "GET", "/v1/partner/packs", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<(&str, i64, &str)> = packs["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pack_id"].as_str().unwrap(),
                p["points"].as_i64().unwrap(),
                p["price"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("150k", 150000, "2500.00"),
            ("200k", 200000, "3200.00"),
            ("370k", 370000, "5700.00"),
            ("580k", 580000, "8700.00")
        ]
    );

    let path = "/v1/partner/campaigns/helmets/packs";
    let (status, bought) = call(
        &env,
        SHOP_KEY,
        "POST",
        path,
        json!({"pack_id": "200k", "reference": "PO-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    assert_eq!(bought["budget"], 350000);
    assert_eq!(bought["invoice_line"]["price"], "3200.00");
    assert_eq!(bought["invoice_line"]["bought_by"], "Jana Novak");
    let (status, again) = call(
        &env,
        SHOP_KEY,
        "POST",
        path,
        json!({"pack_id": "200k", "reference": "PO-1"}),
    )
    .await;
    assert_eq!((status, &again), (StatusCode::OK, &bought));
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "POST",
        path,
        json!({"pack_id": "580k", "reference": "PO-1"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("top_up_conflict"))
    );
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "POST",
        path,
        json!({"pack_id": "1m", "reference": "PO-2"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_pack"))
    );
    let (_, shown) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/campaigns/helmets",
        Value::Null,
    )
    .await;
    assert_eq!(
        (shown["budget"].as_i64(), shown["budget_remaining"].as_i64()),
        (Some(350000), Some(350000))
    );

    let (status, invoice) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/invoices/2026-11",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{invoice}");
    assert_eq!(invoice["lines"].as_array().unwrap().len(), 1);
    assert_eq!(invoice["total"], "3200.00");
    let (_, theirs) = call(
        &env,
        RIVAL_KEY,
        "GET",
        "/v1/partner/invoices/2026-11",
        Value::Null,
    )
    .await;
    assert_eq!(
        theirs["lines"],
        json!([]),
        "another partner's invoice is its own"
    );
    let (status, e) = call(
        &env,
        RIVAL_KEY,
        "POST",
        path,
        json!({"pack_id": "150k", "reference": "X"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("campaign_not_found"))
    );

    // The planner: 100.00 helmets, 150 a day on the 10 weekdays of 2-13 Nov: 195,000 points.
    let (status, plan) = call(&env, SHOP_KEY, "POST", "/v1/partner/plans", json!({
        "skus": [{"sku": "HELMET-1", "cost_price": "100.00", "units_per_day": 150}],
        "starts_on": "2026-11-02", "ends_on": "2026-11-15", "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "pack_id": "150k"})).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(
        (plan["days"].as_i64(), plan["points_needed"].as_i64()),
        (Some(10), Some(195000))
    );
    assert_eq!(plan["smallest_covering_pack"], "200k");
    assert!(
        plan["warnings"][0].as_str().unwrap().contains("too small"),
        "{plan}"
    );
}

#[tokio::test]
async fn a_sandbox_partners_orders_are_answered_and_never_touch_balances() {
    let env = TestEnv::with_config(CONFIG).await;
    let (status, s) = call(
        &env,
        SHOP_KEY,
        "PATCH",
        "/v1/partner",
        json!({"sandbox": true}),
    )
    .await;
    assert_eq!(
        (status, s["sandbox"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{s}"
    );
    let line = json!([{"line_id": "1", "sku": "WINE", "quantity": 1, "unit_price": "10.00"}]);
    let before = env.all_items().await.len();
    let (status, answer) = order_at(&env, "shop", SHOP_SECRET, "T-1", line.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["points"].as_i64(), answer["sandbox"].as_bool()),
        (Some(10), Some(true))
    );
    let refund = json!({"type": "order.refunded", "order_id": "T-1", "refund_id": "R-1",
        "occurred_at": "2026-11-23T11:30:00Z", "lines": [{"line_id": "1", "quantity": 1}]})
    .to_string();
    let headers = env.signed(SHOP_SECRET, "msg_r", &refund, 0);
    let (status, r) = env
        .call(
            "POST",
            "/v1/partners/shop/webhooks/orders",
            &headers,
            refund,
        )
        .await;
    assert!(status.is_success(), "{status} {r}");
    assert_eq!(r["sandbox"], true, "{r}");
    assert_eq!(env.all_items().await.len(), before, "nothing was written");
    let (_, b) = env.balance_with("M-1", WIDGET_KEY).await;
    assert_eq!(b["total"], 0);
    // Out of the sandbox, the same order books for real.
    call(
        &env,
        SHOP_KEY,
        "PATCH",
        "/v1/partner",
        json!({"sandbox": false}),
    )
    .await;
    let (status, real) = order_at(&env, "shop", SHOP_SECRET, "T-1", line).await;
    assert_eq!(
        (status, real["points"].as_i64(), real.get("sandbox")),
        (StatusCode::OK, Some(10), None)
    );
    let (_, b) = env.balance_with("M-1", WIDGET_KEY).await;
    assert_eq!(b["total"], 10);
}
