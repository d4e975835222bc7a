//! One TLS stack for every connection the product makes: rustls on *ring*, for the SDK's clients,
//! the trigger's HTTP probe and SQL to the plan's instances.
//!
//! Why ring and not aws-lc-rs (the SDK's default): every function is one binary, and aws-lc's
//! static C library was the largest single part of it; with ring the Lambda zip fits the 5 MB
//! goal (docs/benchmarks.md, "Packages and cold starts"). Both speak TLS 1.2/1.3 with the suites AWS endpoints
//! offer; what ring lacks is the post-quantum hybrid key exchange (X25519MLKEM768), which AWS
//! endpoints accept but do not require.

use std::sync::Arc;

use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::crypto::CryptoProvider;

/// The cryptography behind every TLS session.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(ring())
}

fn ring() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The SDK's own HTTPS client (hyper, the SDK's connection pool and trust store) on ring.
pub fn sdk_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// Where every SDK configuration starts (credentials, region, retry and `AWS_ENDPOINT_URL` from the
/// environment, as `aws_config::defaults`), with the HTTPS client above: no other HTTP client is
/// compiled into the SDK.
pub fn sdk_config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(sdk_http_client())
}

/// A `reqwest` client builder whose TLS uses [`crypto_provider`]. reqwest has no provider of its
/// own here (`rustls-no-provider`): it takes the process default, installed by the first caller.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Err when a provider is already installed (an earlier call): that one serves.
    let _ = CryptoProvider::install_default(ring());
    reqwest::Client::builder()
}
