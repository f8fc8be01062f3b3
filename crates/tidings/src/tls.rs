//! TLS for `rediss://` and `wss://`: rustls with the webpki root
//! certificates and the `ring` crypto provider.
//!
//! redis-rs builds its rustls configuration from the process-wide default
//! provider, and rustls will not pick one when none (or several) are enabled,
//! so [`ensure_crypto_provider`] installs `ring` once unless the application
//! installed a provider of its own first. Our own connections (the Redis
//! subscriber and the gateway client) use an explicit provider regardless.

use std::sync::{Arc, OnceLock};

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
