//! `docs/openapi.yaml` describes exactly the routes the functions serve, and each route it
//! lists is really served (not "no such route").

use std::collections::BTreeSet;

use http::StatusCode;
use integration_tests::TestEnv;

const OPENAPI: &str = include_str!("../../docs/openapi.yaml");

fn served() -> BTreeSet<(String, String)> {
    order_webhook::ROUTES
        .iter()
        .chain(member_api::ROUTES)
        .chain(partner_api::ROUTES)
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_yaml::Value = serde_yaml::from_str(OPENAPI).expect("openapi.yaml is YAML");
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for (method, _) in item.as_mapping().expect("path item") {
            let method = method.as_str().unwrap_or_default();
            if ["get", "post", "put", "patch", "delete"].contains(&method) {
                out.insert((
                    method.to_uppercase(),
                    path.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_served_route_is_documented_and_nothing_else() {
    let served = served();
    let documented = documented();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "served but not in docs/openapi.yaml: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in docs/openapi.yaml but not served: {extra:?}"
    );
}

#[tokio::test]
async fn every_listed_route_reaches_a_handler() {
    let env = TestEnv::new().await;
    for (method, template) in served() {
        let path = template
            .split('/')
            .map(|s| if s.starts_with('{') { "X-1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let (status, body) = env.call(&method, &path, &[], "{}").await;
        assert_ne!(body["error"]["code"], "route_not_found", "{method} {path}");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
}
