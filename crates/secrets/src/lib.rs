//! Secrets at rest.
//!
//! - **Partner secrets** (Standard Webhooks, Shopify and WooCommerce signing secrets) are
//!   stored sealed: `sealed:kms:<base64>` (AWS KMS, the key in template.yaml) or
//!   `sealed:aes:<base64>` (AES-256-GCM with a key from the environment: `make run` and the
//!   tests). Only the functions that verify webhooks may open them (on AWS: `kms:Decrypt` on
//!   that key alone); a partner item read by anything else shows no secret.
//! - **The e-mail hash key** comes from SSM Parameter Store (a SecureString), read once per
//!   process, by the functions that need it.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

const KMS_PREFIX: &str = "sealed:kms:";
const AES_PREFIX: &str = "sealed:aes:";
/// Binds a KMS ciphertext to its use: it opens only with the same context.
const KMS_CONTEXT: (&str, &str) = ("purpose", "bonus-partner-secret");

/// The key `make run` and the tests seal with when `BONUS_SECRETS_KEY` is not set. Public,
/// like the local e-mail hash key: local data is not secret; deployed functions use KMS.
pub const LOCAL_SECRETS_KEY: [u8; 32] = *b"bonus-local-partner-secrets-key!";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("kms: {0}")]
    Kms(String),
    #[error("ssm: {0}")]
    Ssm(String),
    #[error("a sealed secret does not open with this key: {0}")]
    Open(&'static str),
    #[error("BONUS_SECRETS_KEY must be 32 bytes in base64")]
    BadKey,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Seals and opens partner secrets.
#[derive(Clone, Debug)]
pub enum Sealer {
    /// AES-256-GCM with a key from the environment (local runs and tests).
    Local([u8; 32]),
    /// AWS KMS: `Encrypt` and `Decrypt` with one symmetric key.
    Kms {
        client: aws_sdk_kms::Client,
        key_id: String,
    },
}

impl Sealer {
    /// The local key of `make run` and the tests.
    pub fn local_default() -> Self {
        Sealer::Local(LOCAL_SECRETS_KEY)
    }

    /// From the environment: `SECRETS_KMS_KEY_ID` (set by template.yaml) selects KMS;
    /// otherwise `BONUS_SECRETS_KEY` (32 bytes, base64); otherwise the local default key.
    pub async fn from_env() -> Result<Self, SecretsError> {
        Self::from_config(&aws_config::load_from_env().await)
    }

    /// As [`Sealer::from_env`], with the process's SDK configuration (loaded once).
    pub fn from_config(config: &aws_config::SdkConfig) -> Result<Self, SecretsError> {
        if let Some(key_id) = std::env::var("SECRETS_KMS_KEY_ID")
            .ok()
            .filter(|k| !k.trim().is_empty())
        {
            return Ok(Sealer::Kms {
                client: aws_sdk_kms::Client::new(config),
                key_id,
            });
        }
        match std::env::var("BONUS_SECRETS_KEY") {
            Ok(k) if !k.trim().is_empty() => {
                let bytes = b64().decode(k.trim()).map_err(|_| SecretsError::BadKey)?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| SecretsError::BadKey)?;
                Ok(Sealer::Local(key))
            }
            _ => Ok(Sealer::local_default()),
        }
    }

    /// Is this string a sealed secret (of either kind)?
    pub fn is_sealed(text: &str) -> bool {
        text.starts_with(KMS_PREFIX) || text.starts_with(AES_PREFIX)
    }

    pub async fn seal(&self, plain: &str) -> Result<String, SecretsError> {
        match self {
            Sealer::Local(key) => {
                let cipher = Aes256Gcm::new(key.into());
                let nonce_bytes: [u8; 12] = rand::random();
                let sealed = cipher
                    .encrypt(Nonce::from_slice(&nonce_bytes), plain.as_bytes())
                    .map_err(|_| SecretsError::Open("encryption failed"))?;
                let mut out = nonce_bytes.to_vec();
                out.extend(sealed);
                Ok(format!("{AES_PREFIX}{}", b64().encode(out)))
            }
            Sealer::Kms { client, key_id } => {
                let out = client
                    .encrypt()
                    .key_id(key_id)
                    .plaintext(aws_sdk_kms::primitives::Blob::new(plain.as_bytes()))
                    .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
                    .send()
                    .await
                    .map_err(|e| {
                        SecretsError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
                    })?;
                let blob = out
                    .ciphertext_blob
                    .ok_or(SecretsError::Open("kms returned no ciphertext"))?;
                Ok(format!("{KMS_PREFIX}{}", b64().encode(blob.as_ref())))
            }
        }
    }

    /// Open a sealed secret. A string that is not sealed (written before secrets were
    /// sealed, and not yet migrated) is returned as it is.
    pub async fn open(&self, sealed: &str) -> Result<String, SecretsError> {
        if let Some(rest) = sealed.strip_prefix(AES_PREFIX) {
            let Sealer::Local(key) = self else {
                return Err(SecretsError::Open("sealed with a local key; this is KMS"));
            };
            let bytes = b64()
                .decode(rest)
                .map_err(|_| SecretsError::Open("not base64"))?;
            if bytes.len() < 12 {
                return Err(SecretsError::Open("too short"));
            }
            let (nonce, body) = bytes.split_at(12);
            let plain = Aes256Gcm::new(key.into())
                .decrypt(Nonce::from_slice(nonce), body)
                .map_err(|_| SecretsError::Open("wrong key or tampered"))?;
            return String::from_utf8(plain).map_err(|_| SecretsError::Open("not text"));
        }
        if let Some(rest) = sealed.strip_prefix(KMS_PREFIX) {
            let Sealer::Kms { client, .. } = self else {
                return Err(SecretsError::Open("sealed with KMS; this is a local key"));
            };
            let blob = b64()
                .decode(rest)
                .map_err(|_| SecretsError::Open("not base64"))?;
            let out = client
                .decrypt()
                .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
                .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
                .send()
                .await
                .map_err(|e| {
                    SecretsError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string())
                })?;
            let plain = out
                .plaintext
                .ok_or(SecretsError::Open("kms returned nothing"))?;
            return String::from_utf8(plain.into_inner())
                .map_err(|_| SecretsError::Open("not text"));
        }
        tracing::warn!("a partner secret is stored unsealed; run `bonus migrate`");
        Ok(sealed.to_string())
    }

    /// Seal each of `plain`.
    pub async fn seal_all(&self, plain: &[String]) -> Result<Vec<String>, SecretsError> {
        let mut out = Vec::with_capacity(plain.len());
        for p in plain {
            out.push(if Self::is_sealed(p) {
                p.clone()
            } else {
                self.seal(p).await?
            });
        }
        Ok(out)
    }

    /// Open each of `sealed`.
    pub async fn open_all(&self, sealed: &[String]) -> Result<Vec<String>, SecretsError> {
        let mut out = Vec::with_capacity(sealed.len());
        for s in sealed {
            out.push(self.open(s).await?);
        }
        Ok(out)
    }
}

/// A partner with every signing secret sealed (what is stored).
pub async fn seal_partner(
    sealer: &Sealer,
    partner: &bonus_domain::programme::Partner,
) -> Result<bonus_domain::programme::Partner, SecretsError> {
    each_secret_list(sealer, partner, Direction::Seal).await
}

/// A stored partner with its signing secrets opened (only where webhooks are verified).
pub async fn open_partner(
    sealer: &Sealer,
    partner: &bonus_domain::programme::Partner,
) -> Result<bonus_domain::programme::Partner, SecretsError> {
    each_secret_list(sealer, partner, Direction::Open).await
}

#[derive(Clone, Copy)]
enum Direction {
    Seal,
    Open,
}

/// The partner with each of its lists of signing secrets sealed or opened.
async fn each_secret_list(
    sealer: &Sealer,
    partner: &bonus_domain::programme::Partner,
    direction: Direction,
) -> Result<bonus_domain::programme::Partner, SecretsError> {
    let apply = |list: Vec<String>| async move {
        match direction {
            Direction::Seal => sealer.seal_all(&list).await,
            Direction::Open => sealer.open_all(&list).await,
        }
    };
    let mut p = partner.clone();
    p.webhook_secrets = apply(std::mem::take(&mut p.webhook_secrets)).await?;
    for link in [p.shopify.as_mut(), p.woocommerce.as_mut()]
        .into_iter()
        .flatten()
    {
        link.secrets = apply(std::mem::take(&mut link.secrets)).await?;
    }
    Ok(p)
}

/// Does the stored partner still have a secret in plain text (written before secrets were
/// sealed)?
pub fn has_unsealed(partner: &bonus_domain::programme::Partner) -> bool {
    let links = [partner.shopify.as_ref(), partner.woocommerce.as_ref()];
    partner
        .webhook_secrets
        .iter()
        .chain(links.into_iter().flatten().flat_map(|l| l.secrets.iter()))
        .any(|s| !Sealer::is_sealed(s))
}

/// The e-mail hash key: the SSM parameter named by `EMAIL_HASH_KEY_PARAMETER` (a
/// SecureString, read with decryption; set by template.yaml for the functions that match or
/// index e-mail addresses), else `EMAIL_HASH_KEY`. None: no e-mail index. Called once, at
/// the start of a process that needs it.
pub async fn email_hash_key_from_env() -> Result<Option<Vec<u8>>, SecretsError> {
    match email_hash_key_source() {
        EmailHashKeySource::Parameter(name) => {
            let config = aws_config::load_from_env().await;
            read_email_hash_key(&aws_sdk_ssm::Client::new(&config), &name).await
        }
        EmailHashKeySource::Given(key) => Ok(key),
    }
}

/// Where the e-mail hash key comes from, decided from the environment without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailHashKeySource {
    /// The SSM parameter named by `EMAIL_HASH_KEY_PARAMETER` (read when first needed).
    Parameter(String),
    /// `EMAIL_HASH_KEY`, or None: no e-mail index.
    Given(Option<Vec<u8>>),
}

pub fn email_hash_key_source() -> EmailHashKeySource {
    match std::env::var("EMAIL_HASH_KEY_PARAMETER")
        .ok()
        .filter(|p| !p.trim().is_empty())
    {
        Some(name) => EmailHashKeySource::Parameter(name),
        None => EmailHashKeySource::Given(usable_key(std::env::var("EMAIL_HASH_KEY").ok())),
    }
}

/// The e-mail hash key in the SSM SecureString parameter `name`.
pub async fn read_email_hash_key(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<Option<Vec<u8>>, SecretsError> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| SecretsError::Ssm(aws_sdk_ssm::error::DisplayErrorContext(e).to_string()))?;
    Ok(usable_key(out.parameter.and_then(|p| p.value)))
}

/// Keys under 16 characters are refused: the hash of an address would be guessable.
fn usable_key(key: Option<String>) -> Option<Vec<u8>> {
    key.filter(|k| k.len() >= 16).map(String::into_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sealed_secret_opens_with_its_key_only_and_never_shows_the_plain_text() {
        let sealer = Sealer::local_default();
        let plain = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";
        let sealed = sealer.seal(plain).await.unwrap();
        assert!(
            Sealer::is_sealed(&sealed) && !sealed.contains(plain),
            "{sealed}"
        );
        assert_ne!(
            sealer.seal(plain).await.unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(&sealed).await.unwrap(), plain);
        let other = Sealer::Local([7; 32]);
        assert!(other.open(&sealed).await.is_err());
        // One bit changed: refused.
        let mut tampered = sealed.clone().into_bytes();
        let i = tampered.len() - 3;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(sealer
            .open(&String::from_utf8(tampered).unwrap())
            .await
            .is_err());
        // Not sealed (written before): as it is.
        assert_eq!(sealer.open(plain).await.unwrap(), plain);
        assert_eq!(
            sealer
                .seal_all(std::slice::from_ref(&sealed))
                .await
                .unwrap(),
            vec![sealed],
            "sealing twice changes nothing"
        );
    }
}
