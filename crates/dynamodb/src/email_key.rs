//! The key of the e-mail lookup hash ([`bonus_domain::pii::email_hash`]) and of unsubscribe
//! tokens. Known at once (locally, in tests, the CLI), or read on first need: deployed, it
//! lives in SSM, and a cold start must not wait for a read that an invocation can do (the
//! init phase is billed, and most invocations never need the key).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

type Loaded = Result<Option<Vec<u8>>, String>;
type Loader = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Loaded> + Send>> + Send + Sync>;

#[derive(Clone, Default)]
pub struct EmailKey {
    /// Set once: the key, or None for "no e-mail index".
    value: Arc<OnceLock<Option<Arc<[u8]>>>>,
    /// Reads the key when first needed; absent when the value was given.
    load: Option<Loader>,
}

impl std::fmt::Debug for EmailKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        let state = match (self.value.get(), &self.load) {
            (Some(Some(_)), _) => "set",
            (Some(None), _) => "none",
            (None, Some(_)) => "not read yet",
            (None, None) => "none",
        };
        write!(f, "EmailKey({state})")
    }
}

impl EmailKey {
    /// A key known now (None: no e-mail index).
    pub fn known(key: Option<Arc<[u8]>>) -> Self {
        let value = OnceLock::new();
        let _ = value.set(key);
        EmailKey {
            value: Arc::new(value),
            load: None,
        }
    }

    /// A key read by `load` at the first [`EmailKey::resolve`]. A failed read is logged and
    /// tried again at the next one; until then there is no e-mail index.
    pub fn lazy<F, Fut>(load: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Loaded> + Send + 'static,
    {
        EmailKey {
            value: Arc::new(OnceLock::new()),
            load: Some(Arc::new(move || Box::pin(load()))),
        }
    }

    /// Read the key if it is lazy and not read yet (the Lambda glue calls this before each
    /// invocation; after the first success it costs nothing).
    pub async fn resolve(&self) {
        if self.value.get().is_some() {
            return;
        }
        let Some(load) = &self.load else {
            let _ = self.value.set(None);
            return;
        };
        match load().await {
            // Shorter keys are refused: the hash would be guessable.
            Ok(key) => {
                let _ = self
                    .value
                    .set(key.filter(|k| k.len() >= 16).map(Into::into));
            }
            Err(e) => {
                tracing::error!(error = %e, "the e-mail hash key could not be read: no e-mail index for now");
            }
        }
    }

    /// The key, if known or read.
    pub fn get(&self) -> Option<Arc<[u8]>> {
        self.value.get().cloned().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_lazy_key_is_read_once_at_the_first_resolve_and_a_failed_read_is_tried_again() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = reads.clone();
        let key = EmailKey::lazy(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err("ssm unavailable".to_string())
                } else {
                    Ok(Some(b"0123456789abcdef".to_vec()))
                }
            }
        });
        assert_eq!(reads.load(Ordering::SeqCst), 0, "nothing read when made");
        assert_eq!(key.get(), None);
        key.resolve().await;
        assert_eq!((key.get(), reads.load(Ordering::SeqCst)), (None, 1));
        key.resolve().await;
        assert_eq!(key.get().as_deref(), Some(&b"0123456789abcdef"[..]));
        let clone = key.clone();
        clone.resolve().await;
        assert_eq!(reads.load(Ordering::SeqCst), 2, "read once it succeeded");
        assert_eq!(format!("{key:?}"), "EmailKey(set)");
    }

    #[tokio::test]
    async fn a_short_key_means_no_index() {
        let key = EmailKey::lazy(|| async { Ok(Some(b"short".to_vec())) });
        key.resolve().await;
        assert_eq!(key.get(), None);
        assert_eq!(EmailKey::known(None).get(), None);
    }
}
