//! The gift-shop catalogue at ALSO's size: 1,200 rewards, a member's shop reading pages of
//! 50 (all, and one category) through the member API in-process over the embedded DynamoDB.
//! Prints the DynamoDB requests per page (goal: at most 2 read round trips) and the page
//! latency. Run: `cargo bench -p integration-tests --bench rewards`.

use std::time::Instant;

use bonus_domain::reward::Reward;
use http::StatusCode;
use integration_tests::TestEnv;

const CONFIG: &str = r#"
programmes:
  - {id: also, name: ALSO Bonus Club, kind: coalition, currency: EUR}
partners:
  - id: vendor
    programme: also
    name: Vendor
    api_keys:
      - {label: shop, key: bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9, scopes: [read_balance]}
"#;
const KEY: &str = "bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9";
const ITEMS: usize = 1_200;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("rewards bench: run it with `cargo bench -p integration-tests --bench rewards`");
        return;
    }
    let env = TestEnv::with_config(CONFIG).await;
    for i in 0..ITEMS {
        let category = ["coffee", "bikes", "audio", "garden"][i % 4];
        let r = Reward {
            programme_id: "also".into(),
            reward_id: format!("item-{i:04}"),
            name: format!("Item {i} with a name of ordinary length"),
            description: Some("A description of about a hundred characters, as a catalogue has for most of its items.".into()),
            points: 100 + i as i64,
            granted: 5,
            stock: 5,
            per_member_limit: None,
            category: Some(category.into()),
            image_url: Some(format!("https://cdn.example/items/{i}.png")),
            partner_id: Some("vendor".into()),
        };
        env.store.put_reward(&r).await.expect("reward");
    }
    let headers = [("authorization", format!("Bearer {KEY}"))];
    // The key is read once, then cached.
    env.call("GET", "/v1/rewards?limit=1", &headers, "").await;
    for category in [None, Some("coffee")] {
        let (mut latencies, mut requests, mut pages, mut items) = (Vec::new(), 0usize, 0, 0);
        for _round in 0..10 {
            let mut cursor: Option<String> = None;
            loop {
                let mut path = "/v1/rewards?limit=50".to_string();
                if let Some(c) = category {
                    path.push_str(&format!("&category={c}"));
                }
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                env.requests.reset();
                let started = Instant::now();
                let (status, page) = env.call("GET", &path, &headers, "").await;
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(status, StatusCode::OK);
                requests += env.requests.total();
                pages += 1;
                items += page["rewards"].as_array().map_or(0, Vec::len);
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "REWARDS {} of {ITEMS}: {pages} pages of up to 50 ({items} items), {:.2} DynamoDB requests per page (max 1 Query), page p50 {:.2} ms, p95 {:.2} ms",
            category.map_or("all".to_string(), |c| format!("category {c}")),
            requests as f64 / pages as f64,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
        );
    }
}
