//! `bonus dlq`'s library: dead-letter queues listed with their counts and sources, looked
//! into without taking anything, and redriven to their source, against SQS on moto.

use std::collections::BTreeSet;

use bonus_local_stack::moto::LocalMoto;
use bonus_sqs::dead_letters::{dead_letter_queues, peek, redrive};

#[tokio::test]
async fn dead_letters_are_listed_looked_at_and_redriven_to_their_source_once_each() {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let jobs = bonus_sqs::ensure_queue(&sqs, "bonus-t-jobs", 30, 5)
        .await
        .unwrap();
    let failures = sqs
        .create_queue()
        .queue_name("bonus-t-scheduled-failures")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    // Another stage's queue: not listed under this prefix.
    bonus_sqs::ensure_queue(&sqs, "bonus-u-jobs", 30, 5)
        .await
        .unwrap();
    let dlq = format!("{}-dlq", jobs);
    let bodies: Vec<String> = (1..=13).map(|i| format!("{{\"task\":{i}}}")).collect();
    bonus_sqs::send_all(&sqs, &dlq, &bodies).await.unwrap();
    bonus_sqs::send_all(&sqs, &failures, &["{\"requestPayload\":{}}".to_string()])
        .await
        .unwrap();

    let listed = dead_letter_queues(&sqs, "bonus-t-").await.unwrap();
    let summary: Vec<(&str, i64, Option<&str>)> = listed
        .iter()
        .map(|q| {
            (
                q.name.as_str(),
                q.messages,
                q.source
                    .as_deref()
                    .map(|s| s.rsplit('/').next().unwrap_or(s)),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("bonus-t-jobs-dlq", 13, Some("bonus-t-jobs")),
            ("bonus-t-scheduled-failures", 1, None),
        ]
    );

    // Looking takes nothing away.
    let seen = peek(&sqs, &dlq, 5).await.unwrap();
    assert_eq!(seen.len(), 5);
    assert_eq!(bonus_sqs::depth(&sqs, &dlq).await.unwrap(), 13);

    // A bounded redrive, then the rest.
    assert_eq!(redrive(&sqs, &dlq, &jobs, 4).await.unwrap(), 4);
    assert_eq!(bonus_sqs::depth(&sqs, &dlq).await.unwrap(), 9);
    assert_eq!(redrive(&sqs, &dlq, &jobs, 10_000).await.unwrap(), 9);
    assert_eq!(bonus_sqs::depth(&sqs, &dlq).await.unwrap(), 0);
    assert_eq!(redrive(&sqs, &dlq, &jobs, 10_000).await.unwrap(), 0);

    // Every message is back at its source once.
    let mut back = Vec::new();
    loop {
        let got = bonus_sqs::receive(&sqs, &jobs, 0).await.unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            bonus_sqs::delete(&sqs, &jobs, &m.receipt_handle)
                .await
                .unwrap();
            back.push(m.body);
        }
    }
    assert_eq!(back.len(), 13);
    assert_eq!(
        back.into_iter().collect::<BTreeSet<_>>(),
        bodies.into_iter().collect::<BTreeSet<_>>()
    );
}
