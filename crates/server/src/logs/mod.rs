//! The log store in `medic run`: opened under the storage directory, maintained (flush,
//! retention) every few seconds on the blocking pool, and described in `/metrics`; the syslog
//! listeners (`syslog`).

pub mod files;
pub mod syslog;

use std::sync::Arc;
use std::time::Duration;

use medic_logs::store::{LogStore, Options};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tracing::{info, warn};

use crate::Error;

/// How often the store is checked for a due flush and for retention.
const MAINTAIN_EVERY: Duration = Duration::from_secs(5);

/// The log store and what the server needs around it.
pub struct Logs {
    pub store: LogStore,
    /// Most entries a log query returns.
    pub max_entries: usize,
}

impl Logs {
    /// Opens the store (replaying its WAL) on the blocking pool.
    pub async fn open(opts: Options, max_entries: usize) -> Result<Arc<Logs>, Error> {
        info!(path = %opts.dir.display(), "opening the log store");
        let store = tokio::task::spawn_blocking(move || LogStore::open(opts))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Internal(format!("log store: {e}")))?;
        Ok(Arc::new(Logs { store, max_entries }))
    }

    /// Binds the configured syslog listeners and starts the file tailer, each on a task
    /// (aborted at shutdown).
    pub async fn start_inputs(
        self: &Arc<Self>,
        cfg: &crate::config::LogsConfig,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, Error> {
        let mut tasks = self.start_syslog(&cfg.syslog).await?;
        if !cfg.files.is_empty() {
            let positions = self
                .store
                .checkpoint(medic_logs::tail::CHECKPOINT_KEY)
                .map(|s| medic_logs::tail::Tailer::decode(&s))
                .unwrap_or_default();
            let tailer = medic_logs::tail::Tailer::new(
                cfg.files.clone(),
                positions,
                cfg.max_line_bytes.0 as usize,
                16 << 20,
            );
            let every = cfg.files_interval.duration();
            tasks.push(tokio::spawn(files::run(self.clone(), tailer, every)));
        }
        Ok(tasks)
    }

    async fn start_syslog(
        self: &Arc<Self>,
        cfg: &crate::config::logs::SyslogConfig,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, Error> {
        let s = syslog::Syslog {
            logs: self.clone(),
            labels: cfg.labels.clone(),
            max_message: cfg.max_message_bytes.0 as usize,
        };
        let mut tasks = Vec::new();
        let bind_err = |what: &str, addr: &str, e: std::io::Error| {
            Error::Internal(format!("logs.syslog.{what}: cannot listen on {addr}: {e}"))
        };
        if let Some(addr) = &cfg.tcp {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| bind_err("tcp", addr, e))?;
            tasks.push(tokio::spawn(s.clone().serve_tcp(l)));
        }
        if let Some(addr) = &cfg.udp {
            let u = tokio::net::UdpSocket::bind(addr)
                .await
                .map_err(|e| bind_err("udp", addr, e))?;
            tasks.push(tokio::spawn(s.serve_udp(u)));
        }
        Ok(tasks)
    }

    /// Flushes and applies retention until `stop`; flushes the head once more at the end.
    pub async fn run(
        self: Arc<Self>,
        stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) {
        let mut stop = stop;
        let mut tick = tokio::time::interval(MAINTAIN_EVERY);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {
                    let store = self.store.clone();
                    let now = now_ns();
                    match tokio::task::spawn_blocking(move || store.maintain(now)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => warn!(error = %e, "log store maintenance failed"),
                        Err(e) => warn!(error = %e, "log store maintenance panicked"),
                    }
                }
            }
        }
        let store = self.store.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.flush()).await {
            warn!(error = %e, "log store: the flush at shutdown failed; the WAL keeps the entries");
        }
    }

    /// A collector for `/metrics`.
    pub fn collector(self: &Arc<Self>) -> LogsCollector {
        LogsCollector(self.clone())
    }
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `medic_logs_*`, read from the store at each scrape.
#[derive(Clone)]
pub struct LogsCollector(Arc<Logs>);

impl std::fmt::Debug for LogsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogsCollector")
    }
}

fn counter(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for LogsCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let store = &self.0.store;
        let c = store.counters();
        counter(
            &mut e,
            "medic_logs_entries_received",
            "Log entries received by any ingest path",
            c.entries_received.load(Relaxed),
        )?;
        counter(
            &mut e,
            "medic_logs_bytes_received",
            "Bytes of log lines received",
            c.bytes_received.load(Relaxed),
        )?;
        counter(
            &mut e,
            "medic_logs_entries_refused",
            "Log entries refused (too old, too new, too long, bad labels)",
            c.entries_refused.load(Relaxed),
        )?;
        counter(
            &mut e,
            "medic_logs_entries_dropped_by_redaction",
            "Log entries dropped by a redaction rule with action drop",
            c.entries_dropped_by_redaction.load(Relaxed),
        )?;
        counter(
            &mut e,
            "medic_logs_flushes",
            "Flushes of the log head to parts",
            c.flushes.load(Relaxed),
        )?;
        counter(
            &mut e,
            "medic_logs_parts_deleted",
            "Log parts deleted by retention",
            c.parts_deleted.load(Relaxed),
        )?;
        counter(
            &mut e,
            "medic_logs_parts_quarantined",
            "Damaged log parts moved to quarantine at open",
            c.parts_quarantined.load(Relaxed),
        )?;
        counter(
            &mut e,
            "medic_logs_wal_damaged_segments",
            "Log WAL segments whose damaged tail was cut at open",
            c.wal_damaged_segments.load(Relaxed),
        )?;
        counter(
            &mut e,
            "medic_logs_syslog_unparsed",
            "Syslog messages that were neither RFC 5424 nor 3164 (stored as they came)",
            syslog::UNPARSED.load(Relaxed),
        )?;
        let s = store.stats();
        gauge(
            &mut e,
            "medic_logs_head_entries",
            "Log entries in the head (not yet in parts)",
            s.head_entries as i64,
        )?;
        gauge(
            &mut e,
            "medic_logs_head_bytes",
            "Bytes held by the log head",
            s.head_bytes as i64,
        )?;
        gauge(
            &mut e,
            "medic_logs_head_streams",
            "Streams in the log head",
            s.head_streams as i64,
        )?;
        gauge(
            &mut e,
            "medic_logs_parts",
            "Log parts on disk",
            s.parts as i64,
        )?;
        gauge(
            &mut e,
            "medic_logs_part_bytes",
            "Bytes of log parts on disk",
            s.part_bytes as i64,
        )?;
        gauge(
            &mut e,
            "medic_logs_part_entries",
            "Log entries in parts",
            s.part_entries as i64,
        )?;
        let proto = ConstCounter::new(0u64);
        let mut d = e.encode_descriptor(
            "medic_logs_redactions",
            "Values masked or hashed, or lines dropped, by each redaction rule",
            None,
            proto.metric_type(),
        )?;
        for (rule, n) in store.redactor().counts() {
            let labels = [("rule", rule)];
            ConstCounter::new(n).encode(d.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
