//! `bonus notify preview`: a member message rendered from its template.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum NotifyCommand {
    /// Render a message template with sample data: subject, text, HTML and SMS.
    Preview {
        /// points_earned, points_earned_digest, points_available, points_expiring, points_expired,
        /// tier_changed, points_redeemed or monthly_statement.
        message: String,
        /// en, de, nl, sv or fi (others fall back to en).
        #[arg(long, default_value = "en")]
        locale: String,
    },
}

pub async fn run(command: NotifyCommand) -> anyhow::Result<()> {
    match command {
        NotifyCommand::Preview { message, locale } => {
            let env = bonus_messages::environment();
            let r = bonus_messages::render(
                &env,
                &message,
                &locale,
                &bonus_domain::notify::sample(&message, &locale),
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "{e} (messages: {})",
                    bonus_domain::notify::MESSAGES.join(", ")
                )
            })?;
            let sms = bonus_domain::notify::sms(&r.sms);
            println!("locale   {}", r.locale);
            println!("subject  {}\n", r.subject);
            println!("--- text ---\n{}\n", r.text);
            println!("--- html ---\n{}\n", r.html);
            println!(
                "--- sms ({:?}, {} segment(s)) ---\n{}",
                sms.encoding, sms.segments, sms.text
            );
            Ok(())
        }
    }
}
