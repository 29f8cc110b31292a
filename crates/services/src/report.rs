//! The campaign report (`bonus report campaign`, the partner API): the campaign period
//! against the three equal periods before it, from the per-partner, per-SKU, per-day sales
//! aggregates (one Query per SKU), as text, CSV ([`bonus_domain::report::csv`]) and an SVG
//! chart drawn with `plotters`.

use std::collections::BTreeSet;

use bonus_domain::campaign::Campaign;
use bonus_domain::money::{Currency, Money};
use bonus_domain::programme::Programme;
use bonus_domain::report::{build, periods, CampaignReport, PeriodFigures};
use bonus_dynamodb::{Store, StoreError};
use plotters::prelude::*;
use rust_decimal::Decimal;

/// The report of a campaign: its SKUs' sales in the four periods.
pub async fn gather(
    store: &Store,
    programme: &Programme,
    campaign: &Campaign,
) -> Result<CampaignReport, StoreError> {
    let spans = periods(campaign.starts_on, campaign.ends_on);
    let mut figures: Vec<PeriodFigures> = spans
        .iter()
        .map(|(from, to)| PeriodFigures {
            from: *from,
            to: *to,
            ..PeriodFigures::default()
        })
        .collect();
    let mut members: Vec<BTreeSet<String>> = vec![BTreeSet::new(); 4];
    let mut others: Vec<BTreeSet<String>> = vec![BTreeSet::new(); 4];
    for sku in &campaign.skus {
        let days = store
            .sales(&campaign.partner_id, sku, spans[0].0, spans[3].1)
            .await?;
        for (day, sales) in days {
            let Some(i) = spans.iter().position(|(f, t)| day >= *f && day <= *t) else {
                continue;
            };
            let p = &mut figures[i];
            p.turnover_minor += sales.turnover_minor;
            p.quantity += sales.quantity;
            p.points_issued += sales.campaigns.get(&campaign.id).copied().unwrap_or(0);
            members[i].extend(sales.members);
            others[i].extend(sales.others);
        }
    }
    for (i, p) in figures.iter_mut().enumerate() {
        p.member_buyers = members[i].len() as i64;
        p.non_member_buyers = others[i].len() as i64;
        p.points_cost_minor = p.points_issued.saturating_mul(programme.point_value_minor);
    }
    let four: [PeriodFigures; 4] = figures
        .try_into()
        .map_err(|_| StoreError::Build("four periods".into()))?;
    Ok(build(&campaign.id, programme.currency.code(), four))
}

fn money(minor: i64, currency: Currency) -> String {
    Money::new(minor, currency).amount_string()
}

fn pct(d: &Option<Decimal>) -> String {
    d.map_or("no baseline".into(), |d| format!("{d:+} %"))
}

/// The report for a person: the four periods, the baseline and the uplift, the ROI.
pub fn text(r: &CampaignReport, currency: Currency) -> String {
    let mut out = format!(
        "campaign {}: {} to {} against the 3 periods before it\n\n",
        r.campaign_id, r.periods[3].from, r.periods[3].to
    );
    out.push_str(&format!(
        "{:<10} {:<23} {:>14} {:>9} {:>8} {:>8} {:>9} {:>12}\n",
        "period", "days", "turnover", "quantity", "members", "others", "points", "points cost"
    ));
    for (i, p) in r.periods.iter().enumerate() {
        let name = if i == 3 {
            "campaign".to_string()
        } else {
            format!("before {}", 3 - i)
        };
        out.push_str(&format!(
            "{:<10} {:<23} {:>14} {:>9} {:>8} {:>8} {:>9} {:>12}\n",
            name,
            format!("{} .. {}", p.from, p.to),
            money(p.turnover_minor, currency),
            p.quantity,
            p.member_buyers,
            p.non_member_buyers,
            p.points_issued,
            money(p.points_cost_minor, currency),
        ));
    }
    let minor = |d: Decimal| {
        let unit = Decimal::from(10i64.pow(currency.exponent()));
        format!("{:.prec$}", d / unit, prec = currency.exponent() as usize)
    };
    out.push_str(&format!(
        "\nturnover  baseline {} {c}, campaign {} {c}: uplift {} {c} ({})\n",
        minor(r.turnover.baseline),
        minor(r.turnover.campaign),
        minor(r.turnover.absolute),
        pct(&r.turnover.percent),
        c = currency
    ));
    for (name, u) in [("quantity", &r.quantity), ("buyers  ", &r.buyers)] {
        out.push_str(&format!(
            "{name}  baseline {}, campaign {}: uplift {} ({})\n",
            u.baseline,
            u.campaign,
            u.absolute,
            pct(&u.percent)
        ));
    }
    out.push_str(&format!(
        "marketing ROI: {} (definitions: docs/reports.md)\n",
        r.roi_percent
            .map_or("n/a (the campaign issued no points)".into(), |d| format!(
                "{d} %"
            ))
    ));
    out
}

/// Bar colours: the three periods before in grey, the campaign period in blue.
pub const BEFORE_FILL: RGBColor = RGBColor(0x9e, 0x9e, 0x9e);
pub const CAMPAIGN_FILL: RGBColor = RGBColor(0x1f, 0x6f, 0xd1);
const WIDTH: u32 = 960;
/// The width the chart's title may take (a margin on each side).
const TITLE_ROOM: u32 = WIDTH - 40;

/// The title's font size so that it fits [`TITLE_ROOM`] (bold sans-serif glyphs average
/// under 0.62 em), 16 px down to 10; below that the text is squeezed to the room
/// (`textLength`), so a long campaign id never runs off the chart.
pub fn title_fit(chars: usize) -> (u32, bool) {
    let chars = chars.max(1) as f64;
    let fits = (f64::from(TITLE_ROOM) / (0.62 * chars)).floor();
    if fits >= 16.0 {
        (16, false)
    } else if fits >= 10.0 {
        (fits as u32, false)
    } else {
        (10, true)
    }
}
const HEIGHT: u32 = 420;
const TOP: i32 = 70;
const BOTTOM: i32 = 60;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart: three panels (turnover, quantity, buyers), each with the four periods side by
/// side, the campaign bar in colour, the baseline as a dashed line, values over the bars.
/// Bars and lines are drawn by `plotters`; the labels are SVG text added after (so no font
/// files are needed).
pub fn svg(r: &CampaignReport, currency: Currency) -> Result<String, String> {
    let panels: [(&str, [i64; 4], Decimal, String); 3] = [
        (
            "Turnover",
            [0, 1, 2, 3].map(|i| r.periods[i].turnover_minor),
            r.turnover.baseline,
            format!("{currency}"),
        ),
        (
            "Quantity",
            [0, 1, 2, 3].map(|i| r.periods[i].quantity),
            r.quantity.baseline,
            "units".into(),
        ),
        (
            "Buyers",
            [0, 1, 2, 3].map(|i| r.periods[i].buyers()),
            r.buyers.baseline,
            "customers".into(),
        ),
    ];
    let mut labels: Vec<(i32, i32, &str, String, u32)> = Vec::new(); // x, y, anchor, text, size
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panel_w = (WIDTH / 3) as i32;
        let plot_h = HEIGHT as i32 - TOP - BOTTOM;
        for (k, (title, values, baseline, unit)) in panels.iter().enumerate() {
            let x0 = k as i32 * panel_w;
            // The tallest bar fills 90 % of the plot height (integer pixels).
            let max = i128::from(values.iter().copied().max().unwrap_or(0).max(1));
            let scale = |v: i64| {
                let px = i128::from(v.max(0)) * i128::from(plot_h) * 9 / (max * 10);
                i32::try_from(px).unwrap_or(plot_h)
            };
            let bar_w = 44;
            let gap = (panel_w - 4 * bar_w) / 5;
            let ground = TOP + plot_h;
            for (i, v) in values.iter().enumerate() {
                let left = x0 + gap + i as i32 * (bar_w + gap);
                let h = scale(*v);
                let fill = if i == 3 { CAMPAIGN_FILL } else { BEFORE_FILL };
                root.draw(&Rectangle::new(
                    [(left, ground - h), (left + bar_w, ground)],
                    fill.filled(),
                ))
                .map_err(|e| e.to_string())?;
                let value = if *title == "Turnover" {
                    money(*v, currency)
                } else {
                    v.to_string()
                };
                labels.push((left + bar_w / 2, ground - h - 6, "middle", value, 12));
                let name = if i == 3 {
                    "campaign".to_string()
                } else {
                    format!("-{}", 3 - i)
                };
                labels.push((left + bar_w / 2, ground + 18, "middle", name, 12));
            }
            // The baseline (mean of the three periods before), dashed.
            let base = baseline.round().to_string().parse::<i64>().unwrap_or(0);
            let y = ground - scale(base);
            let mut x = x0 + gap / 2;
            while x < x0 + panel_w - gap / 2 {
                root.draw(&PathElement::new(
                    vec![(x, y), ((x + 8).min(x0 + panel_w - gap / 2), y)],
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
                x += 14;
            }
            root.draw(&PathElement::new(
                vec![(x0 + gap / 2, ground), (x0 + panel_w - gap / 2, ground)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
            let uplift = match (
                k,
                &r.turnover.percent,
                &r.quantity.percent,
                &r.buyers.percent,
            ) {
                (0, Some(p), _, _) | (1, _, Some(p), _) | (2, _, _, Some(p)) => {
                    format!("{p:+} % vs baseline")
                }
                _ => "no baseline".into(),
            };
            labels.push((
                x0 + panel_w / 2,
                TOP - 30,
                "middle",
                format!("{title} ({unit})"),
                15,
            ));
            labels.push((x0 + panel_w / 2, TOP - 12, "middle", uplift, 12));
        }
        root.present().map_err(|e| e.to_string())?;
    }
    let title = format!(
        "Campaign {}: {} to {} against the 3 periods before (grey); dashed: baseline",
        r.campaign_id, r.periods[3].from, r.periods[3].to
    );
    let (size, squeeze) = title_fit(title.chars().count());
    let mut text = format!(
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"{size}\" font-weight=\"bold\"{}>{}</text>\n",
        WIDTH / 2,
        if squeeze {
            format!(" textLength=\"{TITLE_ROOM}\" lengthAdjust=\"spacingAndGlyphs\"")
        } else {
            String::new()
        },
        escape(&title)
    );
    for (x, y, anchor, t, size) in labels {
        text.push_str(&format!(
            "<text x=\"{x}\" y=\"{y}\" text-anchor=\"{anchor}\" font-family=\"sans-serif\" font-size=\"{size}\">{}</text>\n",
            escape(&t)
        ));
    }
    let end = buf.rfind("</svg>").ok_or("plotters wrote no SVG")?;
    buf.insert_str(end, &text);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_always_fits_the_chart() {
        assert_eq!(title_fit(80), (16, false));
        for chars in [80usize, 100, 120, 148, 200, 250] {
            let (size, squeezed) = title_fit(chars);
            let width = 0.62 * f64::from(size) * chars as f64;
            assert!(
                squeezed || width <= f64::from(TITLE_ROOM),
                "{chars}: {size}"
            );
            assert!((10..=16).contains(&size));
        }
        // A 128-character campaign id: squeezed into the room.
        assert!(title_fit(90 + 128).1);
    }
}
