//! `bonus notifications list`: what was sent to members.

use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// The member messages recorded on a day (UTC; default today): channel, member, message,
    /// status, subject or SMS text.
    List {
        #[arg(long)]
        day: Option<chrono::NaiveDate>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: NotificationsCommand) -> anyhow::Result<()> {
    match command {
        NotificationsCommand::List { day, store } => {
            let (store, _db) = open_store(&store).await?;
            let day = day.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let sent = store.deliveries_on(day).await?;
            if sent.is_empty() {
                println!("no messages on {day}");
            }
            for d in sent {
                println!(
                    "{} {:5} {:10} {:18} {:6} {:7} {}",
                    d.at.format("%H:%M:%S"),
                    d.channel,
                    d.member_id,
                    d.message,
                    d.locale,
                    d.status,
                    d.summary
                );
            }
            Ok(())
        }
    }
}
