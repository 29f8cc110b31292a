//! The SDK configuration of a function, loaded once per process for every client.
//!
//! The HTTPS client trusts the Amazon Trust Services roots (Amazon Root CA 1-4 and the
//! Starfield roots that cross-sign them, certs/amazon-trust-services.pem), which every AWS
//! service endpoint the functions call chains to, instead of the system's whole store. Two
//! reasons: the cold start no longer reads and parses about 150 certificate files (measured:
//! docs/benchmarks.md, "Cold starts"), and a certificate from any other authority is refused.
//! `BONUS_TLS_NATIVE_ROOTS=1` goes back to the system store (a TLS-inspecting proxy, say).

use aws_config::{BehaviorVersion, SdkConfig};
use std::sync::OnceLock;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

const AMAZON_ROOTS: &str = include_str!("../certs/amazon-trust-services.pem");

/// The configuration every client of the function is made from (credentials, region and
/// endpoints from the environment, as `aws_config::load_from_env`).
pub async fn sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    // On Lambda the role's credentials and the region are in the environment: take them
    // from there, without building the whole provider chain (profiles, SSO, IMDS, ...).
    if std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok()
        && std::env::var("AWS_ACCESS_KEY_ID").is_ok()
    {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
        if let Ok(region) = std::env::var("AWS_REGION") {
            loader = loader.region(aws_config::Region::new(region));
        }
    }
    let loader = if native_roots_wanted() {
        loader
    } else {
        loader.http_client(SharedHttpClient::new(FirstUseHttpClient::default()))
    };
    loader.load().await
}

/// The HTTPS client, made when the first request needs a connection rather than in the cold
/// start: the TLS set-up (trust store, crypto provider) is work an invocation can do.
#[derive(Debug, Default)]
struct FirstUseHttpClient(OnceLock<SharedHttpClient>);

impl HttpClient for FirstUseHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0
            .get_or_init(amazon_roots_client)
            .http_connector(settings, components)
    }
}

fn native_roots_wanted() -> bool {
    std::env::var("BONUS_TLS_NATIVE_ROOTS").is_ok_and(|v| v == "1" || v == "true")
}

/// An HTTPS client (rustls with ring) whose trust store is the Amazon roots alone.
pub fn amazon_roots_client() -> SharedHttpClient {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS.as_bytes());
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap_or_default(),
        )
        .build_https()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundle_holds_the_amazon_trust_services_roots() {
        let pem = super::AMAZON_ROOTS;
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 7);
        for name in [
            "Amazon_Root_CA_1",
            "Amazon_Root_CA_4",
            "Starfield_Services_Root",
        ] {
            assert!(pem.contains(name), "{name}");
        }
    }
}
