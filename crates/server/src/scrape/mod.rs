//! The scrape manager: one pool per `scrape_configs` job, one loop per target. Each loop scrapes
//! on a fixed per-target offset within the interval, parses the body (text 0.0.4 or OpenMetrics),
//! applies target labels and `metric_relabel_configs`, appends everything in one transaction
//! with the synthetic `up`/`scrape_*` series, and writes staleness markers for series that
//! disappeared — or for all of them when the scrape fails or the target goes away.

pub mod discovery;
pub mod parser;
pub mod parser_proto;
pub mod relabel;
mod scrape_loop;
pub mod sd;

use scrape_loop::scrape_loop;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medic_model::{Appendable, Clock, Labels, LabelsBuilder, SystemClock, STALE_NAN};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::{GlobalConfig, ScrapeConfig};
use discovery::FileSd;
use parser::Format;

const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// medic's own scrape metrics.
#[derive(Debug, Clone)]
pub struct ScrapeMetrics {
    scrapes: Family<Vec<(&'static str, String)>, Counter>,
    duration: Family<Vec<(&'static str, String)>, Histogram>,
    sd_errors: Counter,
}

impl Default for ScrapeMetrics {
    fn default() -> Self {
        Self {
            scrapes: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.5, 10))
            }),
            sd_errors: Counter::default(),
        }
    }
}

impl ScrapeMetrics {
    /// Registers the metrics under `medic_scrape_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("medic_scrape");
        r.register(
            "scrapes",
            "Scrapes by job and result (success, failed)",
            self.scrapes.clone(),
        );
        r.register(
            "duration_seconds",
            "Scrape duration by job",
            self.duration.clone(),
        );
        r.register(
            "file_sd_read_errors",
            "file_sd files that could not be read or parsed",
            self.sd_errors.clone(),
        );
    }
}

/// Health of a target, as the targets API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not scraped yet.
    Unknown,
    /// Last scrape succeeded.
    Up,
    /// Last scrape failed.
    Down,
}

#[derive(Debug, Clone)]
struct Status {
    health: Health,
    last_error: String,
    last_scrape_ms: Option<i64>,
    last_duration: f64,
}

/// A target being scraped.
#[derive(Debug)]
pub struct Target {
    /// Labels before relabelling.
    pub discovered: Labels,
    /// Labels attached to every scraped series.
    pub labels: Labels,
    /// The URL scraped.
    pub url: String,
    status: Mutex<Status>,
    /// HELP/TYPE/UNIT of the metric families of the last successful scrape.
    metadata: Mutex<Arc<BTreeMap<String, parser::MetricMeta>>>,
}

impl Target {
    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// A target as `/api/v1/targets` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTarget {
    discovered_labels: Labels,
    labels: Labels,
    scrape_pool: String,
    scrape_url: String,
    global_url: String,
    last_error: String,
    last_scrape: String,
    last_scrape_duration: f64,
    health: Health,
    scrape_interval: String,
    scrape_timeout: String,
}

/// A target dropped by relabelling.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedTarget {
    discovered_labels: Labels,
}

struct RunningTarget {
    target: Arc<Target>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Pool {
    cfg: ScrapeConfig,
    interval: Duration,
    timeout: Duration,
    client: reqwest::Client,
    running: Mutex<HashMap<Labels, RunningTarget>>,
    dropped: Mutex<Vec<Labels>>,
    file_sd: Mutex<FileSd>,
    net_sd: tokio::sync::Mutex<sd::NetSd>,
}

/// Runs every scrape job.
pub struct ScrapeManager {
    store: Arc<dyn Appendable>,
    pools: Vec<Arc<Pool>>,
    metrics: ScrapeMetrics,
    clock: Arc<dyn Clock>,
    stop: watch::Sender<bool>,
}

impl ScrapeManager {
    /// Builds the pools (HTTP clients, TLS) for `configs`. Fails on unreadable TLS files.
    pub fn new(
        store: Arc<dyn Appendable>,
        global: &GlobalConfig,
        configs: Vec<ScrapeConfig>,
        metrics: ScrapeMetrics,
    ) -> Result<Self, crate::Error> {
        let mut pools = Vec::new();
        for cfg in configs {
            let interval = cfg
                .scrape_interval
                .unwrap_or(global.scrape_interval)
                .duration();
            let timeout = cfg
                .scrape_timeout
                .unwrap_or(global.scrape_timeout())
                .duration()
                .min(interval);
            let client = build_client(&cfg)?;
            pools.push(Arc::new(Pool {
                cfg,
                interval,
                timeout,
                client,
                running: Mutex::new(HashMap::new()),
                dropped: Mutex::new(Vec::new()),
                file_sd: Mutex::new(FileSd::default()),
                net_sd: tokio::sync::Mutex::new(sd::NetSd::default()),
            }));
        }
        let (stop, _) = watch::channel(false);
        Ok(Self {
            store,
            pools,
            metrics,
            clock: Arc::new(SystemClock),
            stop,
        })
    }

    /// Starts discovery and the scrape loops; returns at once.
    pub fn start(self: &Arc<Self>) {
        for pool in &self.pools {
            let mgr = self.clone();
            let pool = pool.clone();
            let mut stop = self.stop.subscribe();
            tokio::spawn(async move {
                let cfg = &pool.cfg;
                let refresh = cfg
                    .file_sd_configs
                    .iter()
                    .map(|f| f.refresh_interval.duration())
                    .chain(
                        cfg.http_sd_configs
                            .iter()
                            .map(|h| h.refresh_interval.duration()),
                    )
                    .chain(
                        cfg.dns_sd_configs
                            .iter()
                            .map(|d| d.refresh_interval.duration()),
                    )
                    .min()
                    .unwrap_or(Duration::from_secs(3600));
                for (what, n) in [
                    ("consul_sd_configs", cfg.consul_sd_configs.len()),
                    ("kubernetes_sd_configs", cfg.kubernetes_sd_configs.len()),
                ] {
                    if n > 0 {
                        tracing::warn!(job = %cfg.job_name, "{what} is parsed but not run by medic yet: its targets are not scraped (see docs/configuration.md)");
                    }
                }
                loop {
                    let net = if cfg.http_sd_configs.is_empty() && cfg.dns_sd_configs.is_empty() {
                        Vec::new()
                    } else {
                        let mut sd = pool.net_sd.lock().await;
                        let before = sd.errors;
                        let groups = sd
                            .refresh(&pool.client, &cfg.http_sd_configs, &cfg.dns_sd_configs)
                            .await;
                        mgr.metrics.sd_errors.inc_by(sd.errors - before);
                        groups
                    };
                    mgr.sync_pool(&pool, net);
                    tokio::select! {
                        _ = tokio::time::sleep(refresh) => {}
                        _ = stop.changed() => return,
                    }
                }
            });
        }
    }

    /// Stops every loop without staleness markers (medic is stopping, the targets are not
    /// gone), and waits for in-flight scrapes to finish.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let mut tasks = Vec::new();
        for pool in &self.pools {
            let running =
                std::mem::take(&mut *pool.running.lock().unwrap_or_else(|e| e.into_inner()));
            for (_, rt) in running {
                let _ = rt.stop.send(true);
                tasks.push(rt.task);
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// The metadata of every active target: its labels and its metric families.
    pub fn metadata(&self) -> Vec<(Labels, Arc<BTreeMap<String, parser::MetricMeta>>)> {
        let mut out = Vec::new();
        for pool in &self.pools {
            let running = pool.running.lock().unwrap_or_else(|e| e.into_inner());
            for rt in running.values() {
                let m = rt
                    .target
                    .metadata
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                out.push((rt.target.labels.clone(), m));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Targets for `/api/v1/targets`.
    pub fn targets(&self) -> (Vec<ActiveTarget>, Vec<DroppedTarget>) {
        let mut active = Vec::new();
        let mut dropped = Vec::new();
        for pool in &self.pools {
            let running = pool.running.lock().unwrap_or_else(|e| e.into_inner());
            let mut list: Vec<&Arc<Target>> = running.values().map(|r| &r.target).collect();
            list.sort_by(|a, b| a.labels.cmp(&b.labels));
            for t in list {
                let st = t.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
                active.push(ActiveTarget {
                    discovered_labels: t.discovered.clone(),
                    labels: t.labels.clone(),
                    scrape_pool: pool.cfg.job_name.clone(),
                    scrape_url: t.url.clone(),
                    global_url: t.url.clone(),
                    last_error: st.last_error,
                    last_scrape: st
                        .last_scrape_ms
                        .map(medic_model::format_rfc3339)
                        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                    last_scrape_duration: st.last_duration,
                    health: st.health,
                    scrape_interval: medic_model::format_duration(pool.interval),
                    scrape_timeout: medic_model::format_duration(pool.timeout),
                });
            }
            for d in pool
                .dropped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                dropped.push(DroppedTarget {
                    discovered_labels: d.clone(),
                });
            }
        }
        (active, dropped)
    }

    /// Recomputes a pool's targets and starts or stops loops to match.
    fn sync_pool(self: &Arc<Self>, pool: &Arc<Pool>, discovered: Vec<(Labels, Vec<String>)>) {
        let mut groups: Vec<(Labels, Vec<String>)> = pool
            .cfg
            .static_configs
            .iter()
            .map(|s| (Labels::from_pairs(s.labels.clone()), s.targets.clone()))
            .collect();
        {
            let mut sd = pool.file_sd.lock().unwrap_or_else(|e| e.into_inner());
            let before = sd.errors;
            for f in &pool.cfg.file_sd_configs {
                groups.extend(sd.refresh(f));
            }
            self.metrics.sd_errors.inc_by(sd.errors - before);
        }
        groups.extend(discovered);
        let mut wanted: HashMap<Labels, Arc<Target>> = HashMap::new();
        let mut dropped = Vec::new();
        for (group_labels, addrs) in groups {
            for addr in addrs {
                let discovered =
                    discovered_labels(&pool.cfg, pool.interval, pool.timeout, &group_labels, &addr);
                match target_from(&pool.cfg, &discovered) {
                    Some((labels, url)) => {
                        wanted.insert(
                            labels.clone(),
                            Arc::new(Target {
                                discovered,
                                labels,
                                url,
                                metadata: Mutex::default(),
                                status: Mutex::new(Status {
                                    health: Health::Unknown,
                                    last_error: String::new(),
                                    last_scrape_ms: None,
                                    last_duration: 0.0,
                                }),
                            }),
                        );
                    }
                    None => dropped.push(discovered),
                }
            }
        }
        *pool.dropped.lock().unwrap_or_else(|e| e.into_inner()) = dropped;
        let mut running = pool.running.lock().unwrap_or_else(|e| e.into_inner());
        // Stop loops for targets that went away; they mark their series stale.
        let gone: Vec<Labels> = running
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(rt) = running.remove(&k) {
                info!(job = %pool.cfg.job_name, target = %rt.target.url, "target removed");
                let _ = rt.stop.send(true);
            }
        }
        for (k, target) in wanted {
            if running.contains_key(&k) {
                continue;
            }
            let (stop_tx, stop_rx) = watch::channel(false);
            let global_stop = self.stop.subscribe();
            let task = tokio::spawn(scrape_loop(
                self.clone(),
                pool.clone(),
                target.clone(),
                stop_rx,
                global_stop,
            ));
            running.insert(
                k,
                RunningTarget {
                    target,
                    stop: stop_tx,
                    task,
                },
            );
        }
    }
}

fn build_client(cfg: &ScrapeConfig) -> Result<reqwest::Client, crate::Error> {
    let b = reqwest::Client::builder()
        .no_proxy()
        .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(1);
    let b = crate::client_auth::with_tls(
        b,
        cfg.tls_config.as_ref(),
        &format!("job {:?}", cfg.job_name),
    )?;
    b.build()
        .map_err(|e| crate::Error::Internal(format!("building HTTP client: {e}")))
}

/// The labels a target has before relabelling, as Prometheus builds them.
fn discovered_labels(
    cfg: &ScrapeConfig,
    interval: Duration,
    timeout: Duration,
    group: &Labels,
    addr: &str,
) -> Labels {
    let mut b = group.to_builder();
    b.set("__address__", addr);
    b.set("job", cfg.job_name.as_str());
    b.set("__scheme__", cfg.scheme.as_str());
    b.set("__metrics_path__", cfg.metrics_path.as_str());
    b.set(
        "__scrape_interval__",
        medic_model::format_duration(interval),
    );
    b.set("__scrape_timeout__", medic_model::format_duration(timeout));
    for (k, v) in &cfg.params {
        if let Some(first) = v.first() {
            b.set(format!("__param_{k}"), first.as_str());
        }
    }
    b.build()
}

/// Applies `relabel_configs`; returns the final target labels and URL, or `None` if dropped.
fn target_from(cfg: &ScrapeConfig, discovered: &Labels) -> Option<(Labels, String)> {
    let relabelled = relabel::relabel(discovered, &cfg.relabel_configs)?;
    let addr = relabelled.get("__address__")?.to_string();
    // As Prometheus: the address must be a host[:port] once relabelling is done (blackbox
    // probes put the URL in `__param_target` and the exporter in `__address__`).
    if !is_host_port(&addr) {
        tracing::warn!(job = %cfg.job_name, address = %addr, "target dropped: __address__ is not a host:port after relabelling");
        return None;
    }
    let scheme = relabelled.get("__scheme__").unwrap_or("http");
    let path = relabelled.get("__metrics_path__").unwrap_or("/metrics");
    let mut url = format!("{scheme}://{addr}{path}");
    // As Prometheus: configured params, with every `__param_<name>` label replacing the first
    // value of <name> (or adding it).
    let mut params: std::collections::BTreeMap<String, Vec<String>> = cfg.params.clone();
    for l in relabelled.iter() {
        if let Some(k) = l.name.strip_prefix("__param_") {
            let vals = params.entry(k.to_string()).or_default();
            match vals.first_mut() {
                Some(first) => *first = l.value.to_string(),
                None => vals.push(l.value.to_string()),
            }
        }
    }
    let qs: Vec<String> = params
        .iter()
        .flat_map(|(k, vals)| {
            vals.iter()
                .map(move |v| format!("{}={}", urlencode(k), urlencode(v)))
        })
        .collect();
    if !qs.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&qs.join("&"));
    }
    let mut b = LabelsBuilder::new();
    for l in relabelled.iter() {
        if !l.name.starts_with("__") {
            b.set(l.name.clone(), l.value.clone());
        }
    }
    if b.get("instance").is_none() {
        b.set("instance", addr.as_str());
    }
    Some((b.build(), url))
}

/// Whether `addr` is a `host` or `host:port` with nothing else (Prometheus's `checkAddr`).
fn is_host_port(addr: &str) -> bool {
    if addr.is_empty() || addr.contains(['/', '?', '#', '@', ' ']) {
        return false;
    }
    reqwest::Url::parse(&format!("http://{addr}")).is_ok_and(|u| u.path() == "/")
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::scrape_loop::{initial_offset, merge_target_labels};
    use super::*;

    #[test]
    fn honor_labels_and_exported_prefix() {
        let scraped = Labels::from_pairs([("__name__", "x"), ("job", "inner")]);
        let target = Labels::from_pairs([("job", "outer"), ("instance", "h:1")]);
        let m = merge_target_labels(&scraped, &target, false);
        assert_eq!(m.get("job"), Some("outer"));
        assert_eq!(m.get("exported_job"), Some("inner"));
        let m = merge_target_labels(&scraped, &target, true);
        assert_eq!(m.get("job"), Some("inner"));
        assert_eq!(m.get("instance"), Some("h:1"));
    }

    #[test]
    fn target_labels_and_url() {
        let cfg: ScrapeConfig = serde_norway::from_str(
            r#"
job_name: node
metrics_path: /probe
params: {module: [http_2xx]}
relabel_configs:
  - {source_labels: [__address__], target_label: __param_target}
  - {target_label: __address__, replacement: 'blackbox:9115'}
"#,
        )
        .unwrap();
        let d = discovered_labels(
            &cfg,
            Duration::from_secs(15),
            Duration::from_secs(10),
            &Labels::empty(),
            "example.org:80",
        );
        let (labels, url) = target_from(&cfg, &d).unwrap();
        assert_eq!(
            url,
            "http://blackbox:9115/probe?module=http_2xx&target=example.org%3A80"
        );
        assert_eq!(labels.get("instance"), Some("blackbox:9115"));
        assert_eq!(labels.get("job"), Some("node"));
        assert!(labels.iter().all(|l| !l.name.starts_with("__")));
        // The blackbox pattern: a URL as the target, relabelled into the probe's parameter.
        let d = discovered_labels(
            &cfg,
            Duration::from_secs(15),
            Duration::from_secs(10),
            &Labels::empty(),
            "https://shop.example.com/health",
        );
        let (_, url) = target_from(&cfg, &d).unwrap();
        assert_eq!(
            url,
            "http://blackbox:9115/probe?module=http_2xx&target=https%3A%2F%2Fshop.example.com%2Fhealth"
        );
        // Without relabelling, a URL is not an address: the target is dropped.
        let plain: ScrapeConfig = serde_norway::from_str("job_name: x\n").unwrap();
        assert!(target_from(&plain, &d).is_none());
    }

    #[test]
    fn offsets_are_stable_and_within_interval() {
        let l = Labels::from_pairs([("job", "a"), ("instance", "b")]);
        let iv = Duration::from_secs(15);
        let o1 = initial_offset(&l, iv, 1_000_000);
        let o2 = initial_offset(&l, iv, 1_000_000 + o1.as_millis() as i64);
        assert!(o1 < iv);
        assert_eq!(o2, Duration::ZERO, "the offset lands on the same phase");
    }
}
