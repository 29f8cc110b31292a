//! Member messages end to end: signed order -> outbox -> relay -> SQS -> consumer -> SES/SNS,
//! all on moto and the embedded DynamoDB, read back from moto.

use bonus_domain::member::{Consents, MemberProfile};
use chrono::{DateTime, Utc};
use http::StatusCode;
use integration_tests::{message_stack as stack, order_paid, MessageStack as Stack, TestEnv};
use notifications::{consume_once, deliver, relay_once, Outcome};
use serde_json::Value;

/// What moto sent: (e-mails: subject and HTML body, SMS texts).
async fn sent(s: &Stack) -> (Vec<(String, String)>, Vec<String>) {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", s.moto.endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mails = data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                m["subject"].as_str().unwrap_or("").to_string(),
                m["body"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let sms = data["sns"]["SMS"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["message"].as_str().unwrap_or("").to_string())
        .collect();
    (mails, sms)
}

async fn member(env: &TestEnv, id: &str, email: bool, sms: bool) {
    let profile = MemberProfile {
        member_id: id.into(),
        programme_id: "velo".into(),
        email: Some(format!("{}@example.com", id.to_lowercase())),
        phone: Some("+31612345678".into()),
        locale: "nl".into(),
        time_zone: Some("Europe/Amsterdam".into()),
        consents: Consents { email, sms },
        enrolled_at: env.clock_now(),
        ..Default::default()
    };
    assert_eq!(
        env.store.enrol_member(&profile).await.unwrap(),
        bonus_dynamodb::config::Enrolled::Yes
    );
}

async fn order(env: &TestEnv, order_id: &str, member: &str) {
    let (status, body) = env
        .order(&order_paid(
            order_id,
            Some(member),
            &[("HELMET", 2, "49.95")],
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_signed_order_becomes_one_dutch_email_naming_the_points_and_the_date() {
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, false).await;
    order(&env, "A-1", "NL-1").await;
    assert_eq!(
        relay_once(&env.ctx, &s.sqs, &s.url, 100, None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        consume_once(&env.ctx, &s.senders, &s.sqs, &s.url)
            .await
            .unwrap(),
        (1, 0)
    );
    let (mails, sms) = sent(&s).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "Je hebt 99 punten gespaard");
    assert!(
        mails[0].1.contains("beschikbaar vanaf 7 december 2026"),
        "{}",
        mails[0].1
    );
    // The unsubscribe link works: opening it changes nothing, its button unsubscribes.
    let link = mails[0]
        .1
        .split("href=\"https://velo.example")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert!(link.starts_with("/v1/unsubscribe/velo/NL-1/"), "{link}");
    let email_consent = || async {
        env.store
            .get_profile("velo", "NL-1")
            .await
            .unwrap()
            .unwrap()
            .consents
            .email
    };
    assert_eq!(env.call("GET", &link, &[], "").await.0, StatusCode::OK);
    assert!(email_consent().await);
    let forged = format!("{}0", &link[..link.len() - 1]);
    let (status, body) = env.call("POST", &forged, &[], "").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unsubscribe_link_invalid"))
    );
    assert!(email_consent().await);
    assert_eq!(env.call("POST", &link, &[], "").await.0, StatusCode::OK);
    assert!(!email_consent().await);
    assert!(sms.is_empty(), "no SMS consent");
    // The outbox is empty: nothing is relayed twice.
    assert_eq!(
        relay_once(&env.ctx, &s.sqs, &s.url, 100, None)
            .await
            .unwrap(),
        0
    );
    let log = env
        .store
        .deliveries_on(env.clock_now().date_naive())
        .await
        .unwrap();
    assert_eq!((log.len(), log[0].status.as_str()), (1, "sent"));
}

#[tokio::test]
async fn the_same_event_three_times_and_a_relay_that_died_before_deleting_send_one_message() {
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, false).await;
    order(&env, "A-1", "NL-1").await;
    // A relay that sent the event and died before deleting it from the outbox...
    let page = env
        .store
        .outbox_page(
            bonus_domain::ids::shard_of("earned:velo:shop:A-1", 16),
            10,
            None,
        )
        .await
        .unwrap();
    let body = serde_json::to_string(&page[0].1).unwrap();
    bonus_sqs::send_all(&s.sqs, &s.url, &[body.clone(), body])
        .await
        .unwrap();
    // ...then restarted: the event goes again.
    assert_eq!(
        relay_once(&env.ctx, &s.sqs, &s.url, 100, None)
            .await
            .unwrap(),
        1
    );
    let mut total = 0;
    for _ in 0..3 {
        total += consume_once(&env.ctx, &s.senders, &s.sqs, &s.url)
            .await
            .unwrap()
            .0;
    }
    assert_eq!(total, 1);
    assert_eq!(sent(&s).await.0.len(), 1);
}

#[tokio::test]
async fn an_sms_at_23_00_member_time_goes_after_08_00_and_opted_out_or_erased_members_get_nothing()
{
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "SMS-1", false, true).await;
    member(&env, "OPTOUT-1", false, false).await;
    order(&env, "A-1", "SMS-1").await;
    order(&env, "A-2", "OPTOUT-1").await;
    let events: Vec<_> = {
        let mut out = Vec::new();
        for shard in 0..16 {
            out.extend(env.store.outbox_shard(shard).await.unwrap());
        }
        out
    };
    let for_member = |m: &str| events.iter().find(|e| e.member_id == m).unwrap().clone();
    // 22:00 UTC is 23:00 in Amsterdam: the SMS waits until 08:00 there (07:00 UTC).
    env.clock.set(at("2026-11-23T22:00:00Z"));
    let sms_event = for_member("SMS-1");
    assert_eq!(
        deliver(&env.ctx, &s.senders, &sms_event).await.unwrap(),
        Outcome::Deferred(at("2026-11-24T07:00:00Z"))
    );
    assert!(sent(&s).await.1.is_empty());
    env.clock.set(at("2026-11-24T07:00:01Z"));
    assert_eq!(
        deliver(&env.ctx, &s.senders, &sms_event).await.unwrap(),
        Outcome::Sent(1)
    );
    let (_, sms) = sent(&s).await;
    assert_eq!(sms.len(), 1);
    assert!(
        sms[0].starts_with("Velo: Je hebt 99 punten gespaard"),
        "{}",
        sms[0]
    );
    // Opted out of everything: nothing.
    assert_eq!(
        deliver(&env.ctx, &s.senders, &for_member("OPTOUT-1"))
            .await
            .unwrap(),
        Outcome::Sent(0)
    );
    // Erased after the event was written: dropped cleanly.
    member(&env, "GONE-1", true, true).await;
    let profile = env
        .store
        .get_profile("velo", "GONE-1")
        .await
        .unwrap()
        .unwrap();
    env.store
        .erase_member(&profile, env.clock_now())
        .await
        .unwrap();
    let mut gone = sms_event.clone();
    gone.member_id = "GONE-1".into();
    gone.event_id = "earned:velo:shop:GONE".into();
    assert_eq!(
        deliver(&env.ctx, &s.senders, &gone).await.unwrap(),
        Outcome::Sent(0)
    );
    assert_eq!(sent(&s).await.1.len(), 1);
}

async fn outbox_events(env: &TestEnv) -> Vec<bonus_domain::events::DomainEvent> {
    let mut out = Vec::new();
    for shard in 0..16 {
        out.extend(env.store.outbox_shard(shard).await.unwrap());
    }
    out
}

fn event_for(
    events: &[bonus_domain::events::DomainEvent],
    order: &str,
) -> bonus_domain::events::DomainEvent {
    events
        .iter()
        .find(|e| e.event_id.ends_with(&format!(":{order}")))
        .unwrap_or_else(|| panic!("no event for {order}"))
        .clone()
}

#[tokio::test]
async fn a_daily_digest_sends_the_days_orders_as_one_message_at_the_digest_hour() {
    let config = integration_tests::CONFIG.replace(
        "    product_groups: {cocktails: 10}\n",
        "    product_groups: {cocktails: 10}\n    messages: {earned: daily_digest, digest_hour: 18}\n",
    );
    let env = TestEnv::with_config(&config).await;
    let s = stack().await;
    member(&env, "NL-1", true, false).await;
    order(&env, "A-1", "NL-1").await;
    order(&env, "A-2", "NL-1").await;
    let events = outbox_events(&env).await;
    let (a1, a2) = (event_for(&events, "A-1"), event_for(&events, "A-2"));
    // 12:00 UTC = 13:00 in Amsterdam: both wait for 18:00 there (17:00 UTC), a duplicate too.
    let slot = at("2026-11-23T17:00:00Z");
    for e in [&a1, &a2, &a1] {
        assert_eq!(
            deliver(&env.ctx, &s.senders, e).await.unwrap(),
            Outcome::Deferred(slot)
        );
    }
    assert!(sent(&s).await.0.is_empty());
    // At 18:00 the first event back sends the digest; the others find it sent.
    env.clock.set(at("2026-11-23T17:00:05Z"));
    assert_eq!(
        deliver(&env.ctx, &s.senders, &a2).await.unwrap(),
        Outcome::Sent(1)
    );
    for e in [&a1, &a2] {
        assert_eq!(
            deliver(&env.ctx, &s.senders, e).await.unwrap(),
            Outcome::Sent(0)
        );
    }
    let (mails, _) = sent(&s).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "Je hebt vandaag 198 punten gespaard");
    assert!(
        mails[0]
            .1
            .contains("met 2 bestelling(en). De eerste zijn beschikbaar vanaf 7 december 2026"),
        "{}",
        mails[0].1
    );
    // An order after the digest went out joins the next day's.
    order(&env, "A-3", "NL-1").await;
    let a3 = event_for(&outbox_events(&env).await, "A-3");
    assert_eq!(
        deliver(&env.ctx, &s.senders, &a3).await.unwrap(),
        Outcome::Deferred(at("2026-11-24T17:00:00Z"))
    );
    // A member who asked for every order gets this one now, whatever the programme says.
    let mut p = env
        .store
        .get_profile("velo", "NL-1")
        .await
        .unwrap()
        .unwrap();
    let before = p.clone();
    p.preferences.earned_messages = Some("per_order".into());
    assert!(env.store.save_profile(&before, &p).await.unwrap());
    order(&env, "A-4", "NL-1").await;
    let a4 = event_for(&outbox_events(&env).await, "A-4");
    assert_eq!(
        deliver(&env.ctx, &s.senders, &a4).await.unwrap(),
        Outcome::Sent(1)
    );
    assert_eq!(sent(&s).await.0[1].0, "Je hebt 99 punten gespaard");
}

#[tokio::test]
async fn an_invalid_number_is_recorded_on_the_member_and_not_tried_again() {
    let env = TestEnv::new().await;
    let s = stack().await;
    // A number SNS refuses (not E.164; the member API would not take it, an old import did).
    let profile = MemberProfile {
        member_id: "BAD-1".into(),
        programme_id: "velo".into(),
        phone: Some("0612345678".into()),
        locale: "en".into(),
        consents: Consents {
            email: false,
            sms: true,
        },
        enrolled_at: env.clock_now(),
        ..Default::default()
    };
    assert_eq!(
        env.store.enrol_member(&profile).await.unwrap(),
        bonus_dynamodb::config::Enrolled::Yes
    );
    order(&env, "A-1", "BAD-1").await;
    order(&env, "A-2", "BAD-1").await;
    let events = outbox_events(&env).await;
    assert_eq!(
        deliver(&env.ctx, &s.senders, &event_for(&events, "A-1"))
            .await
            .unwrap(),
        Outcome::Sent(0)
    );
    let p = env
        .store
        .get_profile("velo", "BAD-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p.sms_undeliverable.as_ref().map(|u| u.reason.as_str()),
        Some("InvalidParameter")
    );
    let log = env
        .store
        .deliveries_on(env.clock_now().date_naive())
        .await
        .unwrap();
    assert_eq!(
        log.iter()
            .map(|d| (d.status.as_str(), d.failure.as_deref()))
            .collect::<Vec<_>>(),
        vec![("undeliverable", Some("InvalidParameter"))]
    );
    // The next event does not try the number again: nothing is claimed or logged.
    assert_eq!(
        deliver(&env.ctx, &s.senders, &event_for(&events, "A-2"))
            .await
            .unwrap(),
        Outcome::Sent(0)
    );
    assert_eq!(
        env.store
            .deliveries_on(env.clock_now().date_naive())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(sent(&s).await.1.is_empty());
}

/// An SES event as the feedback topic delivers it (in its SNS envelope).
fn ses_event(kind: &str, message_id: &str, address: &str) -> String {
    let mut event = serde_json::json!({
        "eventType": kind,
        "mail": {"messageId": message_id, "destination": [address]},
    });
    if kind == "Bounce" {
        event["bounce"] = serde_json::json!({
            "bounceType": "Permanent", "bounceSubType": "NoEmail",
            "bouncedRecipients": [{"emailAddress": address.to_uppercase()}],
        });
    } else {
        event["complaint"] =
            serde_json::json!({"complainedRecipients": [{"emailAddress": address}]});
    }
    serde_json::json!({"Type": "Notification", "Message": event.to_string()}).to_string()
}

#[tokio::test]
async fn a_hard_bounce_stops_email_to_that_address_and_a_complaint_withdraws_consent() {
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, false).await;
    member(&env, "NL-2", true, false).await;
    for (o, m) in [
        ("A-1", "NL-1"),
        ("A-2", "NL-2"),
        ("A-3", "NL-1"),
        ("A-4", "NL-2"),
    ] {
        order(&env, o, m).await;
    }
    let events = outbox_events(&env).await;
    for o in ["A-1", "A-2"] {
        assert_eq!(
            deliver(&env.ctx, &s.senders, &event_for(&events, o))
                .await
                .unwrap(),
            Outcome::Sent(1)
        );
    }
    let log = env
        .store
        .deliveries_on(env.clock_now().date_naive())
        .await
        .unwrap();
    let provider_id = |m: &str| {
        log.iter()
            .find(|d| d.member_id == m)
            .and_then(|d| d.provider_id.clone())
            .unwrap()
    };
    let bounce = ses_event("Bounce", &provider_id("NL-1"), "nl-1@example.com");
    let complaint = ses_event("Complaint", &provider_id("NL-2"), "nl-2@example.com");
    bonus_sqs::send_all(&s.sqs, &s.url, &[bounce, complaint])
        .await
        .unwrap();
    assert_eq!(
        consume_once(&env.ctx, &s.senders, &s.sqs, &s.url)
            .await
            .unwrap(),
        (0, 0)
    );
    let nl1 = env
        .store
        .get_profile("velo", "NL-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        nl1.email_undeliverable.map(|u| u.reason),
        Some("bounce:NoEmail".to_string())
    );
    let nl2 = env
        .store
        .get_profile("velo", "NL-2")
        .await
        .unwrap()
        .unwrap();
    assert!(!nl2.consents.email);
    // Neither gets the next e-mail.
    for o in ["A-3", "A-4"] {
        assert_eq!(
            deliver(&env.ctx, &s.senders, &event_for(&events, o))
                .await
                .unwrap(),
            Outcome::Sent(0)
        );
    }
    assert_eq!(sent(&s).await.0.len(), 2);
    assert_eq!(bonus_sqs::depth(&s.sqs, &s.url).await.unwrap(), 0);
}

#[tokio::test]
async fn the_monthly_statement_sums_the_month_and_goes_once() {
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, true).await;
    member(&env, "NL-2", false, true).await; // SMS only: statements are e-mails
                                             // October (Amsterdam): 99 points earned on the 5th, 49 back by a refund on the 20th.
    env.clock.set(at("2026-10-05T10:00:00Z"));
    let paid = order_paid("A-1", Some("NL-1"), &[("HELMET", 2, "49.95")])
        .replace("2026-11-23T11:00:00Z", "2026-10-05T09:00:00Z");
    assert_eq!(env.order(&paid).await.0, StatusCode::OK);
    env.clock.set(at("2026-10-20T10:00:00Z"));
    let refund = serde_json::json!({
        "type": "order.refunded", "order_id": "A-1", "refund_id": "R-1",
        "occurred_at": "2026-10-20T09:00:00Z", "currency": "EUR",
        "lines": [{"line_id": "1", "quantity": 1}],
    });
    assert_eq!(env.order(&refund.to_string()).await.0, StatusCode::OK);
    // November: not in October's statement.
    env.clock.set(at("2026-11-01T05:00:00Z"));
    let paid = order_paid("A-2", Some("NL-1"), &[("HELMET", 1, "10.00")])
        .replace("2026-11-23T11:00:00Z", "2026-11-01T04:00:00Z");
    assert_eq!(env.order(&paid).await.0, StatusCode::OK);

    env.clock.set(at("2026-11-01T07:00:00Z"));
    let run = || async {
        let tasks = notifications::statement::plan(&env.ctx, &s.sqs, &s.url, "2026-10")
            .await
            .unwrap();
        let mut sent = 0;
        loop {
            let (n, waiting) = consume_once(&env.ctx, &s.senders, &s.sqs, &s.url)
                .await
                .unwrap();
            assert_eq!(waiting, 0);
            sent += n;
            if bonus_sqs::depth(&s.sqs, &s.url).await.unwrap() == 0 {
                break;
            }
        }
        (tasks, sent)
    };
    // Two programmes with statements on, 16 member-list shards each.
    assert_eq!(run().await, (32, 1));
    let (mails, sms) = sent(&s).await;
    assert_eq!(mails.len(), 1);
    assert!(sms.is_empty());
    assert_eq!(mails[0].0, "Je punten in oktober 2026");
    assert!(
        mails[0]
            .1
            .contains("gespaard 50, besteed 0, vervallen 0. Nu beschikbaar: 50."),
        "{}",
        mails[0].1
    );
    // The month again: nothing new.
    assert_eq!(run().await, (32, 0));
    assert_eq!(sent(&s).await.0.len(), 1);
}

#[tokio::test]
async fn the_lambda_handler_reports_only_what_failed_and_keeps_what_must_wait() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, false).await;
    member(&env, "SMS-1", false, true).await;
    order(&env, "A-1", "NL-1").await;
    order(&env, "A-2", "SMS-1").await;
    let events = outbox_events(&env).await;
    env.clock.set(at("2026-11-23T22:00:00Z")); // 23:00 in Amsterdam
    let bodies = [
        (
            "good",
            serde_json::to_string(&event_for(&events, "A-1")).unwrap(),
        ),
        ("poison", "{not an event".to_string()),
        (
            "night-sms",
            serde_json::to_string(&event_for(&events, "A-2")).unwrap(),
        ),
    ];
    let mut event = SqsEvent::default();
    for (id, body) in bodies {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body);
        event.records.push(m);
    }
    let response = notifications::handle_sqs(&env.ctx, &s.senders, &s.sqs, &s.url, event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["poison", "night-sms"]);
    assert_eq!(sent(&s).await.0.len(), 1);
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dead_letter_queue() {
    let env = TestEnv::new().await;
    let s = stack().await;
    // A queue that gives up after 2 receives and hides nothing, so the test need not wait.
    let url = bonus_sqs::ensure_queue(&s.sqs, "notify-poison", 0, 2)
        .await
        .unwrap();
    let dlq = s
        .sqs
        .get_queue_url()
        .queue_name("notify-poison-dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    bonus_sqs::send_all(&s.sqs, &url, &["{\"half\": ".to_string()])
        .await
        .unwrap();
    for _ in 0..4 {
        consume_once(&env.ctx, &s.senders, &s.sqs, &url)
            .await
            .unwrap();
    }
    assert_eq!(bonus_sqs::depth(&s.sqs, &url).await.unwrap(), 0);
    assert_eq!(bonus_sqs::depth(&s.sqs, &dlq).await.unwrap(), 1);
}

#[tokio::test]
async fn the_stream_relay_publishes_outbox_inserts_only_and_deletes_them() {
    use aws_lambda_events::event::dynamodb;
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, false).await;
    order(&env, "A-1", "NL-1").await;
    let outbox_items = || async {
        let mut out = Vec::new();
        for shard in 0..16 {
            out.extend(
                env.store
                    .query_items(&format!("OUTBOX#{shard:02}"), "")
                    .await
                    .unwrap(),
            );
        }
        out
    };
    let raw = outbox_items().await;
    assert_eq!(raw.len(), 1);
    let record = |name: &str, item: &bonus_dynamodb::Item, seq: &str| {
        let image = serde_dynamo::Item::from(item.clone());
        let keys: serde_dynamo::Item = serde_dynamo::Item::from(
            item.iter()
                .filter(|(k, _)| *k == "PK" || *k == "SK")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<bonus_dynamodb::Item>(),
        );
        serde_json::json!({
            "eventID": seq, "eventName": name, "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1", "eventVersion": "1.1",
            "dynamodb": {"Keys": keys, "NewImage": image, "SequenceNumber": seq,
                "SizeBytes": 100, "StreamViewType": "NEW_IMAGE",
                "ApproximateCreationDateTime": 1795000000.0},
        })
    };
    let account = env
        .store
        .query_items(&bonus_dynamodb::keys::member_pk("velo", "NL-1"), "ACCOUNT")
        .await
        .unwrap()
        .remove(0);
    let batch: dynamodb::Event = serde_json::from_value(serde_json::json!({
        "Records": [record("MODIFY", &account, "1"), record("INSERT", &raw[0], "2")]
    }))
    .unwrap();
    // The queue is unreachable: the batch reports the first record not sent, so the stream
    // retries from there, and the outbox item stays.
    let missing = format!("{}/000000000000/no-such-queue", s.moto.endpoint);
    let response = notifications::relay_stream(&env.ctx, &s.sqs, &missing, batch.clone()).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec![Some("2".to_string())]);
    assert_eq!(outbox_items().await.len(), 1);
    // The retry gets through.
    let response = notifications::relay_stream(&env.ctx, &s.sqs, &s.url, batch).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(bonus_sqs::depth(&s.sqs, &s.url).await.unwrap(), 1);
    assert!(outbox_items().await.is_empty());
    assert_eq!(
        consume_once(&env.ctx, &s.senders, &s.sqs, &s.url)
            .await
            .unwrap(),
        (1, 0)
    );
}

#[tokio::test]
async fn a_message_costs_two_reads_a_claim_and_three_records() {
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, false).await;
    order(&env, "A-1", "NL-1").await;
    order(&env, "A-2", "NL-1").await;
    let events = outbox_events(&env).await;
    // Cold: the partner is read once, then cached by the function.
    env.requests.reset();
    deliver(&env.ctx, &s.senders, &event_for(&events, "A-1"))
        .await
        .unwrap();
    let cold = env.requests.snapshot();
    env.requests.reset();
    assert_eq!(
        deliver(&env.ctx, &s.senders, &event_for(&events, "A-2"))
            .await
            .unwrap(),
        Outcome::Sent(1)
    );
    let warm = env.requests.snapshot();
    // Profile and programme; the claim (conditional put); the claim's outcome, the provider
    // id lookup and the day's log.
    assert_eq!(warm.get("GetItem"), Some(&2), "{warm:?}");
    assert_eq!(warm.get("PutItem"), Some(&4), "{warm:?}");
    assert_eq!(env.requests.total(), 6, "{warm:?}");
    // A duplicate: the same two reads and the refused claim, nothing sent.
    env.requests.reset();
    assert_eq!(
        deliver(&env.ctx, &s.senders, &event_for(&events, "A-2"))
            .await
            .unwrap(),
        Outcome::Sent(0)
    );
    let duplicate = env.requests.snapshot();
    assert_eq!(env.requests.total(), 3, "{duplicate:?}");
    println!("REQUESTS cold message: {cold:?}");
    println!("REQUESTS warm message: {warm:?}");
    println!("REQUESTS duplicate message: {duplicate:?}");
}

#[tokio::test]
async fn a_consumer_that_died_between_claim_and_send_is_taken_over_after_its_lease() {
    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, false).await;
    order(&env, "A-1", "NL-1").await;
    let event = event_for(&outbox_events(&env).await, "A-1");
    // A consumer claimed the e-mail at 12:00 and died before sending it.
    let claim = bonus_dynamodb::notify::Delivery {
        event_id: event.event_id.clone(),
        channel: "email".into(),
        programme_id: "velo".into(),
        member_id: "NL-1".into(),
        message: "points_earned".into(),
        locale: "nl".into(),
        status: "sending".into(),
        provider_id: None,
        at: env.clock_now(),
        summary: String::new(),
        failure: None,
        expires_ttl: 0,
    };
    assert_eq!(
        env.store
            .claim_delivery(&claim, env.clock_now() - chrono::Duration::minutes(15))
            .await
            .unwrap(),
        bonus_dynamodb::notify::Claim::Claimed
    );
    // Within the lease another delivery leaves it alone (it may still be sending) and comes
    // back when the lease ends...
    env.clock.set(at("2026-11-23T12:10:00Z"));
    assert_eq!(
        deliver(&env.ctx, &s.senders, &event).await.unwrap(),
        Outcome::Deferred(at("2026-11-23T12:15:01Z"))
    );
    assert!(sent(&s).await.0.is_empty());
    // ...after it, the message is sent, once.
    env.clock.set(at("2026-11-23T12:16:00Z"));
    assert_eq!(
        deliver(&env.ctx, &s.senders, &event).await.unwrap(),
        Outcome::Sent(1)
    );
    assert_eq!(
        deliver(&env.ctx, &s.senders, &event).await.unwrap(),
        Outcome::Sent(0)
    );
    assert_eq!(sent(&s).await.0.len(), 1);
}

/// Everything the functions log during a test, as JSON lines.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn nothing_personal_reaches_the_logs() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // Global (this test binary's other tests log into it too, which only widens the check):
    // a thread-local subscriber can miss events whose callsites other threads cached first.
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let env = TestEnv::new().await;
    let s = stack().await;
    member(&env, "NL-1", true, true).await; // nl-1@example.com, +31612345678
    let bad = MemberProfile {
        member_id: "BAD-1".into(),
        programme_id: "velo".into(),
        email: Some("bad-1@example.com".into()),
        phone: Some("0612345678".into()),
        name: Some("Anna de Vries".into()),
        locale: "en".into(),
        consents: Consents {
            email: true,
            sms: true,
        },
        enrolled_at: env.clock_now(),
        ..Default::default()
    };
    assert_eq!(
        env.store.enrol_member(&bad).await.unwrap(),
        bonus_dynamodb::config::Enrolled::Yes
    );
    order(&env, "A-1", "NL-1").await;
    order(&env, "A-2", "BAD-1").await;
    relay_once(&env.ctx, &s.sqs, &s.url, 100, None)
        .await
        .unwrap();
    let (sent_now, _) = notifications::consume_all(&env.ctx, &s.senders, &s.sqs, &s.url, 10)
        .await
        .unwrap();
    assert_eq!(
        sent_now, 3,
        "two e-mails and one SMS; the bad number is refused"
    );
    let log = env
        .store
        .deliveries_on(env.clock_now().date_naive())
        .await
        .unwrap();
    let id = log
        .iter()
        .find(|d| d.member_id == "BAD-1" && d.channel == "email")
        .and_then(|d| d.provider_id.clone())
        .unwrap();
    let bounce = ses_event("Bounce", &id, "bad-1@example.com");
    bonus_sqs::send_all(&s.sqs, &s.url, &[bounce])
        .await
        .unwrap();
    notifications::consume_all(&env.ctx, &s.senders, &s.sqs, &s.url, 10)
        .await
        .unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("member notified"), "the test saw the logs");
    assert!(text.contains("hard bounce"), "the test saw the bounce");
    for personal in [
        "nl-1@example.com",
        "bad-1@example.com",
        "BAD-1@EXAMPLE.COM",
        "+31612345678",
        "0612345678",
        "Anna de Vries",
    ] {
        assert!(!text.contains(personal), "{personal} in the logs");
    }
}

/// SES and SNS throttle: five send attempts are refused as the services refuse them. The
/// SDK retries, gives up, the consumer leaves the message, the queue gives it back, and each
/// member still gets exactly one message.
#[tokio::test]
async fn throttled_ses_and_sns_sends_go_out_once_when_their_messages_come_back() {
    let env = TestEnv::new().await;
    let mut s = stack().await;
    let throttle = integration_tests::SendThrottle::default();
    let ses = aws_sdk_sesv2::Client::from_conf(
        s.senders
            .ses
            .config()
            .to_builder()
            .interceptor(throttle.clone())
            .build(),
    );
    s.senders.ses = notifications::first_use(move || ses);
    let sns = aws_sdk_sns::Client::from_conf(
        s.senders
            .sns
            .config()
            .to_builder()
            .interceptor(throttle.clone())
            .build(),
    );
    s.senders.sns = notifications::first_use(move || sns);
    // A queue that gives a failed message back after a second.
    let fast = bonus_sqs::ensure_queue(&s.sqs, "notifications-fast", 1, 10)
        .await
        .unwrap();
    member(&env, "NL-1", true, false).await;
    member(&env, "NL-2", false, true).await;
    order(&env, "A-1", "NL-1").await;
    order(&env, "A-2", "NL-2").await;
    assert_eq!(
        relay_once(&env.ctx, &s.sqs, &fast, 100, None)
            .await
            .unwrap(),
        2
    );
    throttle.throttle_next(5);
    let (mut total, mut rounds) = (0, 0);
    while total < 2 && rounds < 20 {
        total += consume_once(&env.ctx, &s.senders, &s.sqs, &fast)
            .await
            .unwrap()
            .0;
        rounds += 1;
        if total < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        }
    }
    assert_eq!((total, throttle.throttled()), (2, 5));
    let (mails, sms) = sent(&s).await;
    assert_eq!((mails.len(), sms.len()), (1, 1));
    // Nothing is sent again afterwards.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        consume_once(&env.ctx, &s.senders, &s.sqs, &fast)
            .await
            .unwrap(),
        (0, 0)
    );
    let (mails, sms) = sent(&s).await;
    assert_eq!((mails.len(), sms.len()), (1, 1));
}
