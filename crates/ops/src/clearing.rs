//! `bonus clearing show|close`: a coalition month's statements on the terminal, as CSV or
//! as JSON.

use std::path::Path;

use anyhow::Context;
use bonus_domain::clearing::Clearing;
use bonus_domain::money::{Currency, Money};
use bonus_dynamodb::clearing::{ClosedMonth, Closing};
use bonus_dynamodb::Store;
use chrono::{DateTime, Utc};

/// The month's clearing: the closed one as stored, else a preview from the counters.
pub async fn load(
    store: &Store,
    programme_id: &str,
    month: &str,
) -> anyhow::Result<(Clearing, Option<ClosedMonth>)> {
    if let Some((summary, c)) = store.closed_month(programme_id, month).await? {
        return Ok((c, Some(summary)));
    }
    let c = clearing::compute(store, programme_id, month).await?;
    Ok((c, None))
}

fn money(minor: i64, currency: Currency) -> String {
    Money::new(minor, currency).amount_string()
}

/// The statements and the matrix as a text report.
pub fn text(c: &Clearing, closed: Option<&ClosedMonth>, currency: Currency) -> String {
    let mut out = String::new();
    let state = match closed {
        Some(s) => format!("closed {}", s.closed_at.format("%Y-%m-%d %H:%M UTC")),
        None => "OPEN: a preview from the counters, not final".to_string(),
    };
    out.push_str(&format!(
        "clearing {} {} ({state}); 1 point = {} {currency}\n\n",
        c.programme_id,
        c.month,
        money(c.point_value_minor, currency)
    ));
    out.push_str(&format!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12}\n",
        "partner",
        "issued",
        "reversed",
        "at self",
        "at others",
        "from oth.",
        "expired",
        "fee",
        "net"
    ));
    for s in &c.statements {
        let points: Vec<String> = s.points().iter().map(|p| format!("{p:>9}")).collect();
        out.push_str(&format!(
            "{:<16} {} {:>10} {:>12}\n",
            s.partner_id,
            points.join(" "),
            money(s.breakage_fee, currency),
            money(s.net, currency),
        ));
    }
    out.push_str(
        "\nnet > 0: the partner is paid; < 0: it pays. Points are spent where the column says:\n\n",
    );
    let ids: Vec<&str> = c.statements.iter().map(|s| s.partner_id.as_str()).collect();
    let w = ids.iter().map(|i| i.len()).max().unwrap_or(0).max(12);
    out.push_str(&format!("{:<w$}", "issuer \\ at"));
    for id in &ids {
        out.push_str(&format!(" {id:>w$}"));
    }
    out.push('\n');
    for from in &ids {
        out.push_str(&format!("{from:<w$}"));
        for to in &ids {
            let p = c
                .matrix
                .get(*from)
                .and_then(|r| r.get(*to))
                .copied()
                .unwrap_or(0);
            out.push_str(&format!(" {p:>w$}"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "\nchecked: issued - reversed = redeemed + expired + outstanding change ({}); nets sum to 0; matrix = totals\n",
        c.outstanding_change
    ));
    out
}

pub fn write_exports(c: &Clearing, csv: Option<&Path>, json: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = csv {
        std::fs::write(path, clearing::csv(c)).with_context(|| format!("{}", path.display()))?;
        println!("CSV written to {}", path.display());
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(c)?)
            .with_context(|| format!("{}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}

/// Close a month now (what the monthly worker does).
pub async fn close(
    store: &Store,
    programme_id: &str,
    month: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<(Clearing, &'static str)> {
    let (c, closing) = clearing::close(store, programme_id, month, now).await?;
    Ok((c, closing_text(&closing)))
}

pub fn closing_text(closing: &Closing) -> &'static str {
    match closing {
        Closing::Written => "closed now",
        Closing::Reproduced => "already closed with the same figures: nothing written",
        Closing::Differs { .. } => "closed with other figures",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_the_sign_and_the_decimals() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(money(-1250, eur), "-12.50");
        assert_eq!(money(5, eur), "0.05");
    }
}
