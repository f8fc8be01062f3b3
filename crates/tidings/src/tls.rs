//! TLS for `rediss://` and `wss://`: rustls with the webpki root
//! certificates and the `ring` crypto provider.
//!
//! redis-rs builds its rustls configuration from the process-wide default
//! provider, and rustls will not pick one when none (or several) are enabled,
//! so [`ensure_crypto_provider`] installs `ring` once unless the application
//! installed a provider of its own first. Our own connections (the Redis
//! subscriber and the gateway client) use an explicit provider regardless.
//!
//! [`insecure_client_config`] skips certificate checks, for a
//! `rediss://…#insecure` URL: only ever used when the operator said so
//! explicitly (the gateway's and the CLI's `--insecure-tls`); the desktop
//! app and everything else refuse such a URL.

use std::sync::{Arc, OnceLock};

/// Whether `url` asks for TLS without certificate checks
/// (`rediss://…#insecure`), which callers refuse unless the operator said
/// `--insecure-tls`.
pub fn asks_for_insecure_tls(url: &str) -> bool {
    redis::Client::open(url).is_ok_and(|client| {
        matches!(
            client.get_connection_info().addr(),
            redis::ConnectionAddr::TcpTls { insecure: true, .. }
        )
    })
}

/// Installs `ring` as the process default provider if there is none yet.
pub(crate) fn ensure_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another installer is fine: some provider is
            // then installed, which is all we need.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// A client configuration trusting the webpki (Mozilla) roots.
pub(crate) fn client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration that accepts any server certificate (signatures
/// are still checked, so the handshake is real): TLS against eavesdroppers
/// only, never against an active attacker. For `#insecure` with
/// `--insecure-tls` only.
pub(crate) fn insecure_client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts every certificate; checks handshake signatures with the provider.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
