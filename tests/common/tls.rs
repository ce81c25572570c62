//! The TLS side of the test servers (rustls), for the test crates that
//! link rustls (tests/common/mod.rs is shared with crates that do not).

use std::path::Path;

/// A TLS server's configuration with the certificate and key `make_certs`
/// wrote into `dir` (hook.pem, hook.key), for the test servers that stand
/// in for a webhook or a relay.
pub fn tls_server_config(dir: &Path) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("hook.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("hook.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    std::sync::Arc::new(cfg)
}
