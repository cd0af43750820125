//! Remote write out: every sample medic stores is also sent to the stores listed under
//! `remote_write:` (Prometheus's list form), each through a queue on disk (`queue`) filled by
//! the TSDB's commit tap before the commit is acknowledged, and emptied by a sender task
//! (`send`) with sharding, retries and backoff. A destination that is down for a while gets
//! everything when it is back; medic's own ingestion never waits for it.

mod queue;
mod send;

use std::path::Path;
use std::sync::Arc;

use medic_model::{CommitTap, Labels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use prost::Message;

use crate::config::RemoteWriteTarget;
use crate::remote_write::proto;
use crate::scrape::relabel::relabel;

pub use queue::{Cursor, Queue};

type ByRemote = Family<Vec<(&'static str, String)>, Counter>;
type GaugeByRemote = Family<Vec<(&'static str, String)>, Gauge>;

/// `medic_remote_write_*`, by destination (`remote_name`, `url`), as Prometheus's
/// `prometheus_remote_storage_*`.
#[derive(Default, Clone)]
pub struct RemoteOutMetrics {
    sent: ByRemote,
    dropped: Family<Vec<(&'static str, String)>, Counter>,
    retries: ByRemote,
    requests: Family<Vec<(&'static str, String)>, Counter>,
    pending_bytes: GaugeByRemote,
    highest_sent: GaugeByRemote,
}

impl RemoteOutMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "medic_remote_write_samples_sent",
            "Samples the destination accepted",
            self.sent.clone(),
        );
        r.register(
            "medic_remote_write_samples_dropped",
            "Samples given up, by reason: rejected (a 4xx answer) or queue_full (over queue_config.max_bytes)",
            self.dropped.clone(),
        );
        r.register(
            "medic_remote_write_retries",
            "Requests retried after a 5xx, a 429 or a connection error",
            self.retries.clone(),
        );
        r.register(
            "medic_remote_write_requests",
            "Requests sent, by status code (0: no answer)",
            self.requests.clone(),
        );
        r.register(
            "medic_remote_write_queue_bytes",
            "Bytes queued on disk and not yet accepted by the destination",
            self.pending_bytes.clone(),
        );
        r.register(
            "medic_remote_write_highest_sent_timestamp_seconds",
            "Newest sample timestamp the destination accepted",
            self.highest_sent.clone(),
        );
    }
}

/// One destination: its settings, its queue, its labels for metrics.
pub struct Target {
    pub config: RemoteWriteTarget,
    pub queue: Queue,
    pub name: String,
    wake: tokio::sync::Notify,
    metrics: RemoteOutMetrics,
    /// Every append fsynced (storage.fsync: always).
    sync_always: bool,
}

impl Target {
    fn labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("remote_name", self.name.clone()),
            ("url", redact_url(&self.config.url)),
        ]
    }
}

/// The URL without user information, for metrics and logs.
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// Every destination; the TSDB's commit tap.
pub struct RemoteOut {
    targets: Vec<Arc<Target>>,
}

impl RemoteOut {
    /// Opens a queue per destination under `dir` (`storage.path/remote_write`).
    pub fn open(
        targets: &[RemoteWriteTarget],
        dir: &Path,
        sync_always: bool,
        metrics: RemoteOutMetrics,
    ) -> Result<RemoteOut, String> {
        let mut out = Vec::new();
        for t in targets {
            let name = t.queue_name();
            let qdir = dir.join(&name);
            let queue = Queue::open(&qdir, t.queue_config.max_bytes.0)
                .map_err(|e| format!("remote write queue {}: {e}", qdir.display()))?;
            out.push(Arc::new(Target {
                config: t.clone(),
                queue,
                name,
                wake: tokio::sync::Notify::new(),
                metrics: metrics.clone(),
                sync_always,
            }));
        }
        Ok(RemoteOut { targets: out })
    }

    /// Starts a sender per destination on the current runtime.
    pub fn start(&self) -> Result<Vec<tokio::task::JoinHandle<()>>, crate::Error> {
        self.targets
            .iter()
            .map(|t| {
                let client = send::client(&t.config)?;
                Ok(tokio::spawn(send::run(t.clone(), client)))
            })
            .collect()
    }

    /// fsyncs every queue (the storage's fsync interval drives it).
    pub fn sync(&self) {
        for t in &self.targets {
            if let Err(e) = t.queue.sync() {
                tracing::warn!(remote = %t.name, error = %e, "cannot fsync the remote write queue");
            }
        }
    }
}

/// Opens the queues of `remote_write:`'s destinations (none: nothing), hooks them into the
/// store's commits and starts their senders and the queues' fsync ticker. The tasks end when
/// aborted; the queues' cursors make that safe at any moment.
pub fn start(
    config: &crate::config::Config,
    db: &medic_tsdb::Db,
    self_metrics: &crate::selfmetrics::SelfMetrics,
) -> Result<Vec<tokio::task::JoinHandle<()>>, crate::Error> {
    let targets = &config.remote_write.send_to;
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let metrics = RemoteOutMetrics::default();
    self_metrics.with_registry(|r| metrics.register(r));
    let always = config.storage.wal.fsync == crate::config::FsyncMode::Always;
    let out = RemoteOut::open(
        targets,
        &config.storage.path.join("remote_write"),
        always,
        metrics,
    )
    .map_err(crate::Error::Internal)?;
    let out = Arc::new(out);
    db.set_commit_tap(out.clone());
    let mut tasks = out.start()?;
    let every = config.storage.wal.fsync_interval.duration();
    if !always && !every.is_zero() {
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let o = out.clone();
                let _ = tokio::task::spawn_blocking(move || o.sync()).await;
            }
        }));
    }
    for t in targets {
        tracing::info!(url = %redact_url(&t.url), name = %t.queue_name(), "sending samples by remote write");
    }
    Ok(tasks)
}

/// The commit's series, relabelled for `t`, as one `WriteRequest`; `None` when relabelling
/// dropped them all.
fn encode(t: &Target, series: &[(&Labels, Vec<(i64, f64)>)]) -> Option<Vec<u8>> {
    let rules = &t.config.write_relabel_configs;
    let timeseries: Vec<proto::TimeSeries> = series
        .iter()
        .filter_map(|(labels, samples)| {
            let labels = if rules.is_empty() {
                (*labels).clone()
            } else {
                relabel(labels, rules)?
            };
            Some(proto::TimeSeries {
                labels: labels
                    .iter()
                    .map(|l| proto::Label {
                        name: l.name.to_string(),
                        value: l.value.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| proto::Sample { value, timestamp })
                    .collect(),
                histograms: Vec::new(),
            })
        })
        .collect();
    (!timeseries.is_empty()).then(|| proto::WriteRequest { timeseries }.encode_to_vec())
}

impl CommitTap for RemoteOut {
    fn committed(&self, series: &[(&Labels, Vec<(i64, f64)>)]) -> Result<(), String> {
        for t in &self.targets {
            let Some(record) = encode(t, series) else {
                continue;
            };
            t.queue
                .append(&record)
                .map_err(|e| format!("remote write queue {}: {e}", t.name))?;
            if t.sync_always {
                t.queue
                    .sync()
                    .map_err(|e| format!("remote write queue {}: {e}", t.name))?;
            }
            t.wake.notify_one();
        }
        Ok(())
    }
}
