//! HTTPS for the exporter: this node's certificate and key, loaded with
//! rustls (the same TLS stack the webhooks use; no OpenSSL), and loaded
//! again when either file changes, so a renewed certificate (ACME renews
//! every 60 days) is served without a restart, and a broken renewal
//! keeps the last good one instead of taking the exporter down.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("exporter.tls_cert_file {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("exporter.tls_key_file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error(
        "exporter.tls_key_file {path} is mode {mode:04o}: group or others can read it (chmod 600)"
    )]
    KeyReadable { path: PathBuf, mode: u32 },
    #[error("exporter.tls_cert_file {cert} and tls_key_file {key} do not go together: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The server configuration built from two PEM files.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let cert_err = |reason: String| TlsError::Cert {
        path: cert.to_path_buf(),
        reason,
    };
    let key_err = |reason: String| TlsError::Key {
        path: key.to_path_buf(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE in it".into()));
    }
    let mode = std::fs::metadata(key)
        .map_err(|e| key_err(e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyReadable {
            path: key.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    // The PEM parser's errors name a section, never the key's bytes.
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| key_err(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(cfg))
}

/// The two files' identity as far as a change goes.
fn stamp(p: &Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The certificate in use, and where it came from.
pub struct Source {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<rustls::ServerConfig>,
    stamps: [Option<(SystemTime, u64, u64)>; 2],
}

impl Source {
    /// The first load: an error here stops the exporter (nothing good
    /// to serve yet).
    pub fn open(cert: &Path, key: &Path) -> Result<Source, TlsError> {
        let stamps = [stamp(cert), stamp(key)];
        Ok(Source {
            current: load(cert, key)?,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            stamps,
        })
    }

    /// The configuration for a new connection. The files are looked at
    /// (two stats, nothing next to a handshake's cost); when either
    /// changed they are loaded again. A load that fails (a renewal that
    /// has written the certificate but not yet its key, a broken file)
    /// keeps the last good configuration and says why once per change.
    pub fn config(&mut self) -> Arc<rustls::ServerConfig> {
        let stamps = [stamp(&self.cert), stamp(&self.key)];
        if stamps != self.stamps {
            self.stamps = stamps;
            match load(&self.cert, &self.key) {
                Ok(c) => {
                    eprintln!(
                        "mailha exporter: loaded the renewed certificate {}",
                        self.cert.display()
                    );
                    self.current = c;
                }
                Err(e) => eprintln!("mailha exporter: keeping the last good certificate: {e}"),
            }
        }
        self.current.clone()
    }
}
