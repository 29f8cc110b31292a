//! `bonus site login-link`: the newest login link (or SMS code) the local member site sent,
//! read from moto's sent messages, for logging in as a demo member.

use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum SiteCommand {
    /// Print the newest login link e-mailed (or, for a phone number, the newest SMS code).
    LoginLink {
        /// The e-mail address or phone number it was sent to (default: any).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: SiteCommand) -> anyhow::Result<()> {
    match command {
        SiteCommand::LoginLink { to, store } => {
            let info: DevInfo = serde_json::from_str(
                &std::fs::read_to_string(dev_info_path(&store.data_dir)).map_err(|_| {
                    anyhow::anyhow!("no local stack is running here (start it with `make run`)")
                })?,
            )?;
            let moto = info
                .sqs
                .ok_or_else(|| anyhow::anyhow!("the local stack has no moto server"))?;
            let phone = to.as_deref().is_some_and(|t| t.starts_with('+'));
            let found = if phone {
                bonus_local_stack::moto::last_sms_code(&moto, to.as_deref()).await?
            } else {
                bonus_local_stack::moto::last_login_link(&moto, to.as_deref()).await?
            };
            match found {
                Some(x) => println!("{x}"),
                None => anyhow::bail!(
                    "nothing sent yet: ask for a link on the login page first (it may take a second)"
                ),
            }
            Ok(())
        }
    }
}
