//! `--web.config.file`: the web configuration format of Prometheus, Alertmanager and the
//! exporters (prometheus/exporter-toolkit), read again when the file or a file it names
//! changes, so certificates rotate without a restart.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative to this file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: ca.crt
//! http_server_config:
//!   headers: {Strict-Transport-Security: max-age=31536000}
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt, as `htpasswd -nBC 10 "" | tr -d ':\n'` prints
//! rate_limit: {interval: 10ms, burst: 100}
//! ```
//!
//! Where medic differs: it serves HTTP/1.1 only (`http2` is accepted and ignored); TLS 1.0 and
//! 1.1 and the CBC cipher suites are not offered (a `min_version` below TLS12 serves TLS 1.2
//! and up); `CurveP521` is not offered; `client_allowed_sans` matches DNS and IP SANs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;
use tracing::{info, warn};

use medic_model::Dur;

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    pub http_server_config: HttpServerConfig,
    /// User name → bcrypt hash of the password.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
}

/// `tls_server_config`, field for field as exporter-toolkit names them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub client_ca: Option<String>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub client_auth_type: Option<String>,
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_allowed_sans: Vec<String>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    pub curve_preferences: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Accepted for compatibility; medic serves HTTP/1.1.
    #[serde(default)]
    pub http2: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Time between two requests (0 disables the limiter).
    pub interval: Dur,
    /// Requests allowed in a burst.
    #[serde(default)]
    pub burst: u32,
}

/// The headers exporter-toolkit lets a web config set.
const SETTABLE_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// A web config ready to serve with.
pub struct WebConfig {
    /// TLS, if `tls_server_config` names a certificate.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// SANs a client certificate must carry one of (empty: any).
    pub allowed_sans: Vec<String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// User name → bcrypt hash.
    pub users: BTreeMap<String, String>,
    /// Minimum time between requests and the burst allowed.
    pub rate_limit: Option<(Duration, u32)>,
    /// Whether every connection must present a certificate signed by `client_ca_file`.
    pub client_cert_verified: bool,
    /// Files whose change triggers a re-read (besides the config itself).
    files: Vec<PathBuf>,
}

impl WebConfig {
    /// No TLS, no users, no headers: what medic serves without `--web.config.file`.
    pub fn plain() -> Self {
        WebConfig {
            tls: None,
            allowed_sans: Vec::new(),
            headers: Vec::new(),
            users: BTreeMap::new(),
            rate_limit: None,
            client_cert_verified: false,
            files: Vec::new(),
        }
    }

    /// Whether clients must prove who they are: basic-auth users, or verified client
    /// certificates required.
    pub fn authenticates(&self) -> bool {
        !self.users.is_empty() || self.client_cert_verified
    }

    /// Reads and checks `path`; the error names the file and the field.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("web config {}: {e}", path.display()))?;
        let file: WebConfigFile = medic_model::yaml::from_str(&text)
            .map_err(|e| format!("web config {}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::build(file, dir).map_err(|e| format!("web config {}: {e}", path.display()))
    }

    fn build(file: WebConfigFile, dir: &Path) -> Result<Self, String> {
        for (user, hash) in &file.basic_auth_users {
            // bcrypt's error quotes the value, which may be a password pasted by mistake.
            hash.parse::<bcrypt::HashParts>().map_err(|_| {
                format!("basic_auth_users.{user}: not a bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':\\n' makes one)")
            })?;
        }
        let mut headers = Vec::new();
        for (name, value) in &file.http_server_config.headers {
            let Some(canonical) = SETTABLE_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(name))
            else {
                return Err(format!(
                    "http_server_config.headers: HTTP header {name:?} can not be configured (only {})",
                    SETTABLE_HEADERS.join(", ")
                ));
            };
            check_header_value(canonical, value)?;
            if value.is_empty() {
                continue;
            }
            headers.push((
                HeaderName::from_static(lowercase(canonical)),
                HeaderValue::from_str(value).map_err(|_| {
                    format!("http_server_config.headers.{canonical}: not a valid header value")
                })?,
            ));
        }
        let rate_limit = match &file.rate_limit {
            Some(r) if r.interval.as_millis() > 0 => Some((
                Duration::from_millis(r.interval.as_millis() as u64),
                r.burst,
            )),
            _ => None,
        };
        let mut files = Vec::new();
        let (tls, allowed_sans) = match &file.tls_server_config {
            None => (None, Vec::new()),
            Some(t) => match super::tls::server_config(t, dir, &mut files)? {
                None => (None, Vec::new()),
                Some(c) => (Some(c), t.client_allowed_sans.clone()),
            },
        };
        let client_cert_verified = tls.is_some()
            && file
                .tls_server_config
                .as_ref()
                .and_then(|t| t.client_auth_type.as_deref())
                == Some("RequireAndVerifyClientCert");
        Ok(WebConfig {
            tls,
            allowed_sans,
            client_cert_verified,
            headers,
            users: file.basic_auth_users,
            rate_limit,
            files,
        })
    }
}

fn lowercase(h: &'static str) -> &'static str {
    match h {
        "Content-Security-Policy" => "content-security-policy",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "strict-transport-security",
    }
}

/// The values exporter-toolkit accepts for the headers it checks.
fn check_header_value(name: &str, value: &str) -> Result<(), String> {
    let ok = match name {
        "X-Frame-Options" => {
            value.is_empty()
                || value.eq_ignore_ascii_case("deny")
                || value.eq_ignore_ascii_case("sameorigin")
        }
        "X-Content-Type-Options" => value.is_empty() || value.eq_ignore_ascii_case("nosniff"),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "http_server_config.headers.{name}: invalid value {value:?}"
        ))
    }
}

/// When a file last changed, as far as a re-read is concerned.
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

/// The web config file, re-read (at most once a second) when it or a certificate, key or CA
/// file it names changes. A file that no longer loads keeps the last good config in force
/// and is logged; `medic_web_config_last_reload_successful` says which.
pub struct WebConfigWatch {
    path: PathBuf,
    inner: Mutex<Watched>,
    /// 1 when the file in force is the file on disk.
    pub reload_ok: prometheus_client::metrics::gauge::Gauge,
}

struct Watched {
    config: Arc<WebConfig>,
    stamp: Stamp,
    checked: Instant,
}

impl WebConfigWatch {
    /// Loads `path` once; an error here stops medic from starting.
    pub fn open(path: &Path) -> Result<Self, String> {
        let config = WebConfig::load(path)?;
        let stamp = stamp(&watched_files(path, &config));
        let reload_ok = prometheus_client::metrics::gauge::Gauge::default();
        reload_ok.set(1);
        info!(path = %path.display(), tls = config.tls.is_some(), users = config.users.len(), "web config loaded");
        Ok(WebConfigWatch {
            path: path.to_path_buf(),
            inner: Mutex::new(Watched {
                config: Arc::new(config),
                stamp,
                checked: Instant::now(),
            }),
            reload_ok,
        })
    }

    /// The config in force, re-read first if a watched file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if w.checked.elapsed() < Duration::from_secs(1) {
            return w.config.clone();
        }
        w.checked = Instant::now();
        let now = stamp(&watched_files(&self.path, &w.config));
        if now == w.stamp {
            return w.config.clone();
        }
        match WebConfig::load(&self.path) {
            Ok(c) => {
                info!(path = %self.path.display(), "web config changed; re-read");
                w.stamp = stamp(&watched_files(&self.path, &c));
                w.config = Arc::new(c);
                self.reload_ok.set(1);
            }
            Err(e) => {
                // Keep serving with the last good config; try again when the files change.
                w.stamp = now;
                self.reload_ok.set(0);
                warn!(error = %e, "web config changed but does not load; keeping the previous one");
            }
        }
        w.config.clone()
    }
}

fn watched_files(path: &Path, c: &WebConfig) -> Vec<PathBuf> {
    let mut v = vec![path.to_path_buf()];
    v.extend(c.files.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_headers_are_refused_with_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, "tls_server_config:\n  cert_fil: x\n").unwrap();
        let e = WebConfig::load(&p).err().unwrap();
        assert!(e.contains("cert_fil") && e.contains("line 2"), "{e}");
        std::fs::write(&p, "http_server_config:\n  headers:\n    Server: x\n").unwrap();
        let e = WebConfig::load(&p).err().unwrap();
        assert!(e.contains("\"Server\" can not be configured"), "{e}");
        std::fs::write(
            &p,
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        )
        .unwrap();
        let e = WebConfig::load(&p).err().unwrap();
        assert!(e.contains("X-Frame-Options: invalid value"), "{e}");
        std::fs::write(&p, "basic_auth_users:\n  alice: hunter2\n").unwrap();
        let e = WebConfig::load(&p).err().unwrap();
        assert!(
            e.contains("basic_auth_users.alice: not a bcrypt hash"),
            "{e}"
        );
        // The password-like value is not echoed.
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn a_config_without_certificates_serves_plain_http_with_its_users() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        let hash = bcrypt::hash("pw", 4).unwrap();
        std::fs::write(
            &p,
            format!("tls_server_config: {{}}\nbasic_auth_users:\n  alice: '{hash}'\nrate_limit: {{interval: 1s, burst: 3}}\nhttp_server_config:\n  http2: false\n  headers:\n    x-frame-options: deny\n"),
        )
        .unwrap();
        let c = WebConfig::load(&p).unwrap();
        assert!(c.tls.is_none());
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.rate_limit, Some((Duration::from_secs(1), 3)));
        assert_eq!(c.headers[0].0.as_str(), "x-frame-options");
    }

    #[test]
    fn a_broken_rewrite_keeps_the_last_good_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, "basic_auth_users: {}\n").unwrap();
        let w = WebConfigWatch::open(&p).unwrap();
        let hash = bcrypt::hash("pw", 4).unwrap();
        std::fs::write(&p, format!("basic_auth_users:\n  bob: '{hash}'\n")).unwrap();
        w.inner.lock().unwrap().checked -= Duration::from_secs(2);
        assert_eq!(w.current().users.len(), 1);
        assert_eq!(w.reload_ok.get(), 1);
        std::fs::write(&p, "basic_auth_users: [\n").unwrap();
        w.inner.lock().unwrap().checked -= Duration::from_secs(2);
        assert_eq!(w.current().users.len(), 1, "the last good config stays");
        assert_eq!(w.reload_ok.get(), 0);
    }
}
