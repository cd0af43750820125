//! Anomaly detectors in `medic run`: saved to and restored from
//! `<storage.path>/anomaly-detectors.json`, so baselines survive restarts.

use std::path::{Path, PathBuf};

use medic_rules::RuleSnapshot;
use tracing::{info, warn};

/// How often detectors are saved while medic runs (and once more at shutdown).
pub const SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Where detectors are saved.
pub fn snapshot_path(storage: &Path) -> PathBuf {
    storage.join("anomaly-detectors.json")
}

/// Reads saved detectors. A missing file is an empty start; an unreadable one is logged and
/// set aside (renamed `.bad`), so a damaged file costs the baselines, never the start.
pub fn load_snapshot(path: &Path) -> Vec<RuleSnapshot> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read anomaly detectors; starting without them");
            return Vec::new();
        }
    };
    match serde_json::from_str::<Vec<RuleSnapshot>>(&text) {
        Ok(s) => {
            info!(path = %path.display(), rules = s.len(), "anomaly detectors read");
            s
        }
        Err(e) => {
            let bad = path.with_extension("json.bad");
            warn!(path = %path.display(), error = %e, moved_to = %bad.display(), "anomaly detectors file is damaged; starting without them");
            let _ = std::fs::rename(path, bad);
            Vec::new()
        }
    }
}

/// Writes detectors atomically: a temporary file, fsync, rename.
pub fn save_snapshot(path: &Path, snaps: &[RuleSnapshot]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(snaps).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
