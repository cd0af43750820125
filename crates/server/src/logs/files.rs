//! Tailing the files of `logs.files`: a poll every `logs.files_interval` on the blocking pool;
//! the lines and the positions they reach go into the store in one WAL record, and only then
//! does the tailer move on (see `medic_logs::tail`).

use std::sync::Arc;
use std::time::Duration;

use medic_logs::store::Error as StoreError;
use medic_logs::tail::{Tailer, CHECKPOINT_KEY};
use tracing::warn;

use super::{now_ns, Logs};

/// Follows the files until the task is dropped.
pub async fn run(logs: Arc<Logs>, mut tailer: Tailer, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let store = logs.store.clone();
        let result = tokio::task::spawn_blocking(move || {
            let now = now_ns();
            let (push, positions, errors) = tailer.poll(now);
            for e in errors {
                warn!(error = %e, "tailing a log file");
            }
            if push.is_empty() && positions == *tailer.committed() {
                return tailer;
            }
            let cp = [(CHECKPOINT_KEY.to_string(), Tailer::encode(&positions))];
            match store.push_with_checkpoints(push, now, &cp) {
                // Refused lines (too long, too old) are skipped for good, as a push's are.
                Ok(_) | Err(StoreError::Refused { .. }) => tailer.commit(positions),
                Err(e) => warn!(error = %e, "storing tailed lines failed; they are read again"),
            }
            tailer
        })
        .await;
        match result {
            Ok(t) => tailer = t,
            Err(e) => {
                warn!(error = %e, "the file tailer panicked; stopping it");
                return;
            }
        }
    }
}
