//! The one TLS set-up of the clients we build ourselves (responder, relay
//! forwarder, webhooks, signed AWS requests).

/// rustls on aws-lc with the system's roots, as the AWS SDK's client; with
/// no roots found every https request fails, and the log says why.
pub fn tls_builder() -> hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes> {
    let provider = || rustls::crypto::aws_lc_rs::default_provider();
    match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "no CA certificates found: https requests (AWS, ResponseURLs, webhooks) will fail");
            let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider()))
                .with_safe_default_protocol_versions()
                .expect("aws-lc supports the default TLS versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
        }
    }
}
