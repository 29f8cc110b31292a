//! `bonus dev`: the whole system locally: the embedded DynamoDB, moto, the HTTP API, and
//! the jobs on a short timer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bonus_domain::clock::SystemClock;
use bonus_dynamodb::{schema, Store};
use bonus_lambda::app::Ctx;
use bonus_local_stack::dynamo::LocalDynamo;
use bonus_ops::{apply, dev};

use crate::common::*;

pub async fn run(port: u16, seed: Option<PathBuf>, args: StoreArgs) -> anyhow::Result<()> {
    bonus_lambda::telemetry::init_json();
    let (listener, addr) = dev::bind(port).await?;
    let db_path = args.data_dir.join("dynamodb.sqlite");
    let db = LocalDynamo::start_file(&db_path)?;
    let store = Store::local(&db.endpoint, &args.table);
    if schema::ensure_table(&store.client, &store.table).await? {
        println!("created table '{}' in {}", store.table, db_path.display());
    }
    // Data written by an earlier version is upgraded in place before anything runs on it.
    let m = bonus_ops::migrate::migrate(&store, &|_| {}).await?;
    if m.upgraded + m.marked + m.left > 0 {
        println!(
            "migrated local data: {} item(s) upgraded, {} marked current, {} left for `bonus audit`",
            m.upgraded, m.marked, m.left
        );
    }
    if let Some(seed) = &seed {
        let plan = read_plan(seed)?;
        let s = apply::apply(&store, &plan).await?;
        println!(
            "applied {}: {} programme(s), {} partner(s), {} member(s) new, {} existing",
            seed.display(),
            s.programmes,
            s.partners,
            s.members_enrolled,
            s.members_existing
        );
    }
    // SQS for the nightly job (and notifications): moto from .venv, on a free port.
    let moto = bonus_local_stack::moto::LocalMoto::start()?;
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    bonus_sqs::ensure_queue(&sqs, LOCAL_NIGHTLY_QUEUE, 30, 5).await?;
    let info = DevInfo {
        api: format!("http://{addr}"),
        dynamodb: db.endpoint.clone(),
        sqs: Some(moto.endpoint.clone()),
    };
    std::fs::write(
        dev_info_path(&args.data_dir),
        serde_json::to_string_pretty(&info)?,
    )?;
    // Partners' outgoing webhooks: queued by the notifications consumer, posted below.
    let webhooks_queue = bonus_sqs::ensure_queue(&sqs, LOCAL_PARTNER_WEBHOOKS_QUEUE, 30, 8).await?;
    // Configuration changes (bonus apply) show within 2 seconds locally.
    let mut ctx = Ctx::new(store, Arc::new(SystemClock), Duration::from_secs(2));
    ctx.partner_webhooks = Some(bonus_lambda::app::Deferral::new(
        sqs.clone(),
        webhooks_queue.clone(),
    ));
    // Lines of partners' bulk imports (POST /v1/partner/imports), booked below. (Webhooks are
    // never over a partner's limit locally: there is no WAF in front.)
    let deferred_queue = bonus_sqs::ensure_queue(&sqs, LOCAL_DEFERRED_QUEUE, 30, 5).await?;
    ctx.deferral = Some(bonus_lambda::app::Deferral::new(
        sqs.clone(),
        deferred_queue.clone(),
    ));
    let ctx = Arc::new(ctx);
    println!(
        r#"
Bonus points platform, local
  API       http://{addr}
  DynamoDB  {dynamodb} (data in {db})
  SQS/SES/SNS {sqs} (moto; sent messages in full: {sqs}/moto-api/data.json)

Try:
  ./target/debug/bonus webhook send velo-shop infra/examples/order-paid.json
  curl -s -H 'Authorization: Bearer bk_524fbb972e11442b95a797fe0cb7b75f7e85ddcd_a8887692' http://{addr}/v1/members/M-1001/balance
  ./target/debug/bonus webhook send velo-shop infra/examples/order-paid.json --order-id A-1002
  ./target/debug/bonus webhook send velo-shop infra/examples/order-paid.json --order-id A-1003 --secret whsec_d3Jvbmc=   # 401
  ./target/debug/bonus webhook send velo-shop infra/examples/order-campaign.json   # 150 + 130 campaign bonus (Fri) + 9
  ./target/debug/bonus campaign show velo-shop helmets-weekdays
  ./target/debug/bonus webhook send velo-shop infra/examples/webinar.json --path events   # 250 points, once
  ./target/debug/bonus webhook send velo-shop infra/examples/refund.json   # 1 of 2 helmets back: -49
  ./target/debug/bonus webhook send velo-shop infra/examples/order-company.json   # for ACME: 150 = ACME 121 + M-1002 29 (80/20, per line)
  ./target/debug/bonus webhook send velo-shop infra/examples/shopify-orders-paid.json --platform shopify   # 120, matched by customer id
  ./target/debug/bonus webhook send velo-shop infra/examples/shopify-refund.json --platform shopify --topic refunds/create   # -10
  ./target/debug/bonus webhook send velo-shop infra/examples/woocommerce-order.json --platform woocommerce   # 90, matched by e-mail
  ./target/debug/bonus webhook send bonvito-bakery infra/examples/bonvito-birthday-cake.json   # 1500, available at once (bonVito: release_days 0)
  curl -s -X POST -H 'Authorization: Bearer bk_7d5431b4b3f1054964a339c38c77f9b5b1f83e4e_947ed219' http://{addr}/v1/members/B-2001/holds --data '{{"points":1000,"reference":"receipt-42"}}'
  curl -s -X POST -H 'Authorization: Bearer bk_7d5431b4b3f1054964a339c38c77f9b5b1f83e4e_947ed219' http://{addr}/v1/holds/<hold_id>/capture
  curl -s -X POST -H 'Authorization: Bearer bk_d7a80e3ae3f22fd210cb0bc29169db8f958f76f0_9dda6a6c' http://{addr}/v1/members/B-2001/rewards/espresso-cup/claim
  curl -s -X POST -H 'Authorization: Bearer bk_082e2f2f45d6231b3f353f6788422234ec967b58_69c44aa8' http://{addr}/v1/partner/claims/<voucher_code>/return   # the cup comes back: 500 points and its stock
  ./target/debug/bonus notifications list   # messages sent: e-mail to M-1001, SMS to B-2001 (after 08:00 Berlin)
  ./target/debug/bonus notify preview points_earned --locale nl
  ./target/debug/bonus run statements       # last month's statement e-mails

Partner API   (velo-shop's back office, scope manage; README "Partner API")
  curl -s -H 'Authorization: Bearer bk_f392b00c504951ecbb72498912efc48827020023_9bb5d898' http://{addr}/v1/partner/campaigns
  curl -s -H 'Authorization: Bearer bk_f392b00c504951ecbb72498912efc48827020023_9bb5d898' http://{addr}/v1/partner/changes
  ./target/debug/bonus adjust request --partner velo-shop --member M-1001 --points 500 --reason goodwill --note "sorry" --reference t-1
  curl -s -X POST -H 'Authorization: Bearer bk_f392b00c504951ecbb72498912efc48827020023_9bb5d898' http://{addr}/v1/partner/offers --data '{{"id":"all-hello","texts":{{"en":{{"title":"Hello","text":"Welcome to the club."}}}},"valid_from":"2026-11-01T00:00:00Z","valid_to":"2027-10-31T00:00:00Z"}}'
  curl -s -H 'Authorization: Bearer bk_f392b00c504951ecbb72498912efc48827020023_9bb5d898' http://{addr}/v1/partner/offers/all-hello/preview   # then POST .../send
  curl -s -H 'Authorization: Bearer bk_f392b00c504951ecbb72498912efc48827020023_9bb5d898' http://{addr}/v1/partner/webhook-deliveries   # after PATCH /v1/partner {{"webhooks": ...}}

Member site   http://{addr}/m/velo   (and http://{addr}/m/bonvito)
  Log in as Anna (M-1001): enter anna@example.com, then open the link it printed:
  ./target/debug/bonus site login-link --to anna@example.com
  bonVito's B-2001 logs in by SMS: +4915112345678, then
  ./target/debug/bonus site login-link --to +4915112345678   # the six-digit code
  then "Punkte senden": 500 points to B-2002 cost 510 (a 2% fee), after a confirmation
More in README.md. Ctrl-C stops; data stays in {data_dir}/.
"#,
        dynamodb = db.endpoint,
        sqs = moto.endpoint,
        db = db_path.display(),
        data_dir = args.data_dir.display(),
    );
    // Member messages: relay the outbox to the notifications queue and deliver, every 2 s,
    // through SES and SNS on moto (`bonus notifications list` shows what went out).
    let notify_queue = bonus_sqs::ensure_queue(&sqs, LOCAL_NOTIFY_QUEUE, 30, 10).await?;
    let mut senders =
        bonus_local_stack::moto::local_senders(&moto.endpoint, "points@bonus.local").await?;
    senders.unsubscribe_url =
        format!("http://{addr}/v1/unsubscribe/{{programme_id}}/{{member_id}}/{{token}}");
    let senders_for_site = (senders.ses.clone(), senders.sns.clone());
    let relay_ctx = ctx.clone();
    let http = notifications::outgoing::http_client();
    let relay = tokio::spawn(async move {
        loop {
            if let Err(e) =
                notifications::relay_once(&relay_ctx, &sqs, &notify_queue, 100, None).await
            {
                tracing::warn!(error = %e, "relay failed; retrying");
            }
            if let Err(e) =
                notifications::consume_all(&relay_ctx, &senders, &sqs, &notify_queue, 100).await
            {
                tracing::warn!(error = %e, "notifications failed; retrying");
            }
            if let Err(e) =
                order_webhook::defer::consume_all(&relay_ctx, &sqs, &deferred_queue, 100).await
            {
                tracing::warn!(error = %e, "imports failed; retrying");
            }
            if let Err(e) =
                notifications::outgoing::consume_all(&relay_ctx, &http, &sqs, &webhooks_queue, 100)
                    .await
            {
                tracing::warn!(error = %e, "partner webhooks failed; retrying");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let site = Arc::new(member_site::Site {
        session_key: local_site_key(&args.data_dir)?,
        url: Some(format!("http://{addr}/m")),
        // Plain HTTP on 127.0.0.1: cookies without Secure (and without the __Host- prefix).
        insecure_cookies: true,
        base_path: member_site::SITE_PATH.into(),
        senders: bonus_messages::send::Senders {
            ses: senders_for_site.0,
            sns: senders_for_site.1,
            from: "points@bonus.local".into(),
            unsubscribe_url: String::new(),
            configuration_set: None,
        },
    });
    let result = dev::serve_with(ctx, Some(site), listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    relay.abort();
    let _ = std::fs::remove_file(dev_info_path(&args.data_dir));
    println!("stopped");
    result
}

/// The local site's session key: made once, kept in the data directory, so sessions survive
/// a restart of `bonus dev`.
fn local_site_key(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("site-session.key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        if key.trim().len() >= member_site::MIN_SESSION_KEY_BYTES {
            return Ok(key.trim().as_bytes().to_vec());
        }
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let key = hex::encode(bytes);
    std::fs::write(&path, &key)?;
    Ok(key.into_bytes())
}
