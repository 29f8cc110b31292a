//! `bonus dlq list|show|redrive`: the dead-letter queues, locally (the moto of a running
//! `bonus dev`) or on AWS (`--aws`, the stage's queues by name prefix).

use anyhow::{bail, Context};
use bonus_sqs::dead_letters;
use clap::{Args, Subcommand};

use crate::common::*;

#[derive(Args)]
pub struct QueueArgs {
    /// Use the AWS account of the environment (AWS_PROFILE, AWS_REGION).
    #[arg(long)]
    aws: bool,
    /// Queue name prefix: the stage's queues (`bonus-dev-`, `bonus-prod-`); locally `bonus-`.
    #[arg(long, default_value = "bonus-")]
    prefix: String,
    #[arg(long, env = "BONUS_DATA_DIR", default_value = ".bonus")]
    data_dir: std::path::PathBuf,
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Every dead-letter and failure queue with the messages waiting in it.
    List {
        #[command(flatten)]
        queues: QueueArgs,
    },
    /// Print up to --max messages of a queue, leaving them where they are.
    Show {
        /// The queue's name (as `bonus dlq list` prints it).
        queue: String,
        #[arg(long, default_value_t = 10)]
        max: usize,
        #[command(flatten)]
        queues: QueueArgs,
    },
    /// Move messages from a dead-letter queue back to its source queue (`X` for `X-dlq`)
    /// once the cause is fixed: sent, then deleted; the consumers are idempotent.
    Redrive {
        /// The dead-letter queue's name.
        queue: String,
        /// At most this many messages.
        #[arg(long, default_value_t = 10_000)]
        max: usize,
        #[command(flatten)]
        queues: QueueArgs,
    },
}

async fn client(args: &QueueArgs) -> anyhow::Result<aws_sdk_sqs::Client> {
    if args.aws {
        return Ok(aws_sdk_sqs::Client::new(&aws_config_from_env().await));
    }
    let endpoint = std::fs::read_to_string(dev_info_path(&args.data_dir))
        .ok()
        .and_then(|t| serde_json::from_str::<DevInfo>(&t).ok())
        .and_then(|i| i.sqs)
        .context("no local SQS: start `make run` (bonus dev) first, or pass --aws")?;
    Ok(aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(
        &endpoint,
    )))
}

pub async fn run(command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { queues } => {
            let sqs = client(&queues).await?;
            let found = dead_letters::dead_letter_queues(&sqs, &queues.prefix).await?;
            if found.is_empty() {
                println!("no dead-letter queues named {}*", queues.prefix);
            }
            println!("{:<44} {:>8}  redrives to", "queue", "messages");
            for q in found {
                let to = match &q.source {
                    Some(url) => url.rsplit('/').next().unwrap_or(url).to_string(),
                    None => "- (look, then re-run: docs/operations.md)".to_string(),
                };
                println!("{:<44} {:>8}  {to}", q.name, q.messages);
            }
            Ok(())
        }
        DlqCommand::Show { queue, max, queues } => {
            let sqs = client(&queues).await?;
            let url = dead_letters::queue_url(&sqs, &queue).await?;
            for body in dead_letters::peek(&sqs, &url, max).await? {
                println!("{body}");
            }
            Ok(())
        }
        DlqCommand::Redrive { queue, max, queues } => {
            let sqs = client(&queues).await?;
            let found = dead_letters::dead_letter_queues(&sqs, &queues.prefix).await?;
            let Some(q) = found.iter().find(|q| q.name == queue) else {
                bail!(
                    "{queue} is not a dead-letter queue under the prefix {} (see bonus dlq list)",
                    queues.prefix
                );
            };
            let Some(source) = &q.source else {
                bail!(
                    "{queue} collects failed runs, not messages of a queue: look at them with \
                     `bonus dlq show {queue}` and re-run the job (docs/operations.md)"
                );
            };
            let moved = dead_letters::redrive(&sqs, &q.url, source, max).await?;
            let left = bonus_sqs::depth(&sqs, &q.url).await?;
            println!(
                "moved {moved} message(s) from {queue} to {}; {left} left",
                source.rsplit('/').next().unwrap_or(source)
            );
            Ok(())
        }
    }
}
