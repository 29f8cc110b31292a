//! Rendering member messages: one message (subject, text, HTML and SMS blocks) from its
//! template, with the SMS encoded and split; and building the template environment (once per
//! warm Lambda in practice, per message today). Run: `cargo bench -p bonus-messages --bench render`.

use bonus_domain::notify::{sample, sms};
use bonus_messages::{environment, render};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let env = environment();
    let vars = sample("points_earned", "nl");
    c.bench_function("render points_earned nl (4 blocks) + SMS encoding", |b| {
        b.iter(|| {
            let r = render(&env, "points_earned", "nl", &vars).unwrap_or_else(|e| panic!("{e}"));
            sms(&r.sms)
        })
    });
    let vars = sample("monthly_statement", "fi");
    c.bench_function("render monthly_statement fi", |b| {
        b.iter(|| render(&env, "monthly_statement", "fi", &vars).map(|r| r.html.len()))
    });
    c.bench_function("template environment (40 templates)", |b| {
        b.iter(environment)
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
