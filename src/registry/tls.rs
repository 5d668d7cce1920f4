//! TLS for one registry host: the system's roots plus `certs.d` CAs, an
//! optional client certificate, or no verification at all when the user
//! asked for `--tls-verify=false` (or `registries.conf` says `insecure`).
//!
//! `certs.d` layout as containers/image reads it: in `--cert-dir DIR`, else
//! `/etc/containers/certs.d/HOST[:PORT]/` (and the per-user
//! `~/.config/containers/certs.d/`), `*.crt` files are extra CAs and a
//! `NAME.cert` + `NAME.key` pair is the client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::{RegistryError, Result};

/// System CA bundles, first found wins (Debian, Fedora, Alpine/SUSE).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The directories holding per-host certificates for `host`.
pub fn cert_dirs(host: &str, cert_dir: Option<&Path>) -> Vec<PathBuf> {
    if let Some(d) = cert_dir {
        return vec![d.to_path_buf()];
    }
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(
            PathBuf::from(home)
                .join(".config/containers/certs.d")
                .join(host),
        );
    }
    dirs.push(Path::new("/etc/containers/certs.d").join(host));
    dirs.push(Path::new("/etc/docker/certs.d").join(host));
    dirs
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `host`.
pub fn client_config(
    host: &str,
    verify: bool,
    cert_dir: Option<&Path>,
) -> Result<Arc<ClientConfig>> {
    let tls_err = |why: String| RegistryError::Tls {
        host: host.to_string(),
        why,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let mut client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> = None;
    if verify {
        let system = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file());
        match system {
            Some(bundle) => {
                let certs = CertificateDer::pem_file_iter(bundle)
                    .map_err(|e| tls_err(format!("reading {}: {e}", bundle.display())))?;
                let certs: Vec<_> = certs.filter_map(|c| c.ok()).collect();
                roots.add_parsable_certificates(certs);
            }
            None => roots.extend(webpki_roots_fallback()),
        }
    }
    for dir in cert_dirs(host, cert_dir) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for path in names {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") if verify => {
                    let certs = CertificateDer::pem_file_iter(&path)
                        .map_err(|e| tls_err(format!("reading CA {}: {e}", path.display())))?;
                    for cert in certs {
                        let cert = cert
                            .map_err(|e| tls_err(format!("reading CA {}: {e}", path.display())))?;
                        roots
                            .add(cert)
                            .map_err(|e| tls_err(format!("CA {}: {e}", path.display())))?;
                    }
                }
                Some("cert") => {
                    let key_path = path.with_extension("key");
                    let chain: Vec<_> = CertificateDer::pem_file_iter(&path)
                        .map_err(|e| tls_err(format!("reading {}: {e}", path.display())))?
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|e| tls_err(format!("reading {}: {e}", path.display())))?;
                    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
                        tls_err(format!(
                            "client certificate {} needs its key {}: {e}",
                            path.display(),
                            key_path.display()
                        ))
                    })?;
                    client = Some((chain, key));
                }
                _ => {}
            }
        }
    }
    let builder = if verify {
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    };
    let config = match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls_err(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn webpki_roots_fallback() -> Vec<rustls::pki_types::TrustAnchor<'static>> {
    // No system bundle: an empty store makes every TLS registry fail with an
    // unknown-issuer error, which names the problem well enough.
    log::warn!("no system CA bundle found in {SYSTEM_BUNDLES:?}; only certs.d CAs are trusted");
    Vec::new()
}

/// Accepts any server certificate: `--tls-verify=false` only.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
