//! `bonus report campaign`: finding a campaign by id; the report itself is
//! [`bonus_services::report`]'s (the partner API draws the same one).

pub use bonus_services::report::{gather, svg, text};

use bonus_domain::campaign::Campaign;
use bonus_domain::programme::Programme;
use bonus_dynamodb::Store;

/// A campaign by id: at `partner` if given, else wherever it is (an id used by several
/// partners must be told apart with the partner).
pub async fn find_campaign(
    store: &Store,
    campaign_id: &str,
    partner: Option<&str>,
) -> anyhow::Result<(Programme, Campaign)> {
    let mut found = Vec::new();
    for programme_id in store.programme_ids().await? {
        for partner_id in store.partner_ids(&programme_id).await? {
            if partner.is_some_and(|p| p != partner_id) {
                continue;
            }
            if let Some(c) = store.get_campaign(&partner_id, campaign_id).await? {
                found.push((programme_id.clone(), c));
            }
        }
    }
    match found.len() {
        0 => anyhow::bail!("no campaign '{campaign_id}'"),
        1 => {
            let (programme_id, c) = found.remove(0);
            let p = store
                .get_programme(&programme_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no programme '{programme_id}'"))?;
            Ok((p, c))
        }
        _ => anyhow::bail!(
            "campaign '{campaign_id}' exists at {}: say which with --partner",
            found
                .iter()
                .map(|(_, c)| c.partner_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
