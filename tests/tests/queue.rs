//! The SQS adapter against a real SQS API: moto, started on a free port for this test.

use bonus_local_stack::moto::LocalMoto;
use bonus_sqs as queue;

#[tokio::test]
async fn messages_go_round_and_a_poison_message_ends_in_the_dead_letter_queue() {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let client = aws_sdk_sqs::Client::from_conf(queue::local_config(&moto.endpoint));
    let url = queue::ensure_queue(&client, "work", 0, 2).await.unwrap();
    // Created twice: the same queue.
    assert_eq!(
        queue::ensure_queue(&client, "work", 0, 2).await.unwrap(),
        url
    );

    let bodies: Vec<String> = (0..25).map(|i| format!("{{\"n\":{i}}}")).collect();
    queue::send_all(&client, &url, &bodies).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 25 {
        let batch = queue::receive(&client, &url, 1).await.unwrap();
        assert!(!batch.is_empty(), "only {} of 25 arrived", got.len());
        for m in batch {
            queue::delete(&client, &url, &m.receipt_handle)
                .await
                .unwrap();
            got.push(m.body);
        }
    }
    got.sort();
    let mut want = bodies.clone();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(queue::depth(&client, &url).await.unwrap(), 0);

    // Received twice and never deleted: moved to the dead-letter queue.
    queue::send_all(&client, &url, &["poison".to_string()])
        .await
        .unwrap();
    for _ in 0..2 {
        let batch = queue::receive(&client, &url, 1).await.unwrap();
        assert_eq!(batch.len(), 1);
    }
    assert!(queue::receive(&client, &url, 1).await.unwrap().is_empty());
    let dlq = client
        .get_queue_url()
        .queue_name("work-dlq")
        .send()
        .await
        .unwrap();
    let dlq_url = dlq.queue_url.unwrap();
    let dead = queue::receive(&client, &dlq_url, 1).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["poison"]
    );
}
