//! Backups (docs/backup.md): snapshots of the running medic for `medic backup create`, which
//! reads them over the HTTP API, and scheduled backups to `backup.destination`, pruned by
//! `backup.keep`.

pub mod snapshot;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medic_model::Clock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

pub use snapshot::Snapshot;

use crate::http::AppState;

/// A snapshot nobody asked about for this long is removed (a client that died mid-backup).
const SNAPSHOT_IDLE: Duration = Duration::from_secs(3600);
/// Snapshots held at once; one more is refused until one is released.
const MAX_SNAPSHOTS: usize = 4;

/// The backup service's metrics.
#[derive(Debug, Default, Clone)]
pub struct BackupMetrics {
    succeeded: Counter,
    failed: Counter,
    last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    last_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    copied_bytes: Counter,
    snapshots: Counter,
}

impl BackupMetrics {
    /// Adds the metrics to `/metrics`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "medic_backup_succeeded",
            "Scheduled backups completed",
            self.succeeded.clone(),
        );
        r.register(
            "medic_backup_failed",
            "Scheduled backups that failed",
            self.failed.clone(),
        );
        r.register(
            "medic_backup_last_success_timestamp_seconds",
            "When the last scheduled backup completed (Unix seconds)",
            self.last_success.clone(),
        );
        r.register(
            "medic_backup_last_duration_seconds",
            "How long the last scheduled backup took",
            self.last_duration.clone(),
        );
        r.register(
            "medic_backup_copied_bytes",
            "Bytes scheduled backups copied (blocks already in the destination are not)",
            self.copied_bytes.clone(),
        );
        r.register(
            "medic_backup_snapshots",
            "Snapshots taken, for scheduled backups and for `medic backup create`",
            self.snapshots.clone(),
        );
    }
}

/// The snapshots offered to backups, and the scheduled backups' state.
#[derive(Debug)]
pub struct Backups {
    root: PathBuf,
    held: Mutex<HashMap<String, (Snapshot, Instant)>>,
    /// The last scheduled backup: (when it ended, ms; its summary or error).
    pub last: Mutex<Option<(i64, Result<serde_json::Value, String>)>>,
    metrics: BackupMetrics,
}

impl Backups {
    /// Snapshots live in `<storage.path>/snapshots`; any found there at start are left over
    /// from a previous run and removed.
    pub fn new(storage: &Path, metrics: BackupMetrics) -> Backups {
        let root = storage.join("snapshots");
        if root.exists() {
            if let Err(e) = std::fs::remove_dir_all(&root) {
                warn!(dir = %root.display(), error = %e, "cannot remove old snapshots");
            }
        }
        Backups {
            root,
            held: Mutex::new(HashMap::new()),
            last: Mutex::new(None),
            metrics,
        }
    }

    /// Takes a snapshot (on the blocking pool) and holds it until [`Backups::release`].
    pub async fn take(&self, st: &Arc<AppState>) -> Result<Snapshot, String> {
        self.expire();
        if self.held.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_SNAPSHOTS {
            return Err(format!(
                "{MAX_SNAPSHOTS} snapshots are held already; wait for a backup to end (or for them to expire after an hour)"
            ));
        }
        let began_ms = medic_model::SystemClock.now_ms();
        let id = medic_backup::manifest_id(began_ms);
        let dir = self.root.join(&id);
        if dir.exists() {
            return Err(format!("a snapshot {id} is being taken; try again"));
        }
        let st2 = st.clone();
        let dir2 = dir.clone();
        let id2 = id.clone();
        let taken = tokio::task::spawn_blocking(move || {
            let config_file = st2.reloader.config_file().map(Path::to_path_buf);
            snapshot::take(
                &dir2,
                &id2,
                began_ms,
                &st2.config,
                config_file.as_deref(),
                &st2.db,
            )
        })
        .await
        .map_err(|e| e.to_string())?;
        let snap = match taken {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        self.metrics.snapshots.inc();
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (snap.clone(), Instant::now()));
        Ok(snap)
    }

    /// A held snapshot (and marks it used, so it does not expire while read).
    pub fn get(&self, id: &str) -> Option<Snapshot> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get_mut(id).map(|(s, used)| {
            *used = Instant::now();
            s.clone()
        })
    }

    /// Removes a snapshot. `false` when there was none.
    pub fn release(&self, id: &str) -> bool {
        let removed = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        match removed {
            Some((s, _)) => {
                if let Err(e) = std::fs::remove_dir_all(&s.dir) {
                    warn!(dir = %s.dir.display(), error = %e, "cannot remove a snapshot");
                }
                true
            }
            None => false,
        }
    }

    fn expire(&self) {
        let stale: Vec<String> = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, (_, used))| used.elapsed() > SNAPSHOT_IDLE)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            warn!(id, "removing a snapshot no backup has read for an hour");
            self.release(&id);
        }
    }

    /// Runs scheduled backups to `backup.destination` every `backup.interval` until `stop`.
    pub async fn run(
        st: Arc<AppState>,
        stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) {
        let cfg = st.config.backup.clone();
        let Some(dest) = cfg.destination.clone() else {
            return;
        };
        let every = cfg.interval.duration().max(Duration::from_secs(1));
        info!(destination = %dest.display(), every = ?every, "scheduled backups on");
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(every) => {}
            }
            let start = Instant::now();
            let result = scheduled_once(&st, &dest).await;
            let b = &st.backups;
            let now = medic_model::SystemClock.now_ms();
            match &result {
                Ok(v) => {
                    b.metrics.succeeded.inc();
                    b.metrics.last_success.set(now as f64 / 1000.0);
                    b.metrics.last_duration.set(start.elapsed().as_secs_f64());
                    if let Some(n) = v["backup"]["copied_bytes"].as_u64() {
                        b.metrics.copied_bytes.inc_by(n);
                    }
                    info!(summary = %v, "scheduled backup done");
                }
                Err(e) => {
                    b.metrics.failed.inc();
                    warn!(error = %e, "scheduled backup failed");
                }
            }
            *b.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, result));
        }
    }
}

/// One scheduled backup: snapshot, copy, prune, release.
async fn scheduled_once(st: &Arc<AppState>, dest: &Path) -> Result<serde_json::Value, String> {
    let snap = st.backups.take(st).await?;
    let cfg = st.config.backup.clone();
    let dest = dest.to_path_buf();
    let snap2 = snap.clone();
    let done = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, String> {
        let opts = medic_backup::WriteOptions {
            recipients: cfg.recipients()?,
            began_ms: snap2.began_ms,
            medic_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let source = medic_backup::LocalSource::new(&snap2.dir).map_err(|e| e.to_string())?;
        let written = medic_backup::write_backup(&dest, &source, &opts, &medic_backup::NoProgress)
            .map_err(|e| e.to_string())?;
        let pruned = medic_backup::prune(&dest, &cfg.keep).map_err(|e| e.to_string())?;
        Ok(serde_json::json!({"backup": written, "prune": pruned}))
    })
    .await
    .map_err(|e| e.to_string());
    st.backups.release(&snap.id);
    done?
}
