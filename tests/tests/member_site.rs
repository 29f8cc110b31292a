//! The member site, in-process: the real handler over the embedded DynamoDB, login messages
//! sent through SES and SNS on moto and read back from there. Each test drives it as a
//! browser would (a cookie jar, forms), and checks exact figures, statuses and what changed.
//! The same flows in a real Chromium, with axe-core: member_site_browser.rs.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::Duration;
use http::StatusCode;
use integration_tests::{order_paid, TestEnv};

use bonus_domain::site::MemberToken;
use bonus_local_stack::moto::{sent_messages, LocalMoto};
use member_site::Site;

const CONFIG: &str = r#"
programmes:
  - id: velo
    name: Velo Club
    kind: closed
    currency: EUR
    time_zone: Europe/Amsterdam
    release_days: 0
    transfers: {enabled: true, fee_percent: "2"}
  - id: other
    name: Other
    kind: closed
    currency: EUR
partners:
  - id: shop
    programme: velo
    name: Shop
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - label: checkout
        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617
        scopes: [read_balance, read_profile, hold, enrol, erase]
  - id: other-shop
    programme: other
    name: Other shop
    webhook_secrets: [whsec_b3RoZXItc2hvcC1zZWNyZXQtMDEyMzQ1Njc4OQ==]
members:
  - id: M-1
    programme: velo
    partner: shop
    email: m1@example.com
    phone: "+31612345678"
    locale: en
    email_consent: true
    external_ids: {shop: "C-1"}
  - id: M-2
    programme: velo
    email: m2@example.com
  - id: M-3
    programme: velo
    partner: shop
    email: m3@example.com
  - id: X-1
    programme: other
    email: x1@example.com
rewards:
  - id: mug
    programme: velo
    name: Mug
    points: 300
    stock: 2
    per_member_limit: 1
"#;

const SHOP_SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";

struct Stack {
    env: TestEnv,
    site: Site,
    moto: LocalMoto,
}

async fn stack() -> Stack {
    let env = TestEnv::with_config(CONFIG).await;
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let senders = bonus_local_stack::moto::local_senders(&moto.endpoint, "points@example.com")
        .await
        .unwrap();
    let site = Site {
        session_key: b"test-site-session-key-0123456789abcdef".to_vec(),
        url: Some("https://points.example/m".into()),
        insecure_cookies: false,
        base_path: "/m".into(),
        senders,
    };
    Stack { env, site, moto }
}

/// A browser's view of the site: a cookie jar and the last answer.
struct Browser<'a> {
    s: &'a Stack,
    jar: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Page {
    /// The value of the first form field named `name`.
    fn field(&self, name: &str) -> String {
        let at = self
            .body
            .find(&format!("name=\"{name}\" value=\""))
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body));
        let rest = &self.body[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_string()
    }
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn text_of(&self, id: &str) -> String {
        let at = self
            .body
            .find(&format!("id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no #{id} in {}", self.body));
        let rest = &self.body[at + id.len() + 6..];
        rest[..rest.find('<').unwrap()].to_string()
    }
}

impl<'a> Browser<'a> {
    fn new(s: &'a Stack) -> Self {
        Browser {
            s,
            jar: BTreeMap::new(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, body: String) -> Page {
        let cookie = self
            .jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "points.example");
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        if method == "POST" {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = req.body(Bytes::from(body)).unwrap();
        let resp = bonus_ops::dev::dispatch_with(&self.s.env.ctx, Some(&self.s.site), req).await;
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.body().clone(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, String::new()).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send("POST", path, body).await
    }

    /// Ask for a login link or code for `address`; the page that answers.
    async fn request_login(&mut self, programme: &str, address: &str) -> Page {
        let login = self.get(&format!("/m/{programme}/login")).await;
        assert_eq!(login.status, StatusCode::OK);
        let csrf = login.field("csrf");
        self.post(
            &format!("/m/{programme}/login"),
            &[("csrf", &csrf), ("address", address)],
        )
        .await
    }

    /// Open an e-mailed link and press its button.
    async fn use_link(&mut self, link: &str) -> Page {
        let path = link.strip_prefix("https://points.example").unwrap();
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK);
        let (csrf, token) = (page.field("csrf"), page.field("token"));
        let programme = path.split('/').nth(2).unwrap();
        self.post(
            &format!("/m/{programme}/login/link"),
            &[("csrf", &csrf), ("token", &token)],
        )
        .await
    }

    async fn log_in(&mut self, programme: &str, email: &str) -> Page {
        self.request_login(programme, email).await;
        let link = last_link(self.s, email).await;
        self.use_link(&link).await
    }
}

async fn last_link(s: &Stack, to: &str) -> String {
    bonus_local_stack::moto::last_login_link(&s.moto.endpoint, Some(to))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no login link sent to {to}"))
}

async fn sent_count(s: &Stack) -> usize {
    sent_messages(&s.moto.endpoint).await.unwrap().len()
}

async fn earn(s: &Stack, order: &str, member: &str, euros: &str) {
    let (status, body) = s
        .env
        .order(&order_paid(order, Some(member), &[("BIKE", 1, euros)]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_member_logs_in_by_link_sees_exact_figures_claims_a_reward_and_logs_out() {
    let s = stack().await;
    earn(&s, "A-1", "M-1", "1234.00").await;
    let mut b = Browser::new(&s);

    let sent = b.request_login("velo", "M1@Example.com").await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(sent.body.contains("If m1@example.com belongs to a member"));
    let mail = sent_messages(&s.moto.endpoint).await.unwrap();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, vec!["m1@example.com".to_string()]);
    assert_eq!(mail[0].subject, "Velo Club: your login link");
    let link = last_link(&s, "m1@example.com").await;
    assert!(link.starts_with("https://points.example/m/velo/login/link?token="));

    // Opening the link does not use it (mail scanners open links); its button does.
    let in_ = b.use_link(&link).await;
    assert_eq!(in_.status, StatusCode::SEE_OTHER);
    assert_eq!(in_.location(), "/m/velo/M-1");
    let cookie = in_
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-bonus_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }

    let account = b.get("/m/velo/M-1").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account
        .body
        .starts_with("<!doctype html>\n<html lang=\"en\">"));
    assert_eq!(account.text_of("available"), "1,234");
    assert!(account.body.contains("Worth €12.34"), "{}", account.body);
    let csp = account.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(account.headers["cache-control"], "no-store");

    // A used link logs nobody in, in any browser.
    let mut other = Browser::new(&s);
    let again = other.use_link(&link).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again
        .body
        .contains("That login link has been used or has run out"));
    assert!(!other.jar.contains_key("__Host-bonus_session"));

    // The statement says what each entry was.
    let statement = b.get("/m/velo/M-1/statement").await;
    assert!(statement
        .body
        .contains("Order <span class=\"muted\">A-1</span>"));
    assert!(statement.body.contains("+1,234"));

    // Claim the mug: 300 points, the voucher shown, the balance down by exactly that.
    let shop = b.get("/m/velo/M-1/shop").await;
    let (csrf, reference) = (shop.field("csrf"), shop.field("reference"));
    let claimed = b
        .post(
            "/m/velo/M-1/shop/mug",
            &[("csrf", &csrf), ("reference", &reference)],
        )
        .await;
    assert_eq!(claimed.status, StatusCode::CREATED, "{}", claimed.body);
    assert!(claimed.body.contains("You claimed Mug. Your voucher code:"));
    let code = claimed.body.split("class=\"voucher\">").nth(1).unwrap()[..19].to_string();
    assert_eq!(code.len(), 19, "{code}");
    // The same form sent twice is one claim.
    let twice = b
        .post(
            "/m/velo/M-1/shop/mug",
            &[("csrf", &csrf), ("reference", &reference)],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CREATED);
    assert!(twice.body.contains(&code));
    assert_eq!(b.get("/m/velo/M-1").await.text_of("available"), "934");
    let (_, api) = s.env.balance("M-1").await;
    assert_eq!(api["available"], 934);
    let reward = s
        .env
        .store
        .get_reward("velo", "mug")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reward.stock, 1);
    // The limit is one per member: a new form is refused, and says why.
    let shop = b.get("/m/velo/M-1/shop").await;
    assert!(shop
        .body
        .contains("You have claimed this as often as allowed."));
    assert!(shop.body.contains(&code), "my vouchers list it");
    let refused = b
        .post(
            "/m/velo/M-1/shop/mug",
            &[("csrf", &csrf), ("reference", "another-form")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(b.get("/m/velo/M-1").await.text_of("available"), "934");

    // German: the same figures, written the German way.
    let switched = b.get("/m/velo/lang/de?back=%2Fm%2Fvelo%2FM-1").await;
    assert_eq!(switched.location(), "/m/velo/M-1");
    let de = b.get("/m/velo/M-1").await;
    assert!(de.body.contains("<html lang=\"de\">"));
    assert_eq!(de.text_of("available"), "934");
    assert!(de.body.contains("Wert: 9,34\u{a0}€"), "{}", de.body);
    // Never an open redirect.
    let away = b
        .get("/m/velo/lang/de?back=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(away.location(), "/m/velo");

    // Log out: the cookie goes, and the old session is over on the server too.
    let old = b.jar.clone();
    let out = b
        .post("/m/velo/M-1/logout", &[("csrf", &de.field("csrf"))])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/m/velo/login?bye=1");
    assert!(!b.jar.contains_key("__Host-bonus_session"));
    b.jar = old;
    let after = b.get("/m/velo/M-1").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location(), "/m/velo/login");
}

#[tokio::test]
async fn a_member_sends_points_after_a_confirmation_and_a_double_submit_sends_once() {
    let s = stack().await;
    earn(&s, "A-1", "M-1", "1234.00").await;
    let mut b = Browser::new(&s);
    b.log_in("velo", "m1@example.com").await;
    let form = b.get("/m/velo/M-1/transfer").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("A fee of 2% is added"), "{}", form.body);
    let csrf = form.field("csrf");

    // M-2 has an address, but did not allow being found by it: as if nobody had it.
    let hidden = b
        .post(
            "/m/velo/M-1/transfer",
            &[("csrf", &csrf), ("to", "m2@example.com"), ("points", "500")],
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(hidden.body.contains("data-error=\"recipient_not_found\""));
    // Without the form's token nothing is even looked up.
    let forged = b
        .post("/m/velo/M-1/transfer", &[("to", "M-2"), ("points", "500")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // By member number: the confirmation shows the masked number, the fee and the total.
    let review = b
        .post(
            "/m/velo/M-1/transfer",
            &[("csrf", &csrf), ("to", "M-2"), ("points", "500")],
        )
        .await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.body);
    assert_eq!(
        review.text_of("transfer-quote"),
        "Send 500 points to •••. Fee: 10 points. In all, 510 points leave your account."
    );
    // Nothing moved yet (release_days 0: every point is due).
    let spendable =
        |a: bonus_domain::account::Account| a.available + a.pending.values().sum::<i64>();
    assert_eq!(
        spendable(
            s.env
                .store
                .get_account("velo", "M-1")
                .await
                .unwrap()
                .unwrap()
        ),
        1234
    );
    let fields = [
        ("csrf", review.field("csrf")),
        ("to", review.field("to")),
        ("points", review.field("points")),
        ("reference", review.field("reference")),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = b.post("/m/velo/M-1/transfer/confirm", &fields).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.text_of("transfer-result"), "Sent: 500 points to •••.");
    // The confirmation sent twice (a double click, a reload): one transfer.
    let again = b.post("/m/velo/M-1/transfer/confirm", &fields).await;
    assert_eq!(again.status, StatusCode::CREATED);
    let (m1, m2) = (
        s.env
            .store
            .get_account("velo", "M-1")
            .await
            .unwrap()
            .unwrap(),
        s.env
            .store
            .get_account("velo", "M-2")
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!((spendable(m1), spendable(m2)), (724, 500));
    let statement = b.get("/m/velo/M-1/statement").await;
    assert!(
        statement
            .body
            .contains("Sent <span class=\"muted\">•••</span>"),
        "{}",
        statement.body
    );
    assert!(statement.body.contains("Transfer fee"));

    // M-1 lets others find them by e-mail, under a name of their choosing.
    let profile = b.get("/m/velo/M-1/profile").await;
    let saved = b
        .post(
            "/m/velo/M-1/profile",
            &[
                ("csrf", &profile.field("csrf")),
                ("display_name", "Anna"),
                ("findable_email", "on"),
                ("channel", "email"),
                ("earned", "per_order"),
                ("locale", "en"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let p = s
        .env
        .store
        .get_profile("velo", "M-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            p.display_name.as_deref(),
            p.findable.by_email,
            p.findable.by_phone
        ),
        (Some("Anna"), true, false)
    );
}

#[tokio::test]
async fn a_companys_users_see_its_pages_by_role_and_only_an_owner_spends() {
    let s = stack().await;
    let key = [(
        "authorization",
        "Bearer bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617".to_string(),
    )];
    let (status, c) = s
        .env
        .call("POST", "/v1/companies", &key, r#"{"name":"ACME GmbH"}"#)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let acme = c["company_id"].as_str().unwrap().to_string();
    for (member, role) in [("M-1", "owner"), ("M-3", "viewer")] {
        let path = format!("/v1/companies/{acme}/users/{member}");
        let body = format!(r#"{{"role":"{role}"}}"#);
        let (status, u) = s.env.call("PUT", &path, &key, body).await;
        assert_eq!(status, StatusCode::OK, "{u}");
    }
    // M-1 buys for ACME (their default company): the company earns.
    earn(&s, "A-9", "M-1", "400.00").await;
    assert_eq!(
        s.env
            .store
            .get_account("velo", &acme)
            .await
            .unwrap()
            .unwrap()
            .lifetime_earned,
        400
    );

    let mut owner = Browser::new(&s);
    owner.log_in("velo", "m1@example.com").await;
    let home = owner.get("/m/velo/M-1").await;
    // (minijinja writes the / of an attribute as &#x2f;)
    assert!(
        home.body.contains(&format!(
            "velo/{acme}\">ACME GmbH</a> <span class=\"muted\">owner</span>"
        )),
        "{}",
        home.body
    );
    let page = owner.get(&format!("/m/velo/{acme}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .text_of("company-banner")
        .starts_with("Company account ACME GmbH: you are owner."));
    assert_eq!(page.text_of("available"), "400");
    let statement = owner.get(&format!("/m/velo/{acme}/statement")).await;
    assert!(statement.body.contains("+400"));
    // The company's statement names the employee whose order it was.
    assert!(
        statement.body.contains("A-9 · M-1</span>"),
        "{}",
        statement.body
    );
    // The owner may spend the company's points in the gift shop.
    let shop = owner.get(&format!("/m/velo/{acme}/shop")).await;
    assert_eq!(shop.status, StatusCode::OK);

    let mut viewer = Browser::new(&s);
    viewer.log_in("velo", "m3@example.com").await;
    let seen = viewer.get(&format!("/m/velo/{acme}")).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen
        .text_of("company-banner")
        .starts_with("Company account ACME GmbH: you are viewer."));
    // A viewer may not spend: the same 404 as for no member at all; nothing is claimed.
    let csrf = seen.field("csrf");
    let claim = viewer
        .post(
            &format!("/m/velo/{acme}/shop/mug"),
            &[("csrf", &csrf), ("reference", "r-1")],
        )
        .await;
    assert_eq!(claim.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.env
            .store
            .get_reward("velo", "mug")
            .await
            .unwrap()
            .unwrap()
            .stock,
        2
    );
    // And another member's own pages stay closed to them.
    assert_eq!(
        viewer.get("/m/velo/M-1").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn login_requests_never_tell_members_from_strangers_and_are_throttled() {
    let s = stack().await;
    let mut b = Browser::new(&s);
    let member = b.request_login("velo", "m2@example.com").await;
    let stranger = b.request_login("velo", "nobody@example.com").await;
    // Another programme's member is a stranger here.
    let outsider = b.request_login("velo", "x1@example.com").await;
    assert_eq!(member.status, StatusCode::OK);
    assert_eq!(stranger.status, StatusCode::OK);
    let same = |p: &Page, addr: &str| p.body.replace(addr, "ADDRESS");
    assert_eq!(
        same(&member, "m2@example.com"),
        same(&stranger, "nobody@example.com")
    );
    assert_eq!(
        same(&member, "m2@example.com"),
        same(&outsider, "x1@example.com")
    );
    assert_eq!(sent_count(&s).await, 1, "only the member got a message");

    // Not an address at all: 422, nothing sent.
    let bad = b.request_login("velo", "not an address").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Enter an e-mail address"));

    // Five requests per address an hour, member or not; the sixth is 429 for both.
    for _ in 0..4 {
        assert_eq!(
            b.request_login("velo", "nobody@example.com").await.status,
            StatusCode::OK
        );
        assert_eq!(
            b.request_login("velo", "m2@example.com").await.status,
            StatusCode::OK
        );
    }
    let m6 = b.request_login("velo", "m2@example.com").await;
    let n6 = b.request_login("velo", "nobody@example.com").await;
    assert_eq!(m6.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(n6.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(m6.headers["retry-after"], "3600");
    assert_eq!(m6.body, n6.body);
    assert_eq!(sent_count(&s).await, 5);
    // An hour later the address may ask again.
    s.env.clock.advance(Duration::minutes(61));
    assert_eq!(
        b.request_login("velo", "m2@example.com").await.status,
        StatusCode::OK
    );
    assert_eq!(sent_count(&s).await, 6);

    // A form without its token changes nothing and sends nothing.
    let mut fresh = Browser::new(&s);
    let forged = fresh
        .post("/m/velo/login", &[("address", "m2@example.com")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(sent_count(&s).await, 6);

    // A link that ran out logs nobody in.
    s.env.clock.advance(Duration::minutes(16));
    let link = last_link(&s, "m2@example.com").await;
    let late = Browser::new(&s).use_link(&link).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.body.contains("used or has run out"));
}

async fn try_code(b: &mut Browser<'_>, csrf: &str, phone: &str, code: &str) -> Page {
    b.post(
        "/m/velo/login/code",
        &[("csrf", csrf), ("phone", phone), ("code", code)],
    )
    .await
}

#[tokio::test]
async fn an_sms_code_logs_in_once_and_wrong_codes_read_like_no_code() {
    let s = stack().await;
    let mut b = Browser::new(&s);
    let sent = b.request_login("velo", "+31 6 1234 5678").await;
    assert!(sent.body.contains("we have sent a six-digit code"));
    let code = bonus_local_stack::moto::last_sms_code(&s.moto.endpoint, Some("+31612345678"))
        .await
        .unwrap()
        .expect("a code by SMS");
    let csrf = sent.field("csrf");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let bad = try_code(&mut b, &csrf, "+31612345678", wrong).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A number nobody has reads exactly the same.
    let none = try_code(&mut b, &csrf, "+31699999999", wrong).await;
    assert_eq!(
        bad.body.replace("+31612345678", "N"),
        none.body.replace("+31699999999", "N")
    );
    let ok = try_code(&mut b, &csrf, "+31612345678", &code).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), "/m/velo/M-1");
    // Used: the same code again is refused.
    let mut other = Browser::new(&s);
    other.get("/m/velo/login").await;
    let csrf2 = other.get("/m/velo/login").await.field("csrf");
    let reused = other
        .post(
            "/m/velo/login/code",
            &[("csrf", &csrf2), ("phone", "+31612345678"), ("code", &code)],
        )
        .await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Five wrong tries make a code void, even the right one after them.
    s.env.clock.advance(Duration::minutes(61));
    let sent = other.request_login("velo", "+31612345678").await;
    let csrf3 = sent.field("csrf");
    let code = bonus_local_stack::moto::last_sms_code(&s.moto.endpoint, Some("+31612345678"))
        .await
        .unwrap()
        .unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = other
            .post(
                "/m/velo/login/code",
                &[("csrf", &csrf3), ("phone", "+31612345678"), ("code", wrong)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let late = other
        .post(
            "/m/velo/login/code",
            &[("csrf", &csrf3), ("phone", "+31612345678"), ("code", &code)],
        )
        .await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_session_reaches_only_its_member_and_every_form_needs_its_token() {
    let s = stack().await;
    let mut b = Browser::new(&s);
    assert_eq!(
        b.log_in("velo", "m1@example.com").await.status,
        StatusCode::SEE_OTHER
    );

    // Another member's pages, a member that does not exist and another programme's member
    // answer alike: 404.
    let theirs = b.get("/m/velo/M-2").await;
    let nobody = b.get("/m/velo/M-404").await;
    let elsewhere = b.get("/m/other/X-1/profile").await;
    for p in [&theirs, &nobody, &elsewhere] {
        assert_eq!(p.status, StatusCode::NOT_FOUND);
        assert!(p.body.contains("data-code=\"member_not_found\""));
    }
    assert_eq!(theirs.body, nobody.body);
    for path in [
        "/m/velo/M-2/statement",
        "/m/velo/M-2/data.json",
        "/m/velo/M-2/shop",
    ] {
        assert_eq!(b.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let csrf = b.get("/m/velo/M-1/profile").await.field("csrf");
    let posted = b
        .post("/m/velo/M-2/erase", &[("csrf", &csrf), ("confirm", "on")])
        .await;
    assert_eq!(posted.status, StatusCode::NOT_FOUND);
    let m2 = s
        .env
        .store
        .get_profile("velo", "M-2")
        .await
        .unwrap()
        .unwrap();
    assert!(m2.erased_at.is_none());

    // Without a session, a member page sends to the login page, whoever the member.
    let mut anon = Browser::new(&s);
    assert_eq!(anon.get("/m/velo/M-1").await.location(), "/m/velo/login");
    assert_eq!(anon.get("/m/velo/M-404").await.location(), "/m/velo/login");

    // A form without its CSRF token (or with another session's) changes nothing.
    let before = s
        .env
        .store
        .get_profile("velo", "M-1")
        .await
        .unwrap()
        .unwrap();
    assert!(before.consents.email);
    let forged = b
        .post(
            "/m/velo/M-1/profile",
            &[("channel", "sms"), ("earned", "off")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("data-code=\"csrf_invalid\""));
    let mut b2 = Browser::new(&s);
    b2.log_in("velo", "m1@example.com").await;
    let other_token = b2.get("/m/velo/M-1").await.field("csrf");
    assert_ne!(other_token, csrf);
    let crossed = b
        .post(
            "/m/velo/M-1/profile",
            &[("csrf", &other_token), ("earned", "off")],
        )
        .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.env
            .store
            .get_profile("velo", "M-1")
            .await
            .unwrap()
            .unwrap(),
        before
    );

    // With it: consent withdrawn and saved.
    let saved = b
        .post(
            "/m/velo/M-1/profile",
            &[
                ("csrf", &csrf),
                ("channel", "sms"),
                ("earned", "daily_digest"),
                ("locale", "en"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let after = s
        .env
        .store
        .get_profile("velo", "M-1")
        .await
        .unwrap()
        .unwrap();
    assert!(!after.consents.email && !after.consents.sms);
    assert_eq!(after.preferences.channel.as_deref(), Some("sms"));
    assert_eq!(
        after.preferences.earned_messages.as_deref(),
        Some("daily_digest")
    );

    // Log out everywhere: the other browser's session ends too.
    let out = b
        .post("/m/velo/M-1/logout-everywhere", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(b2.get("/m/velo/M-1").await.location(), "/m/velo/login");

    // A forged cookie is nobody.
    let mut forged = Browser::new(&s);
    forged
        .jar
        .insert("__Host-bonus_session".into(), "dmVsbwpNLTEK.AAAA".into());
    assert_eq!(forged.get("/m/velo/M-1").await.location(), "/m/velo/login");
}

#[tokio::test]
async fn a_partner_opens_the_site_for_its_own_customer_with_a_signed_member_token() {
    let s = stack().await;
    let secret = bonus_domain::webhook_sig::decode_secret(SHOP_SECRET).unwrap();
    let now = s.env.clock_now().timestamp();
    let url = |t: &MemberToken, sig: &str| {
        format!(
            "/m/velo/sso?{}",
            serde_urlencoded::to_string([
                ("partner", t.partner_id.as_str()),
                ("member", t.member_id.as_str()),
                ("expires", &t.expires.to_string()),
                ("sig", sig),
            ])
            .unwrap()
        )
    };
    let token = MemberToken {
        partner_id: "shop".into(),
        member_id: "M-1".into(),
        expires: now + 300,
    };
    let sig = token.sign(&secret);
    let mut b = Browser::new(&s);
    let in_ = b.get(&url(&token, &sig)).await;
    assert_eq!(in_.status, StatusCode::SEE_OTHER, "{}", in_.body);
    assert_eq!(in_.location(), "/m/velo/M-1");
    assert_eq!(b.get("/m/velo/M-1").await.status, StatusCode::OK);

    // Every refusal reads the same 403, and starts no session.
    let mut refused = Vec::new();
    // Used once already.
    refused.push(Browser::new(&s).get(&url(&token, &sig)).await);
    // Signed with another secret.
    let t2 = MemberToken {
        expires: now + 299,
        ..token.clone()
    };
    refused.push(
        Browser::new(&s)
            .get(&url(&t2, &t2.sign(b"not the shop's secret")))
            .await,
    );
    // A member the shop did not enrol and does not know.
    let t3 = MemberToken {
        member_id: "M-2".into(),
        ..token.clone()
    };
    refused.push(Browser::new(&s).get(&url(&t3, &t3.sign(&secret))).await);
    // Run out, or valid for longer than ten minutes.
    let t4 = MemberToken {
        expires: now - 1,
        ..token.clone()
    };
    refused.push(Browser::new(&s).get(&url(&t4, &t4.sign(&secret))).await);
    let t5 = MemberToken {
        expires: now + 3600,
        ..token.clone()
    };
    refused.push(Browser::new(&s).get(&url(&t5, &t5.sign(&secret))).await);
    // Another programme's partner.
    let t6 = MemberToken {
        partner_id: "other-shop".into(),
        ..token.clone()
    };
    refused.push(Browser::new(&s).get(&url(&t6, &t6.sign(&secret))).await);
    for r in &refused {
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.body, refused[0].body);
        assert!(r.headers.get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn a_member_changes_contacts_with_a_code_downloads_their_data_and_erases_the_account() {
    let s = stack().await;
    earn(&s, "A-1", "M-1", "50.00").await;
    let mut b = Browser::new(&s);
    b.log_in("velo", "m1@example.com").await;
    let profile = b.get("/m/velo/M-1/profile").await;
    let csrf = profile.field("csrf");

    // A new address gets a code; the profile changes only when it comes back.
    let asked = b
        .post(
            "/m/velo/M-1/profile/contact",
            &[
                ("csrf", &csrf),
                ("channel", "email"),
                ("address", "anna.new@example.com"),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    let mail = sent_messages(&s.moto.endpoint).await.unwrap();
    let last = mail.last().unwrap();
    assert_eq!(last.to, vec!["anna.new@example.com".to_string()]);
    let code: String = last
        .body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_string();
    assert_eq!(
        s.env
            .store
            .get_profile("velo", "M-1")
            .await
            .unwrap()
            .unwrap()
            .email
            .as_deref(),
        Some("m1@example.com")
    );
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let bad = b
        .post(
            "/m/velo/M-1/profile/contact/confirm",
            &[("csrf", &csrf), ("channel", "email"), ("code", wrong)],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ok = b
        .post(
            "/m/velo/M-1/profile/contact/confirm",
            &[("csrf", &csrf), ("channel", "email"), ("code", &code)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let p = s
        .env
        .store
        .get_profile("velo", "M-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.email.as_deref(), Some("anna.new@example.com"));
    // The new address logs in; the old one is nobody's now.
    assert_eq!(
        s.env
            .store
            .members_by_email("velo", "anna.new@example.com")
            .await
            .unwrap(),
        vec!["M-1".to_string()]
    );
    assert!(s
        .env
        .store
        .members_by_email("velo", "m1@example.com")
        .await
        .unwrap()
        .is_empty());

    // My data: everything, as JSON.
    let data = b.get("/m/velo/M-1/data.json").await;
    assert_eq!(data.status, StatusCode::OK);
    assert_eq!(
        data.headers["content-disposition"],
        "attachment; filename=\"velo-M-1.json\""
    );
    let json: serde_json::Value = serde_json::from_str(&data.body).unwrap();
    assert_eq!(json["profile"]["email"], "anna.new@example.com");
    assert_eq!(json["profile"]["phone"], "+31612345678");
    assert_eq!(json["balance"]["available"], 50);
    assert_eq!(json["statement"].as_array().unwrap().len(), 1);
    assert_eq!(json["statement"][0]["points"], 50);

    // Erasure needs its confirmation; then it is the API's erasure, and every session ends.
    let unconfirmed = b.post("/m/velo/M-1/erase", &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(s
        .env
        .store
        .get_profile("velo", "M-1")
        .await
        .unwrap()
        .unwrap()
        .erased_at
        .is_none());
    let erased = b
        .post("/m/velo/M-1/erase", &[("csrf", &csrf), ("confirm", "on")])
        .await;
    assert_eq!(erased.status, StatusCode::OK);
    assert!(erased.body.contains("Your personal data has been erased"));
    let p = s
        .env
        .store
        .get_profile("velo", "M-1")
        .await
        .unwrap()
        .unwrap();
    assert!(p.erased_at.is_some());
    assert_eq!((p.email, p.phone, p.name), (None, None, None));
    assert!(s
        .env
        .store
        .members_by_phone("velo", "+31612345678")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(b.get("/m/velo/M-1").await.location(), "/m/velo/login");
    // The points stay, under the member id alone.
    let (_, api) = s.env.balance("M-1").await;
    assert_eq!(api["available"], 50);
}

/// Fuzzed requests to every route of the site, logged in and not, with arbitrary bodies,
/// queries and path parts: never a 5xx, and a request answered 4xx changes nothing in the
/// table. `FUZZ_CASES` sets the number (default 150).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_requests_to_every_site_route_never_fail_and_refusals_change_nothing() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed, TestRunner};

    let s = stack().await;
    earn(&s, "A-1", "M-1", "500.00").await;
    // A logged-in browser, whose cookie and token some cases carry.
    let mut b = Browser::new(&s);
    b.log_in("velo", "m1@example.com").await;
    let csrf = b.get("/m/velo/M-1").await.field("csrf");
    let session_cookie = b
        .jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let cases: u32 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(150);
    let part = prop_oneof![
        Just("velo".to_string()),
        Just("M-1".to_string()),
        Just("M-2".to_string()),
        Just("mug".to_string()),
        "[a-zA-Z0-9%._~-]{0,12}",
        ".{0,8}".prop_map(|t: String| t.replace(['/', '?', '#', ' '], "")),
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from),
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("csrf".to_string()),
                    Just("address".to_string()),
                    Just("code".to_string()),
                    Just("token".to_string()),
                    Just("reference".to_string()),
                    Just("confirm".to_string()),
                    Just("channel".to_string()),
                    Just("locale".to_string()),
                    "[a-z_]{1,8}",
                ],
                prop_oneof![Just("__csrf__".to_string()), ".{0,20}"],
            ),
            0..5
        )
        .prop_map(|fields| Bytes::from(serde_urlencoded::to_string(fields).unwrap_or_default())),
    ];
    let strategy = (
        0..member_site::ROUTES.len(),
        proptest::collection::vec(part, 4),
        any::<bool>(),
        any::<bool>(),
        body,
        "[a-z=&%0-9]{0,30}",
    );
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(19),
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let env = &s.env;
    let site = &s.site;
    let result = tokio::task::block_in_place(|| {
        runner.run(
            &strategy,
            |(route, parts, logged_in, other_method, body, query)| {
                let (method, template) = member_site::ROUTES[route];
                let mut parts = parts.into_iter();
                let path: String = template
                    .split('/')
                    .map(|seg| {
                        if seg.starts_with('{') {
                            parts.next().unwrap_or_default()
                        } else {
                            seg.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                let uri = if query.is_empty() {
                    path
                } else {
                    format!("{path}?{query}")
                };
                let method = if other_method {
                    if method == "GET" {
                        "POST"
                    } else {
                        "GET"
                    }
                } else {
                    method
                };
                let body = Bytes::from(
                    String::from_utf8_lossy(&body)
                        .replace("__csrf__", &csrf)
                        .into_bytes(),
                );
                handle.block_on(async {
                    let before = env.all_items().await;
                    let mut req = http::Request::builder()
                        .method(method)
                        .uri(uri.as_str())
                        .header("content-type", "application/x-www-form-urlencoded");
                    if logged_in {
                        req = req.header("cookie", session_cookie.as_str());
                    }
                    let Ok(req) = req.body(body) else {
                        return Ok(());
                    };
                    let resp = bonus_ops::dev::dispatch_with(&env.ctx, Some(site), req).await;
                    let status = resp.status();
                    prop_assert!(!status.is_server_error(), "{method} {uri}: {status}");
                    if status.is_client_error() {
                        let after = env.all_items().await;
                        prop_assert!(
                            before == after,
                            "{method} {uri}: {status} changed the table"
                        );
                    }
                    Ok(())
                })
            },
        )
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// An offer as a partner would have made it over the partner API.
async fn put_offer(s: &Stack, id: &str, segment: serde_json::Value, valid_to: &str) {
    use bonus_domain::offer::{Offer, OfferText};
    let title = |t: &str| OfferText {
        title: t.into(),
        text: format!("{t}: <b>not bold</b>"),
    };
    let o = Offer {
        programme_id: "velo".into(),
        partner_id: "shop".into(),
        offer_id: id.into(),
        texts: [
            ("en".to_string(), title(&format!("Offer {id}"))),
            ("de".to_string(), title(&format!("Angebot {id}"))),
        ]
        .into(),
        valid_from: "2026-11-01T00:00:00Z".parse().unwrap(),
        valid_to: valid_to.parse().unwrap(),
        link: None,
        segment: serde_json::from_value(segment).unwrap(),
        channels: vec![bonus_domain::notify::Channel::Email],
        sent_at: None,
        sent_by: None,
        created_at: s.env.clock_now(),
        version: 1,
    };
    let who = bonus_domain::changes::Actor {
        name: "Eva".into(),
        via: "test".into(),
    };
    let change = bonus_domain::changes::Change::of(
        "shop",
        id,
        s.env.clock_now(),
        &who,
        bonus_domain::changes::Subject::Offer,
        id,
        "created",
        None,
        Some(&o),
    );
    assert!(s.env.store.create_offer(&o, &change).await.unwrap());
}

#[tokio::test]
async fn a_member_sees_the_offers_their_segment_holds_while_they_are_valid() {
    let s = stack().await;
    earn(&s, "A-1", "M-1", "1234.00").await;
    // M-1 has 1,234 points available, reads English, bought at the shop today.
    put_offer(
        &s,
        "rich",
        serde_json::json!({"min_available": 1000, "bought_at": ["shop"]}),
        "2026-12-31T00:00:00Z",
    )
    .await;
    put_offer(
        &s,
        "richer",
        serde_json::json!({"min_available": 1235}),
        "2026-12-31T00:00:00Z",
    )
    .await;
    put_offer(
        &s,
        "german",
        serde_json::json!({"locales": ["de"]}),
        "2026-12-31T00:00:00Z",
    )
    .await;
    put_offer(
        &s,
        "lapsed",
        serde_json::json!({"min_days_since_purchase": 30}),
        "2026-12-31T00:00:00Z",
    )
    .await;
    put_offer(&s, "over", serde_json::json!({}), "2026-11-22T00:00:00Z").await;
    let mut b = Browser::new(&s);
    b.request_login("velo", "m1@example.com").await;
    let link = last_link(&s, "m1@example.com").await;
    assert_eq!(b.use_link(&link).await.status, StatusCode::SEE_OTHER);
    let account = b.get("/m/velo/M-1").await;
    assert_eq!(account.status, StatusCode::OK);
    let offers = account
        .body
        .split("<ul id=\"offers\">")
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .unwrap_or_else(|| panic!("no offers in {}", account.body));
    assert_eq!(offers.matches("<li>").count(), 1, "{offers}");
    assert!(offers.contains("<strong>Offer rich</strong>"), "{offers}");
    // The partner's text is text, never markup.
    assert!(
        offers.contains("&lt;b&gt;not bold&lt;&#x2f;b&gt;"),
        "{offers}"
    );
    assert!(offers.contains("Valid until December 31, 2026"), "{offers}");
}
