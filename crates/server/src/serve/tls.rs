//! `tls_server_config` turned into a rustls server configuration: certificates inline or from
//! files, the five client authentication policies of Go's `tls.ClientAuthType`, versions,
//! cipher suites and curves by their Go names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tracing::warn;

use super::web_config::TlsServerConfig;

/// The rustls configuration for `t`, or `None` when it names no certificate (exporter-toolkit
/// then serves plain HTTP too). Files are taken relative to `dir` and added to `files`.
pub fn server_config(
    t: &TlsServerConfig,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let resolve = |p: &PathBuf| -> PathBuf {
        if p.is_absolute() {
            p.clone()
        } else {
            dir.join(p)
        }
    };
    let has_cert = t.cert.is_some() || t.cert_file.is_some();
    let has_key = t.key.is_some() || t.key_file.is_some();
    match (has_cert, has_key) {
        (false, false) => return Ok(None),
        (true, false) => return Err("tls_server_config: missing key_file or key".into()),
        (false, true) => return Err("tls_server_config: missing cert_file or cert".into()),
        _ => {}
    }
    if t.cert.is_some() && t.cert_file.is_some() {
        return Err("tls_server_config: cert and cert_file are mutually exclusive".into());
    }
    if t.key.is_some() && t.key_file.is_some() {
        return Err("tls_server_config: key and key_file are mutually exclusive".into());
    }
    let certs = pem_source(t.cert.as_deref(), t.cert_file.as_ref().map(resolve), files)
        .map_err(|e| format!("tls_server_config.cert_file: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&certs)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_server_config.cert_file: not PEM certificates ({e})"))?;
    if certs.is_empty() {
        return Err("tls_server_config.cert_file: no certificate in it".into());
    }
    let key = pem_source(t.key.as_deref(), t.key_file.as_ref().map(resolve), files)
        .map_err(|e| format!("tls_server_config.key_file: {e}"))?;
    // The key's own error text could quote key material; say only what is wrong.
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|_| "tls_server_config.key_file: no PEM private key in it".to_string())?;

    let provider = Arc::new(provider(t)?);
    let versions = versions(t)?;
    let verifier = client_verifier(t, &resolve, files, &provider)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: certificate and key do not go together ({e})"))?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// PEM text given inline or read from a file (remembered for change detection).
fn pem_source(
    inline: Option<&str>,
    file: Option<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<Vec<u8>, String> {
    match (inline, file) {
        (Some(s), _) => Ok(s.as_bytes().to_vec()),
        (None, Some(p)) => {
            files.push(p.clone());
            std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// The ring provider with the cipher suites and curves the config names.
fn provider(t: &TlsServerConfig) -> Result<CryptoProvider, String> {
    let mut p = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        let mut skipped = Vec::new();
        let wanted: Vec<String> = t
            .cipher_suites
            .iter()
            .map(|s| s.trim_end_matches("_SHA256").to_string())
            .collect();
        for name in &t.cipher_suites {
            let base = name.trim_end_matches("_SHA256");
            if !p.cipher_suites.iter().any(|s| {
                format!("{:?}", s.suite())
                    .trim_end_matches("_SHA256")
                    .eq(base)
            }) {
                skipped.push(name.clone());
            }
        }
        // Go's list covers TLS 1.2 only; TLS 1.3 suites are always offered, as in Go.
        p.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13
                || wanted
                    .iter()
                    .any(|w| format!("{:?}", s.suite()).trim_end_matches("_SHA256") == w)
        });
        if !skipped.is_empty() {
            warn!(suites = ?skipped, "tls_server_config.cipher_suites: not offered by medic (only AEAD suites are); ignored");
        }
        if skipped.len() == t.cipher_suites.len() {
            return Err(format!(
                "tls_server_config.cipher_suites: none of {:?} is offered by medic; use ECDHE suites with AES-GCM or CHACHA20-POLY1305",
                t.cipher_suites
            ));
        }
    }
    if !t.curve_preferences.is_empty() {
        let mut groups = Vec::new();
        for c in &t.curve_preferences {
            let named = match c.as_str() {
                "X25519" => rustls::NamedGroup::X25519,
                "CurveP256" => rustls::NamedGroup::secp256r1,
                "CurveP384" => rustls::NamedGroup::secp384r1,
                "CurveP521" => {
                    warn!("tls_server_config.curve_preferences: CurveP521 is not offered by medic; ignored");
                    continue;
                }
                other => {
                    return Err(format!(
                        "tls_server_config.curve_preferences: unknown curve {other:?} (X25519, CurveP256, CurveP384, CurveP521)"
                    ))
                }
            };
            if let Some(g) = p.kx_groups.iter().find(|g| g.name() == named) {
                groups.push(*g);
            }
        }
        if groups.is_empty() {
            return Err("tls_server_config.curve_preferences: no curve medic offers".into());
        }
        p.kx_groups = groups;
    }
    Ok(p)
}

fn version_rank(field: &str, v: &str) -> Result<u8, String> {
    match v {
        "TLS10" => Ok(10),
        "TLS11" => Ok(11),
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        other => Err(format!(
            "tls_server_config.{field}: unknown TLS version {other:?} (TLS10, TLS11, TLS12, TLS13)"
        )),
    }
}

fn versions(t: &TlsServerConfig) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let min = version_rank("min_version", t.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = version_rank("max_version", t.max_version.as_deref().unwrap_or("TLS13"))?;
    if min > max {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    if min < 12 {
        warn!("tls_server_config.min_version: TLS 1.0 and 1.1 are not offered by medic; serving TLS 1.2 and up");
    }
    let mut v = Vec::new();
    if min <= 12 && max >= 12 {
        v.push(&rustls::version::TLS12);
    }
    if max >= 13 {
        v.push(&rustls::version::TLS13);
    }
    if v.is_empty() {
        return Err("tls_server_config.max_version: medic offers TLS 1.2 and 1.3 only".into());
    }
    Ok(v)
}

fn client_verifier(
    t: &TlsServerConfig,
    resolve: &dyn Fn(&PathBuf) -> PathBuf,
    files: &mut Vec<PathBuf>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let kind = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let has_ca = t.client_ca.is_some() || t.client_ca_file.is_some();
    let mut roots = || -> Result<Arc<RootCertStore>, String> {
        if !has_ca {
            return Err(format!(
                "tls_server_config.client_ca_file: required by client_auth_type {kind}"
            ));
        }
        let pem = pem_source(
            t.client_ca.as_deref(),
            t.client_ca_file.as_ref().map(resolve),
            files,
        )
        .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
        let mut store = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
            store
                .add(c)
                .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
        }
        if store.is_empty() {
            return Err("tls_server_config.client_ca_file: no certificate in it".into());
        }
        Ok(Arc::new(store))
    };
    let any = |mandatory| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let mut verified = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, String> {
        let b = WebPkiClientVerifier::builder_with_provider(roots()?, provider.clone());
        let b = if optional {
            b.allow_unauthenticated()
        } else {
            b
        };
        b.build()
            .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))
    };
    let v = match kind {
        "NoClientCert" => WebPkiClientVerifier::no_client_auth(),
        "RequestClientCert" => any(false),
        "RequireAnyClientCert" => any(true),
        "VerifyClientCertIfGiven" => verified(true)?,
        "RequireAndVerifyClientCert" => verified(false)?,
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: invalid {other:?} (NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)"
            ))
        }
    };
    if !t.client_allowed_sans.is_empty() && !kind.starts_with("Require") {
        return Err("tls_server_config.client_allowed_sans: needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert".into());
    }
    Ok(v)
}

/// `RequestClientCert` / `RequireAnyClientCert`: asks for a certificate and checks only that
/// the client holds its key, as Go does.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether the client's certificate carries one of `allowed` as a DNS or IP SAN.
pub fn san_allowed(cert: &CertificateDer<'_>, allowed: &[String]) -> bool {
    let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    allowed.iter().any(|san| {
        ServerName::try_from(san.as_str())
            .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
    })
}
