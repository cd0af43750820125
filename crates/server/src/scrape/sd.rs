//! Discovery that needs the network: `http_sd_configs` (an endpoint answering target groups in
//! JSON, as Prometheus's HTTP SD) and `dns_sd_configs` (`A`/`AAAA` names with a port). Like
//! file_sd, a source that fails keeps its last good targets, and failures are counted.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use medic_model::Labels;
use serde::Deserialize;
use tracing::warn;

use super::discovery::TargetGroup;
use crate::config::Dur;

/// `http_sd_configs:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    /// The endpoint; answers `[{"targets": [...], "labels": {...}}]` with status 200.
    pub url: String,
    /// How often to ask (default 60s).
    #[serde(default = "default_http_refresh")]
    pub refresh_interval: Dur,
}

fn default_http_refresh() -> Dur {
    Dur::from_secs(60)
}

/// `dns_sd_configs:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    /// Names to resolve.
    pub names: Vec<String>,
    /// `A`, `AAAA` (resolved through the system resolver), or `SRV` (Prometheus's default,
    /// refused: medic has no SRV resolver yet — use `A` with `port`).
    #[serde(rename = "type", default = "default_dns_type")]
    pub kind: String,
    /// Port of every target (required for `A`/`AAAA`).
    pub port: Option<u16>,
    /// How often to resolve (default 30s).
    #[serde(default = "default_dns_refresh")]
    pub refresh_interval: Dur,
}

fn default_dns_type() -> String {
    "SRV".into()
}

fn default_dns_refresh() -> Dur {
    Dur::from_secs(30)
}

impl DnsSdConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        match self.kind.as_str() {
            "A" | "AAAA" if self.port.is_none() => {
                Err(format!("type {} needs a port", self.kind))
            }
            "A" | "AAAA" => Ok(()),
            "SRV" => Err("type SRV is not supported yet (medic resolves through the system resolver, which has no SRV lookups); use type: A with port".into()),
            other => Err(format!("type must be A, AAAA or SRV, got {other:?}")),
        }
    }
}

impl HttpSdConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let u = reqwest::Url::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(format!(
                "url: scheme must be http or https, got {:?}",
                u.scheme()
            ));
        }
        Ok(())
    }
}

/// The last good answer of each source.
#[derive(Debug, Default)]
pub struct NetSd {
    http: HashMap<String, Vec<TargetGroup>>,
    dns: HashMap<String, Vec<String>>,
    /// Failures so far (for medic's own metrics).
    pub errors: u64,
}

/// Largest HTTP SD answer read.
const MAX_HTTP_SD_BODY: usize = 16 << 20;

async fn fetch_http(client: &reqwest::Client, url: &str) -> Result<Vec<TargetGroup>, String> {
    let resp = client
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| medic_model::error_chain(&e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| medic_model::error_chain(&e.without_url()))?;
    if body.len() > MAX_HTTP_SD_BODY {
        return Err(format!("answer over {MAX_HTTP_SD_BODY} bytes"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("invalid target groups: {e}"))
}

async fn resolve(name: &str, kind: &str, port: u16) -> Result<Vec<String>, String> {
    let addrs = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| e.to_string())?;
    let mut out: Vec<String> = addrs
        .filter(|a| (kind == "A") == a.is_ipv4())
        .map(|a| a.to_string())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

impl NetSd {
    /// Asks every source of a job; each group carries Prometheus's `__meta_*` labels.
    pub async fn refresh(
        &mut self,
        client: &reqwest::Client,
        http: &[HttpSdConfig],
        dns: &[DnsSdConfig],
    ) -> Vec<(Labels, Vec<String>)> {
        let mut out = Vec::new();
        for h in http {
            match fetch_http(client, &h.url).await {
                Ok(groups) => {
                    self.http.insert(h.url.clone(), groups);
                }
                Err(e) => {
                    warn!(url = %medic_alert::notify::redact_url(&h.url), error = %e, "http_sd failed; keeping its previous targets");
                    self.errors += 1;
                }
            }
            for g in self.http.get(&h.url).into_iter().flatten() {
                let mut labels: BTreeMap<String, String> = g.labels.clone();
                labels.insert("__meta_url".into(), h.url.clone());
                out.push((Labels::from_pairs(labels), g.targets.clone()));
            }
        }
        for d in dns {
            let Some(port) = d.port else { continue };
            for name in &d.names {
                let key = format!("{}/{name}:{port}", d.kind);
                match resolve(name, &d.kind, port).await {
                    Ok(addrs) => {
                        self.dns.insert(key.clone(), addrs);
                    }
                    Err(e) => {
                        warn!(name, error = %e, "dns_sd failed; keeping its previous targets");
                        self.errors += 1;
                    }
                }
                if let Some(addrs) = self.dns.get(&key) {
                    let labels = Labels::from_pairs([
                        ("__meta_dns_name", name.as_str()),
                        ("__meta_dns_record_type", d.kind.as_str()),
                    ]);
                    out.push((labels, addrs.clone()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_sd_types_are_checked() {
        let a: DnsSdConfig =
            serde_norway::from_str("names: [localhost]\ntype: A\nport: 9100\n").unwrap();
        a.validate().unwrap();
        let srv: DnsSdConfig = serde_norway::from_str("names: [_x._tcp.example]\n").unwrap();
        assert!(srv
            .validate()
            .unwrap_err()
            .contains("use type: A with port"));
        let noport: DnsSdConfig = serde_norway::from_str("names: [x]\ntype: AAAA\n").unwrap();
        assert!(noport.validate().unwrap_err().contains("needs a port"));
    }

    #[tokio::test]
    async fn dns_sd_resolves_a_records_with_the_port() {
        let got = resolve("localhost", "A", 9100).await.unwrap();
        assert_eq!(got, ["127.0.0.1:9100"]);
    }
}
