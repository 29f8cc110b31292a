//! The member site in a real browser: Debian's headless Chromium driven over WebDriver
//! (ChromeDriver, through fantoccini), against the site served on 127.0.0.1 over the
//! embedded DynamoDB, with login e-mails sent through SES on moto. axe-core (from the npm
//! registry) runs inside the browser on every page: no serious or critical violation.
//!
//! `make test` installs Chromium, ChromeDriver and axe-core first (tests/browser/install.sh).
//! `UPDATE_SCREENSHOTS=1` writes the account page's screenshots into docs/images/.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Minutes;
use fantoccini::{Client, ClientBuilder, Locator};
use http::StatusCode;
use integration_tests::{order_paid, TestEnv};
use serde_json::{json, Value};

use bonus_local_stack::moto::{last_login_link, LocalMoto};

const CONFIG: &str = r#"
programmes:
  - id: velo
    name: Velo Club
    kind: closed
    currency: EUR
    time_zone: Europe/Amsterdam
    release_days: 0
    transfers: {enabled: true}
    tiers:
      - {name: Silver, threshold: 0, multiplier: 1}
      - {name: Gold, threshold: 5000, multiplier: 2}
partners:
  - id: shop
    programme: velo
    name: Shop
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - label: checkout
        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617
        scopes: [read_balance, read_profile, hold, enrol, erase]
members:
  - id: M-1
    programme: velo
    partner: shop
    name: Anna
    email: anna@example.com
    locale: en
    email_consent: true
  - id: M-2
    programme: velo
    email: ben@example.com
rewards:
  - id: mug
    programme: velo
    name: Mug
    description: A stoneware mug with the club's logo.
    points: 300
    stock: 20
    per_member_limit: 2
  - id: bottle
    programme: velo
    name: Water bottle
    points: 5000
    stock: 5
"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// ChromeDriver on a free port, stopped with the test.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn chromedriver() -> Driver {
    let port = free_port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver (make test installs Debian's chromium-driver: tests/browser/install.sh)",
        );
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Driver(child, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("chromedriver did not start");
}

async fn browser(driver: &Driver, downloads: &Path, profile: &Path) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            },
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    // The WebDriver connection is plain HTTP, but the client is built with rustls.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a Chromium session")
}

/// axe-core's WCAG 2.x A and AA rules on the page in the browser: every serious or critical
/// violation, as "rule: target".
async fn axe(c: &Client, axe_source: &str) -> Vec<String> {
    c.execute(axe_source, vec![]).await.expect("axe-core loads");
    let result = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                  .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                                    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                  .catch(e => done(['axe failed: ' + e]));"#,
            vec![],
        )
        .await
        .expect("axe-core runs");
    result
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Click what `locator` finds and wait for the page it loads.
async fn click(c: &Client, locator: Locator<'_>) {
    // A mark on the old document: gone once the next one has loaded (the same address too).
    c.execute("window.__old_page = true;", vec![])
        .await
        .unwrap();
    c.find(locator).await.unwrap().click().await.unwrap();
    for _ in 0..200 {
        let loaded = c
            .execute(
                "return window.__old_page === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .unwrap_or(Value::Bool(false));
        if loaded == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the click did not load a page");
}

async fn path(c: &Client) -> String {
    let u = c.current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_uses_the_site_in_chromium_and_axe_finds_nothing_serious() {
    let axe_source =
        std::fs::read_to_string(root().join(".venv/node/node_modules/axe-core/axe.min.js"))
            .expect("axe-core (make test installs it: tests/browser/install.sh)");
    let env = TestEnv::with_config(CONFIG).await;
    let (status, body) = env
        .order(&order_paid("A-1", Some("M-1"), &[("BIKE", 1, "1234.00")]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let senders = bonus_local_stack::moto::local_senders(&moto.endpoint, "points@example.com")
        .await
        .unwrap();
    let (listener, addr) = bonus_ops::dev::bind(0).await.unwrap();
    let base = format!("http://{addr}");
    let site = Arc::new(member_site::Site {
        session_key: b"browser-test-session-key-0123456789abcdef".to_vec(),
        url: Some(format!("{base}/m")),
        insecure_cookies: true,
        base_path: "/m".into(),
        senders,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bonus_ops::dev::serve_with(
        env.ctx.clone(),
        Some(site),
        listener,
        async {
            let _ = stopped.await;
        },
    ));

    let work = std::env::temp_dir().join(format!("bonus-browser-{}", std::process::id()));
    let downloads = work.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let driver = chromedriver().await;
    let c = browser(&driver, &downloads, &work.join("profile")).await;
    let mut checked = Vec::new();
    let mut check_axe = |page: &str, found: Vec<String>| {
        assert!(found.is_empty(), "{page}: axe-core: {found:#?}");
        checked.push(page.to_string());
    };

    // 1. Ask for a login link; it arrives by e-mail (moto's SES).
    c.goto(&format!("{base}/m/velo/login")).await.unwrap();
    check_axe("login", axe(&c, &axe_source).await);
    c.find(Locator::Id("address"))
        .await
        .unwrap()
        .send_keys("anna@example.com")
        .await
        .unwrap();
    click(&c, Locator::Css("main form button")).await;
    assert!(text(&c, "main [role=status]")
        .await
        .contains("If anna@example.com belongs to a member"));
    check_axe("login sent", axe(&c, &axe_source).await);
    let link = last_login_link(&moto.endpoint, Some("anna@example.com"))
        .await
        .unwrap()
        .expect("a login link in moto's sent e-mail");

    // 2. Log in, and see the exact balance.
    c.goto(&link).await.unwrap();
    check_axe("link", axe(&c, &axe_source).await);
    click(&c, Locator::Id("use-link")).await;
    assert_eq!(path(&c).await, "/m/velo/M-1");
    assert_eq!(text(&c, "#available").await, "1,234");
    assert!(text(&c, "main").await.contains("Worth €12.34"));
    check_axe("account", axe(&c, &axe_source).await);
    // Responsive down to 360 px: nothing wider than the screen.
    c.set_window_size(360, 800).await.unwrap();
    let wide = c
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .unwrap();
    assert!(
        wide.as_u64().unwrap() <= 360,
        "page is {wide} px wide at 360"
    );
    if std::env::var("UPDATE_SCREENSHOTS").is_ok() {
        let phone = c.screenshot().await.unwrap();
        std::fs::write(
            root().join("docs/images/member-site-account-phone.png"),
            phone,
        )
        .unwrap();
    }
    check_axe("account at 360 px", axe(&c, &axe_source).await);
    c.set_window_size(1280, 900).await.unwrap();
    if std::env::var("UPDATE_SCREENSHOTS").is_ok() {
        let desktop = c.screenshot().await.unwrap();
        std::fs::write(
            root().join("docs/images/member-site-account-desktop.png"),
            desktop,
        )
        .unwrap();
    }

    click(&c, Locator::LinkText("Statement")).await;
    assert!(text(&c, "tbody").await.contains("+1,234"));
    check_axe("statement", axe(&c, &axe_source).await);

    // 3. Claim a reward: the voucher, and the new balance.
    click(&c, Locator::LinkText("Gift shop")).await;
    check_axe("shop", axe(&c, &axe_source).await);
    click(
        &c,
        Locator::Css("form[action='/m/velo/M-1/shop/mug'] button"),
    )
    .await;
    let result = text(&c, "#claim-result").await;
    assert!(
        result.starts_with("You claimed Mug. Your voucher code:"),
        "{result}"
    );
    let voucher = text(&c, "#claim-result .voucher").await;
    assert_eq!(voucher.len(), 19, "{voucher}");
    assert!(text(&c, ".vouchers").await.contains(&voucher));
    assert!(text(&c, "main")
        .await
        .contains("You have 934 points to spend."));
    check_axe("shop after a claim", axe(&c, &axe_source).await);
    click(&c, Locator::LinkText("My points")).await;
    assert_eq!(text(&c, "#available").await, "934");

    // 4. The same figures in German.
    click(&c, Locator::Css("a[hreflang=de]")).await;
    assert_eq!(path(&c).await, "/m/velo/M-1");
    let lang = c
        .execute("return document.documentElement.lang;", vec![])
        .await
        .unwrap();
    assert_eq!(lang, "de");
    assert_eq!(text(&c, "h1").await, "Meine Punkte");
    assert_eq!(text(&c, "#available").await, "934");
    assert!(text(&c, "main").await.contains("Wert: 9,34 €"));
    check_axe("account in German", axe(&c, &axe_source).await);

    // 5. Withdraw e-mail consent, and see it saved.
    click(&c, Locator::LinkText("Profil")).await;
    check_axe("profile", axe(&c, &axe_source).await);
    let consent = c.find(Locator::Id("consent_email")).await.unwrap();
    assert!(consent.is_selected().await.unwrap());
    consent.click().await.unwrap();
    click(&c, Locator::Id("save-settings")).await;
    assert_eq!(text(&c, "#profile-result").await, "Gespeichert.");
    assert!(!c
        .find(Locator::Id("consent_email"))
        .await
        .unwrap()
        .is_selected()
        .await
        .unwrap());
    let p = env.store.get_profile("velo", "M-1").await.unwrap().unwrap();
    assert!(!p.consents.email);

    // A form without its CSRF token changes nothing.
    c.execute(
        "document.querySelector('form.settings input[name=csrf]').remove();",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Id("consent_email"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&c, Locator::Id("save-settings")).await;
    let code = c
        .find(Locator::Id("error"))
        .await
        .unwrap()
        .attr("data-code")
        .await
        .unwrap();
    assert_eq!(code.as_deref(), Some("csrf_invalid"));
    check_axe("error page", axe(&c, &axe_source).await);
    assert!(
        !env.store
            .get_profile("velo", "M-1")
            .await
            .unwrap()
            .unwrap()
            .consents
            .email
    );

    // Another member's pages answer 404, as a member that does not exist.
    for other in ["/m/velo/M-2", "/m/velo/M-2/profile", "/m/velo/M-404"] {
        c.goto(&format!("{base}{other}")).await.unwrap();
        let code = c
            .wait()
            .for_element(Locator::Id("error"))
            .await
            .unwrap()
            .attr("data-code")
            .await
            .unwrap();
        assert_eq!(code.as_deref(), Some("member_not_found"), "{other}");
    }

    // 6. Download my data.
    c.goto(&format!("{base}/m/velo/M-1/data")).await.unwrap();
    check_axe("my data", axe(&c, &axe_source).await);
    c.find(Locator::Id("download"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let file = downloads.join("velo-M-1.json");
    for _ in 0..100 {
        if file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("the download")).unwrap();
    assert_eq!(data["profile"]["member_id"], "M-1");
    assert_eq!(data["profile"]["email"], "anna@example.com");
    assert_eq!(data["balance"]["available"], 934);
    assert_eq!(
        data["vouchers"][0]["reward"]["voucher_code"],
        voucher.as_str()
    );

    // 6b. Send 100 points to M-2, after a confirmation (the site is in German now).
    c.goto(&format!("{base}/m/velo/M-1/transfer"))
        .await
        .unwrap();
    check_axe("send points", axe(&c, &axe_source).await);
    for (id, value) in [("to", "M-2"), ("points", "100")] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    click(&c, Locator::Id("transfer-next")).await;
    assert_eq!(
        text(&c, "#transfer-quote").await,
        "100 Punkte an ••• senden. Gebühr: 0 Punkte. Insgesamt gehen 100 Punkte von Ihrem Konto ab."
    );
    check_axe("confirm sending", axe(&c, &axe_source).await);
    click(&c, Locator::Id("send-points")).await;
    assert_eq!(
        text(&c, "#transfer-result").await,
        "Gesendet: 100 Punkte an •••."
    );
    check_axe("points sent", axe(&c, &axe_source).await);
    let m2 = env.store.get_account("velo", "M-2").await.unwrap().unwrap();
    assert_eq!(m2.available + m2.pending.values().sum::<i64>(), 100);

    // 7. Log out.
    click(
        &c,
        Locator::Css("footer form[action='/m/velo/M-1/logout'] button"),
    )
    .await;
    assert_eq!(path(&c).await, "/m/velo/login?bye=1");
    assert_eq!(text(&c, "main [role=status]").await, "Sie sind abgemeldet.");
    c.goto(&format!("{base}/m/velo/M-1")).await.unwrap();
    assert_eq!(path(&c).await, "/m/velo/login");

    // A used link does not log anyone in; nor does one that ran out.
    c.goto(&link).await.unwrap();
    click(&c, Locator::Id("use-link")).await;
    assert!(text(&c, "#login-error").await.contains("Anmeldelink"));
    check_axe("login with an error", axe(&c, &axe_source).await);
    c.goto(&format!("{base}/m/velo/M-1")).await.unwrap();
    assert_eq!(path(&c).await, "/m/velo/login");
    c.find(Locator::Id("address"))
        .await
        .unwrap()
        .send_keys("anna@example.com")
        .await
        .unwrap();
    click(&c, Locator::Css("main form button")).await;
    let second = last_login_link(&moto.endpoint, Some("anna@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(second, link);
    env.clock.advance(Minutes::minutes(16));
    c.goto(&second).await.unwrap();
    click(&c, Locator::Id("use-link")).await;
    assert!(text(&c, "#login-error").await.contains("Anmeldelink"));
    c.goto(&format!("{base}/m/velo/M-1")).await.unwrap();
    assert_eq!(path(&c).await, "/m/velo/login");

    assert_eq!(checked.len(), 16, "{checked:?}");
    c.close().await.unwrap();
    drop(driver);
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&work);
}
