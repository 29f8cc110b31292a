//! The campaign report from known orders over four periods (signed webhooks, the embedded
//! DynamoDB): the CSV figures are the ones worked out by hand, and the SVG chart's bars
//! have the right heights.
//!
//! Campaign `lights` at `shop` (UTC), LAMP and BELL, 15-21 Nov 2026, 5 points per unit.
//! LAMP costs 10.00, BELL 5.00, TYRE (not in the campaign) 50.00.
//!
//! | period            | orders                                              | turnover | qty | members | others |
//! |-------------------|-----------------------------------------------------|---------:|----:|--------:|-------:|
//! | 25-31 Oct         | M-1 2 LAMP; cust-1 1 BELL                          |    25.00 |   3 |       1 |      1 |
//! | 1-7 Nov           | M-1 1 LAMP + 1 TYRE                                |    10.00 |   1 |       1 |      0 |
//! | 8-14 Nov          | M-2 3 LAMP; cust-1 1 BELL; anonymous 1 BELL        |    40.00 |   5 |       1 |      2 |
//! | 15-21 Nov (camp.) | M-1 4 LAMP + 2 BELL; M-2 2 BELL; cust-2 1 LAMP, twice |  80.00 |  10 |       2 |      1 |
//!
//! Campaign points: members only, (4 + 2 + 2) x 5 = 40 = 0.40 EUR. Baseline turnover
//! (25 + 10 + 40) / 3 = 25.00, uplift 55.00 = +220 %; quantity baseline 3, +7 = +233.33 %;
//! buyers baseline 2, campaign 3 = +50 %; ROI (55.00 - 0.40) / 0.40 = 13,650 %.
//! An order on 22 Nov is after the campaign and counts nowhere.

use http::StatusCode;
use integration_tests::{TestEnv, CONFIG};
use serde_json::{json, Value};

fn config() -> String {
    let mut c = CONFIG.to_string();
    c.push_str(
        r#"campaigns:
  - id: lights
    partner: shop
    name: Lights and bells
    skus: [LAMP, BELL]
    starts_on: 2026-11-15
    ends_on: 2026-11-21
    rule: {kind: fixed_per_unit, points: 5}
    budget: 150000
"#,
    );
    c
}

async fn order(env: &TestEnv, id: &str, when: &str, who: Value, lines: &[(&str, i64, &str)]) {
    env.clock.set(when.parse().unwrap());
    let lines: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, qty, price))| {
            json!({"line_id": (i + 1).to_string(), "sku": sku, "quantity": qty, "unit_price": price})
        })
        .collect();
    let mut body = json!({"type": "order.paid", "order_id": id, "occurred_at": when,
        "currency": "EUR", "lines": lines});
    if let Some(m) = who.get("member_id") {
        body["member_id"] = m.clone();
    }
    if let Some(c) = who.get("customer_id") {
        body["customer_id"] = c.clone();
    }
    let (status, answer) = env.order(&body.to_string()).await;
    assert!(
        status == StatusCode::OK || status == StatusCode::ACCEPTED,
        "{answer}"
    );
}

fn member(id: &str) -> Value {
    json!({"member_id": id})
}

fn customer(id: &str) -> Value {
    json!({"customer_id": id})
}

/// Order id, time, who bought, lines (sku, quantity, unit price).
type ScriptedOrder = (
    &'static str,
    &'static str,
    Value,
    &'static [(&'static str, i64, &'static str)],
);

async fn four_periods(env: &TestEnv) {
    const LAMP: &str = "10.00";
    const BELL: &str = "5.00";
    const TYRE: &str = "50.00";
    let orders: [ScriptedOrder; 12] = [
        (
            "O-1",
            "2026-10-26T10:00:00Z",
            member("M-1"),
            &[("LAMP", 2, LAMP)],
        ),
        (
            "O-2",
            "2026-10-27T10:00:00Z",
            customer("cust-1"),
            &[("BELL", 1, BELL)],
        ),
        (
            "O-3",
            "2026-11-03T10:00:00Z",
            member("M-1"),
            &[("LAMP", 1, LAMP), ("TYRE", 1, TYRE)],
        ),
        (
            "O-4",
            "2026-11-10T10:00:00Z",
            member("M-2"),
            &[("LAMP", 3, LAMP)],
        ),
        (
            "O-5",
            "2026-11-11T10:00:00Z",
            customer("cust-1"),
            &[("BELL", 1, BELL)],
        ),
        (
            "O-6",
            "2026-11-12T10:00:00Z",
            json!({}),
            &[("BELL", 1, BELL)],
        ),
        (
            "O-7",
            "2026-11-16T10:00:00Z",
            member("M-1"),
            &[("LAMP", 4, LAMP), ("BELL", 2, BELL)],
        ),
        (
            "O-8",
            "2026-11-17T10:00:00Z",
            member("M-2"),
            &[("BELL", 2, BELL)],
        ),
        (
            "O-9",
            "2026-11-18T10:00:00Z",
            customer("cust-2"),
            &[("LAMP", 1, LAMP)],
        ),
        (
            "O-10",
            "2026-11-19T10:00:00Z",
            customer("cust-2"),
            &[("LAMP", 1, LAMP)],
        ),
        (
            "O-11",
            "2026-11-22T10:00:00Z",
            member("M-1"),
            &[("LAMP", 9, LAMP)],
        ),
        // A webhook retried: counted once.
        (
            "O-8",
            "2026-11-17T10:00:00Z",
            member("M-2"),
            &[("BELL", 2, BELL)],
        ),
    ];
    for (id, when, who, lines) in orders {
        order(env, id, when, who, lines).await;
    }
}

/// `<rect>` elements of the SVG with a given fill: (x, y, width, height).
fn bars(svg: &str, fill: &str) -> Vec<(f64, f64, f64, f64)> {
    let attr = |tag: &str, name: &str| -> f64 {
        let key = format!(" {name}=\"");
        let start = tag.find(&key).map(|i| i + key.len()).unwrap_or(0);
        let end = tag[start..].find('"').map_or(start, |e| start + e);
        tag[start..end].parse().unwrap_or(f64::NAN)
    };
    svg.split("<rect")
        .skip(1)
        .map(|t| &t[..t.find("/>").unwrap_or(t.len())])
        .filter(|t| t.to_lowercase().contains(&format!("fill=\"{fill}\"")))
        .map(|t| {
            (
                attr(t, "x"),
                attr(t, "y"),
                attr(t, "width"),
                attr(t, "height"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_campaign_over_four_periods_reports_the_figures_worked_by_hand() {
    let env = TestEnv::with_config(&config()).await;
    four_periods(&env).await;
    let (programme, campaign) = bonus_ops::report::find_campaign(&env.store, "lights", None)
        .await
        .unwrap();
    let report = bonus_ops::report::gather(&env.store, &programme, &campaign)
        .await
        .unwrap();
    let csv = bonus_domain::report::csv(&report);
    assert_eq!(
        csv,
        "period,from,to,turnover_minor_EUR,quantity,member_buyers,non_member_buyers,points_issued,points_cost_minor_EUR\n\
         before_3,2026-10-25,2026-10-31,2500,3,1,1,0,0\n\
         before_2,2026-11-01,2026-11-07,1000,1,1,0,0,0\n\
         before_1,2026-11-08,2026-11-14,4000,5,1,2,0,0\n\
         campaign,2026-11-15,2026-11-21,8000,10,2,1,40,40\n\
         baseline,,,2500,3,,,,\n\
         uplift,,,5500,7,,,,\n\
         uplift_percent,,,220,233.33,,,,\n\
         buyers_uplift_percent,,,,,50,,,\n\
         roi_percent,,,,,,,,13650\n"
    );

    // The chart: per panel three grey bars and one blue, heights in proportion.
    let svg = bonus_ops::report::svg(&report, programme.currency).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    let grey = bars(&svg, "#9e9e9e");
    let blue = bars(&svg, "#1f6fd1");
    assert_eq!((grey.len(), blue.len()), (9, 3), "{svg}");
    // Turnover panel: 25.00, 10.00, 40.00 against 80.00; the tallest bar is the campaign's.
    let h: Vec<f64> = grey[..3].iter().map(|b| b.3).collect();
    let campaign_h = blue[0].3;
    for (bar, value) in h.iter().zip([2500.0, 1000.0, 4000.0]) {
        assert!(
            (bar / campaign_h - value / 8000.0).abs() < 0.01,
            "{h:?} {campaign_h}"
        );
    }
    // Bars stand on one line, side by side, the campaign last.
    let ground: Vec<f64> = grey[..3]
        .iter()
        .chain(&blue[..1])
        .map(|b| b.1 + b.3)
        .collect();
    assert!(
        ground.windows(2).all(|w| (w[0] - w[1]).abs() < 1.0),
        "{ground:?}"
    );
    assert!(grey[2].0 < blue[0].0);
    // What a reader sees: the values and the uplift.
    for text in [
        "80.00",
        "25.00",
        "+220 % vs baseline",
        "+50 % vs baseline",
        "campaign",
    ] {
        assert!(svg.contains(&format!(">{text}</text>")), "{text}: {svg}");
    }
}

#[tokio::test]
#[ignore = "writes /tmp/campaign.svg to look at"]
async fn write_the_chart() {
    let env = TestEnv::with_config(&config()).await;
    four_periods(&env).await;
    let (p, c) = bonus_ops::report::find_campaign(&env.store, "lights", None)
        .await
        .unwrap();
    let r = bonus_ops::report::gather(&env.store, &p, &c).await.unwrap();
    std::fs::write(
        "/tmp/campaign.svg",
        bonus_ops::report::svg(&r, p.currency).unwrap(),
    )
    .unwrap();
    print!("{}", bonus_ops::report::text(&r, p.currency));
}
