//! What every handler needs: the store, a clock, and a short-lived cache of configuration
//! (partners, programmes, API keys), so that a warm Lambda answers a webhook with one read
//! round trip and one TransactWriteItems.

use bonus_dynamodb::EmailKey;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use bonus_domain::campaign::{BehaviourCampaign, Campaign};
use bonus_domain::clock::{Clock, SystemClock};
use bonus_domain::member::{api_key_well_formed, hash_api_key, ApiKeyRecord};
use bonus_domain::programme::{Partner, Programme};
use bonus_domain::random::Random;
use bonus_domain::retry::Retry;
use bonus_dynamodb::{MissingEnv, Store, StoreError};
use bonus_secrets::Sealer;

/// A partner with its programme.
#[derive(Debug, Clone)]
pub struct PartnerConfig {
    pub partner: Partner,
    pub programme: Programme,
    pub campaigns: Vec<Campaign>,
    pub behaviour: Vec<BehaviourCampaign>,
}

/// An API key with the partner and programme it belongs to.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub key: ApiKeyRecord,
    pub partner: Partner,
    pub programme: Programme,
}

impl KeyConfig {
    /// How the key's partner stands to a member (bonus_domain::access).
    pub fn relation_to(
        &self,
        account: &bonus_domain::account::Account,
    ) -> bonus_domain::access::Relation {
        bonus_domain::access::relation(
            &self.partner.id,
            &self.programme.id,
            self.programme.kind,
            &account.programme_id,
            &account.enrolled_with,
        )
    }

    /// The one access policy's answer for this key doing `action` to a member as read (None:
    /// no such member): the account and the grant; a 403 for a missing scope; the same 404
    /// for a member that does not exist and one the key may not touch. Every route that
    /// names a member (member API, partner API) asks it here.
    pub fn admit(
        &self,
        account: Option<bonus_domain::account::Account>,
        action: bonus_domain::access::Action,
    ) -> Result<
        (bonus_domain::account::Account, bonus_domain::access::Grant),
        bonus_domain::error::Error,
    > {
        use bonus_domain::access::{decide, Decision};
        let relation = account.as_ref().map(|a| self.relation_to(a));
        match (decide(&self.key.scopes, relation, action), account) {
            (Decision::Allow(grant), Some(account)) => Ok((account, grant)),
            (Decision::MissingScope(scope), _) => Err(missing_scope(scope)),
            _ => Err(member_not_found()),
        }
    }
}

/// 403: the key lacks this scope (asked before any member is read).
pub fn missing_scope(scope: bonus_domain::member::Scope) -> bonus_domain::error::Error {
    let name = serde_json::to_value(scope)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    bonus_domain::error::Error::forbidden(
        "missing_scope",
        format!("this API key lacks the {name} scope"),
    )
}

/// 404, byte for byte the same for a member that does not exist and one the caller may not
/// touch.
pub fn member_not_found() -> bonus_domain::error::Error {
    bonus_domain::error::Error::not_found("member_not_found", "no such member in this programme")
}

/// A tiny time-bounded cache. Misses are cached too, so unknown ids cannot hammer the table.
/// Cached value (or cached miss) with the time it was loaded.
type Entries<V> = HashMap<String, (Instant, Option<Arc<V>>)>;

struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<Entries<V>>,
}

impl<V> TtlCache<V> {
    fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    async fn get_or_load<F, Fut>(&self, key: &str, load: F) -> Result<Option<Arc<V>>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, StoreError>>,
    {
        if let Some((at, value)) = self.lock().get(key) {
            if at.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        let value = load().await?.map(Arc::new);
        let mut entries = self.lock();
        if entries.len() > 10_000 {
            // Only real keys and partners get here (made-up ones are refused before), so
            // this is a large configuration: drop what has expired, and only then the rest.
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() > 10_000 {
                entries.clear();
            }
        }
        entries.insert(key.to_string(), (Instant::now(), value.clone()));
        Ok(value)
    }

    fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Drop every cached value `stale` says is out of date.
    fn forget_where(&self, stale: impl Fn(&V) -> bool) {
        self.lock()
            .retain(|_, (_, v)| !v.as_deref().is_some_and(&stale));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Ctx {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Ids, codes and retry jitter (the store shares it).
    pub random: Arc<dyn Random>,
    partners: TtlCache<PartnerConfig>,
    api_keys: TtlCache<KeyConfig>,
    /// Every partner id, read once per cache period: an unknown id is refused without a
    /// read of its own.
    partner_ids: TtlCache<std::collections::BTreeSet<String>>,
    /// Opens partners' sealed signing secrets (KMS on AWS): only where webhooks are verified.
    pub sealer: Sealer,
    /// Partners with their secrets opened, by id (for the cache period).
    opened: TtlCache<Partner>,
    /// Where deliveries over their partner's limit are queued (the order webhook); None:
    /// they are booked at once.
    pub deferral: Option<Deferral>,
    /// Where partners' outgoing webhooks are queued (the notifications consumer); None: none
    /// are sent.
    pub partner_webhooks: Option<Deferral>,
    /// Bookings into one account take turns in this process (crate::lanes).
    pub lanes: Arc<crate::lanes::AccountLanes>,
}

/// A queue this process may send to (the deferred webhooks, partners' outgoing webhooks).
/// Its SQS client is made at first use: most processes never send one, and the cold start
/// should not pay for it.
#[derive(Clone, Debug)]
pub struct Deferral {
    sqs: Arc<std::sync::OnceLock<aws_sdk_sqs::Client>>,
    config: Option<aws_config::SdkConfig>,
    pub url: String,
}

impl Deferral {
    /// With a client made already (tests, the local server).
    pub fn new(sqs: aws_sdk_sqs::Client, url: String) -> Self {
        Deferral {
            sqs: Arc::new(std::sync::OnceLock::from(sqs)),
            config: None,
            url,
        }
    }

    /// With a client made from `config` at first use.
    pub fn from_config(config: &aws_config::SdkConfig, url: String) -> Self {
        Deferral {
            sqs: Arc::default(),
            config: Some(config.clone()),
            url,
        }
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs.get_or_init(|| {
            let config = self.config.clone().unwrap_or_else(|| {
                aws_config::SdkConfig::builder()
                    .behavior_version(aws_config::BehaviorVersion::latest())
                    .build()
            });
            aws_sdk_sqs::Client::new(&config)
        })
    }
}

impl Ctx {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config_ttl: Duration) -> Self {
        Ctx {
            random: store.random.clone(),
            store,
            clock,
            partners: TtlCache::new(config_ttl),
            api_keys: TtlCache::new(config_ttl),
            partner_ids: TtlCache::new(config_ttl),
            sealer: Sealer::local_default(),
            opened: TtlCache::new(config_ttl),
            deferral: None,
            partner_webhooks: None,
            lanes: Arc::default(),
        }
    }

    /// For a Lambda: table from `TABLE_NAME`, cache lifetime from `CONFIG_CACHE_SECONDS`
    /// (default 60), wall clock.
    pub async fn from_env() -> Result<Self, MissingEnv> {
        Self::from_config(&crate::aws::sdk_config().await)
    }

    /// As [`Ctx::from_env`], with the process's SDK configuration, loaded once for every
    /// client. Nothing is read over the network here: the cold start (billed) stays short.
    pub fn from_config(config: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        let ttl = std::env::var("CONFIG_CACHE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        let mut store = Store::from_config(config)?;
        // Deployed: the e-mail hash key from SSM, read by the first invocation that needs
        // it (or from the environment); without one there is no e-mail index (never the
        // public local key on real data).
        store.email_key = match bonus_secrets::email_hash_key_source() {
            bonus_secrets::EmailHashKeySource::Parameter(name) => {
                let ssm = aws_sdk_ssm::Client::new(config);
                EmailKey::lazy(move || {
                    let (ssm, name) = (ssm.clone(), name.clone());
                    async move {
                        bonus_secrets::read_email_hash_key(&ssm, &name)
                            .await
                            .map_err(|e| e.to_string())
                    }
                })
            }
            bonus_secrets::EmailHashKeySource::Given(key) => EmailKey::known(key.map(Into::into)),
        };
        let sealer = Sealer::from_config(config).map_err(|e| {
            tracing::error!(error = %e, "the secrets key is not usable");
            MissingEnv("BONUS_SECRETS_KEY".into())
        })?;
        let mut ctx = Ctx::new(store, Arc::new(SystemClock), Duration::from_secs(ttl));
        ctx.sealer = sealer;
        if let Some(url) = std::env::var("DEFERRED_WEBHOOKS_QUEUE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            ctx.deferral = Some(Deferral::from_config(config, url));
        }
        if let Some(url) = std::env::var("PARTNER_WEBHOOKS_QUEUE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            ctx.partner_webhooks = Some(Deferral::from_config(config, url));
        }
        Ok(ctx)
    }

    /// The same context with ids, codes and jitter from `random` (a seeded one in tests).
    pub fn with_random(mut self, random: Arc<dyn Random>) -> Self {
        self.store.random = random.clone();
        self.random = random;
        self
    }

    /// The tries of one optimistic cycle.
    pub fn retry(&self) -> Retry {
        Retry::new(self.random.clone())
    }

    /// The retries of a booking (order, refund, behaviour event): long for lost races.
    pub fn booking_retry(&self) -> Retry {
        Retry::booking(self.random.clone())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn partner(
        &self,
        partner_id: &str,
    ) -> Result<Option<Arc<PartnerConfig>>, StoreError> {
        let known = self
            .partner_ids
            .get_or_load("all", || async {
                self.store.all_partner_ids().await.map(Some)
            })
            .await?;
        if !known.is_some_and(|ids| ids.contains(partner_id)) {
            return Ok(None);
        }
        self.partners
            .get_or_load(partner_id, || async {
                let Some(items) = self.store.partner_with_campaigns(partner_id).await? else {
                    return Ok(None);
                };
                let Some(partner) = items.partner else {
                    return Ok(None);
                };
                let Some(programme) = self.store.get_programme(&partner.programme_id).await? else {
                    return Ok(None);
                };
                Ok(Some(PartnerConfig {
                    partner,
                    programme,
                    campaigns: items.campaigns,
                    behaviour: items.behaviour,
                }))
            })
            .await
    }

    /// Drop a partner's cached configuration after it changed it (partner API): this
    /// process sees the change at once, others when their cache period ends.
    pub fn forget_partner(&self, partner_id: &str) {
        self.partners.forget(partner_id);
        self.opened.forget(partner_id);
        self.api_keys.forget_where(|k| k.partner.id == partner_id);
    }

    /// The partner with its signing secrets opened, for verifying a webhook (cached for
    /// the cache period; one KMS Decrypt per secret when it loads).
    pub async fn partner_with_secrets(
        &self,
        partner_id: &str,
    ) -> Result<Option<Arc<Partner>>, StoreError> {
        let Some(cfg) = self.partner(partner_id).await? else {
            return Ok(None);
        };
        self.opened
            .get_or_load(partner_id, || async {
                bonus_secrets::open_partner(&self.sealer, &cfg.partner)
                    .await
                    .map(Some)
                    .map_err(|e| StoreError::Mapping(format!("partner secrets: {e}")))
            })
            .await
    }

    /// A token that is not a well-formed key (its checksum fails) is refused without a read.
    pub async fn api_key(&self, token: &str) -> Result<Option<Arc<KeyConfig>>, StoreError> {
        if !api_key_well_formed(token) {
            return Ok(None);
        }
        let hash = hash_api_key(token);
        self.api_keys
            .get_or_load(&hash, || async {
                let Some(key) = self.store.get_api_key(&hash).await? else {
                    return Ok(None);
                };
                if key.revoked {
                    return Ok(None);
                }
                let Some(cfg) = self.partner(&key.partner_id).await? else {
                    return Ok(None);
                };
                Ok(Some(KeyConfig {
                    key,
                    partner: cfg.partner.clone(),
                    programme: cfg.programme.clone(),
                }))
            })
            .await
    }
}

/// One line of a partner's bulk import (`POST /v1/partner/imports`), queued on the
/// deferred-webhooks queue and booked there as `bonus import orders` books it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportLine {
    pub partner_id: String,
    pub import_id: String,
    /// From 1.
    pub line: usize,
}
