//! Outgoing requests' TLS settings and credentials, from Prometheus's `http_config` fields (`basic_auth`,
//! `authorization`, `bearer_token`, `bearer_token_file`); files are read at each request, so a
//! rotated secret is picked up without a reload.

use std::path::Path;

use crate::config::{Authorization, BasicAuth, TlsConfig};

/// Applies `tls_config` to a client being built: `insecure_skip_verify`, and every certificate
/// of `ca_file` (a PEM bundle) trusted. `what` names the owner in errors (`job "node"`).
pub fn with_tls(
    mut b: reqwest::ClientBuilder,
    tls: Option<&TlsConfig>,
    what: &str,
) -> Result<reqwest::ClientBuilder, crate::Error> {
    let Some(tls) = tls else { return Ok(b) };
    if tls.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(ca) = &tls.ca_file {
        let err = |message: String| crate::Error::Config {
            file: ca.clone(),
            message,
        };
        let pem = std::fs::read(ca)
            .map_err(|e| err(format!("{what}: cannot read tls_config.ca_file: {e}")))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| err(format!("{what}: tls_config.ca_file is not PEM: {e}")))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b)
}

fn read_secret(what: &str, f: &Path) -> Result<String, String> {
    std::fs::read_to_string(f)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("reading {what} {}: {e}", f.display()))
}

/// Adds the configured credentials to `req`. Errors name the file that could not be read.
pub fn apply(
    mut req: reqwest::RequestBuilder,
    basic: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
    bearer_token: Option<&str>,
    bearer_token_file: Option<&Path>,
) -> Result<reqwest::RequestBuilder, String> {
    if let Some(ba) = basic {
        let password = match (&ba.password, &ba.password_file) {
            (_, Some(f)) => read_secret("basic_auth.password_file", f)?,
            (Some(p), None) => p.clone(),
            (None, None) => String::new(),
        };
        req = req.basic_auth(&ba.username, Some(password));
    }
    let header = match (authorization, bearer_token, bearer_token_file) {
        (Some(a), _, _) => {
            let cred = match (&a.credentials, &a.credentials_file) {
                (_, Some(f)) => read_secret("authorization.credentials_file", f)?,
                (Some(c), None) => c.clone(),
                (None, None) => String::new(),
            };
            Some(format!("{} {cred}", a.kind))
        }
        (None, Some(t), _) => Some(format!("Bearer {t}")),
        (None, None, Some(f)) => Some(format!("Bearer {}", read_secret("bearer_token_file", f)?)),
        _ => None,
    };
    if let Some(h) = header {
        req = req.header(reqwest::header::AUTHORIZATION, h);
    }
    Ok(req)
}
