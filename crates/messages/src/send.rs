//! The SES (e-mail) and SNS (SMS) adapter: one send each, provider error codes classified,
//! throttling retried with jittered backoff.

use std::future::Future;
use std::sync::{Arc, LazyLock};

use bonus_domain::random::OsRandom;
use bonus_domain::retry::Retry;

use bonus_domain::notify::{Channel, Rendered};

/// Tries per send while the provider throttles, before the event goes back to the queue.
pub const SEND_ATTEMPTS: u32 = 4;

/// A client made at its first use, not in the cold start (the init phase is billed).
pub type FirstUse<T> = Arc<LazyLock<T, Box<dyn FnOnce() -> T + Send>>>;

/// A [`FirstUse`] client made by `make`; `first_use(move || client)` for one made already.
pub fn first_use<T>(make: impl FnOnce() -> T + Send + 'static) -> FirstUse<T> {
    Arc::new(LazyLock::new(Box::new(make)))
}

/// The providers and the sender identity.
pub struct Senders {
    pub ses: FirstUse<aws_sdk_sesv2::Client>,
    pub sns: FirstUse<aws_sdk_sns::Client>,
    /// The verified sender address (template parameter `SenderEmail`).
    pub from: String,
    /// Where members unsubscribe; `{member_id}` is replaced.
    pub unsubscribe_url: String,
    /// The SES configuration set that publishes bounces and complaints back to us.
    pub configuration_set: Option<String>,
}

impl Senders {
    /// The sender `from` (the required `SENDER_EMAIL`, read by the caller at cold start), and
    /// from the Lambda environment `UNSUBSCRIBE_URL` and `SES_CONFIGURATION_SET`.
    pub fn from_env(config: &aws_config::SdkConfig, from: String) -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let (ses_config, sns_config) = (config.clone(), config.clone());
        Senders {
            ses: first_use(move || aws_sdk_sesv2::Client::new(&ses_config)),
            sns: first_use(move || aws_sdk_sns::Client::new(&sns_config)),
            from,
            unsubscribe_url: var("UNSUBSCRIBE_URL").unwrap_or_default(),
            configuration_set: var("SES_CONFIGURATION_SET"),
        }
    }
}

/// How a send failed, by the provider's error code (never its message: it may quote the
/// address or number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Slow down and try again.
    Throttled(String),
    /// This address or number will never work.
    Permanent(String),
    /// Anything else (an outage, our configuration): the queue retries, then the DLQ.
    Failed(String),
}

impl SendError {
    pub fn code(&self) -> &str {
        match self {
            SendError::Throttled(c) | SendError::Permanent(c) | SendError::Failed(c) => c,
        }
    }
}

/// What a provider's error code means for a channel.
pub fn classify(channel: Channel, code: Option<&str>) -> SendError {
    let Some(code) = code else {
        return SendError::Failed("no_response".into());
    };
    let throttled = code.contains("Throttl")
        || code.contains("TooManyRequests")
        || code.contains("LimitExceeded");
    // SNS answers an invalid or unreachable number with InvalidParameter; the text is ours
    // and within limits, so the number is what it rejects. SES reports bad addresses later,
    // as bounces (see `feedback`).
    let permanent = channel == Channel::Sms
        && matches!(
            code,
            "InvalidParameter" | "InvalidParameterValue" | "InvalidParameterException"
        );
    if throttled {
        SendError::Throttled(code.into())
    } else if permanent {
        SendError::Permanent(code.into())
    } else {
        SendError::Failed(code.into())
    }
}

/// Run a send, retrying throttling with jittered exponential backoff (160 ms .. 1 s).
pub async fn with_backoff<T, F, Fut>(mut send: F) -> Result<T, SendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SendError>>,
{
    let mut retry = Retry::with_max(Arc::new(OsRandom), SEND_ATTEMPTS);
    let mut last = Err(SendError::Failed("not_sent".into()));
    while let Some(pause) = retry.next() {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        last = send().await;
        match &last {
            // Providers throttle per second: start the waits at 160 ms.
            Err(SendError::Throttled(_)) => retry.backoff_from(4),
            _ => return last,
        }
    }
    last
}

fn error_code<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(e: &E) -> Option<String> {
    e.code().map(str::to_string)
}

pub async fn send_email(
    s: &Senders,
    to: &str,
    r: &Rendered,
    unsubscribe: Option<&str>,
) -> Result<Option<String>, SendError> {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader};
    // One-click unsubscribe in the mail client (RFC 2369 and RFC 8058).
    let headers = unsubscribe
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(|u| {
            [
                ("List-Unsubscribe", format!("<{u}>")),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            ]
            .into_iter()
            .filter_map(|(n, v)| MessageHeader::builder().name(n).value(v).build().ok())
            .collect::<Vec<_>>()
        });
    let content = |text: &str| {
        Content::builder()
            .data(text)
            .charset("UTF-8")
            .build()
            .map_err(|_| SendError::Failed("build".into()))
    };
    let out = s
        .ses
        .send_email()
        .from_email_address(&s.from)
        .destination(Destination::builder().to_addresses(to).build())
        .set_configuration_set_name(s.configuration_set.clone())
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(content(&r.subject)?)
                        .body(
                            Body::builder()
                                .text(content(&r.text)?)
                                .html(content(&r.html)?)
                                .build(),
                        )
                        .set_headers(headers)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify(Channel::Email, error_code(&e).as_deref()))?;
    Ok(out.message_id)
}

pub async fn send_sms(s: &Senders, to: &str, text: &str) -> Result<Option<String>, SendError> {
    let out = s
        .sns
        .publish()
        .phone_number(to)
        .message(text)
        .send()
        .await
        .map_err(|e| classify(Channel::Sms, error_code(&e).as_deref()))?;
    Ok(out.message_id)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn provider_codes_mean_what_they_say() {
        let sms = |c| classify(Channel::Sms, Some(c));
        assert_eq!(sms("Throttled"), SendError::Throttled("Throttled".into()));
        assert_eq!(
            classify(Channel::Email, Some("TooManyRequestsException")),
            SendError::Throttled("TooManyRequestsException".into())
        );
        assert_eq!(
            sms("InvalidParameter"),
            SendError::Permanent("InvalidParameter".into())
        );
        // An e-mail the provider refuses is not the address's fault (bounces say that).
        assert_eq!(
            classify(Channel::Email, Some("MessageRejected")),
            SendError::Failed("MessageRejected".into())
        );
        assert_eq!(
            classify(Channel::Sms, None),
            SendError::Failed("no_response".into())
        );
    }

    #[tokio::test]
    async fn throttling_is_retried_then_given_back_and_other_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out = with_backoff(|| async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                Err(SendError::Throttled("Throttled".into()))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(out, Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let out: Result<(), _> = with_backoff(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(SendError::Throttled("Throttled".into()))
        })
        .await;
        assert_eq!(out, Err(SendError::Throttled("Throttled".into())));
        assert_eq!(calls.load(Ordering::SeqCst), SEND_ATTEMPTS);

        calls.store(0, Ordering::SeqCst);
        let out: Result<(), _> = with_backoff(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(SendError::Permanent("InvalidParameter".into()))
        })
        .await;
        assert_eq!(out, Err(SendError::Permanent("InvalidParameter".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
