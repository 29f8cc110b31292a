//! Member messages end to end: signed order -> outbox -> relay -> SQS -> consumer -> SES/SNS,
//! all on moto and the embedded DynamoDB, read back from moto.

use bonus_cli::moto::LocalMoto;
use chrono::{DateTime, Utc};
use http::StatusCode;
use integration_tests::{order_paid, TestEnv};
use notifications::{consume_once, deliver, relay_once, Outcome, Senders};
use serde_json::Value;
use shared::store::config::{Consents, MemberProfile};

struct Stack {
    moto: LocalMoto,
    sqs: aws_sdk_sqs::Client,
    url: String,
    senders: Senders,
}

async fn stack() -> Stack {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let mut senders = bonus_cli::moto::local_senders(&moto.endpoint, "points@example.com")
        .await
        .unwrap();
    senders.unsubscribe_url = "https://velo.example/unsubscribe/{member_id}".into();
    let sqs = aws_sdk_sqs::Client::from_conf(shared::queue::local_config(&moto.endpoint));
    let url = shared::queue::ensure_queue(&sqs, "notifications", 30, 5)
        .await
        .unwrap();
    Stack {
        senders,
        moto,
        sqs,
        url,
    }
}

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
    assert!(env.store.enrol_member(&profile).await.unwrap());
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
    assert_eq!(relay_once(&env.ctx, &s.sqs, &s.url, 100).await.unwrap(), 1);
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
    assert!(mails[0].1.contains("https://velo.example/unsubscribe/NL-1"));
    assert!(sms.is_empty(), "no SMS consent");
    // The outbox is empty: nothing is relayed twice.
    assert_eq!(relay_once(&env.ctx, &s.sqs, &s.url, 100).await.unwrap(), 0);
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
        .outbox_page(shared::store::shard_of("earned:velo:shop:A-1", 16), 10)
        .await
        .unwrap();
    let body = serde_json::to_string(&page[0].1).unwrap();
    shared::queue::send_all(&s.sqs, &s.url, &[body.clone(), body])
        .await
        .unwrap();
    // ...then restarted: the event goes again.
    assert_eq!(relay_once(&env.ctx, &s.sqs, &s.url, 100).await.unwrap(), 1);
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
