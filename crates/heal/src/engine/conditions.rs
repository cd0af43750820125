//! Condition triggers (a query's series holding for a while start a playbook) and the
//! hourly pruning of old records.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tracing::{info, warn};

use super::{CondState, Engine};
use crate::evidence::labels_map;
use crate::journal::TriggerInfo;
use crate::kinds::TriggerKind;
use crate::playbook::{Playbook, Trigger};

impl Engine {
    /// Evaluates condition triggers, prunes old records; until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_prune = 0;
        loop {
            let interval = self.lock().opts.condition_interval.max(100);
            let next = self.now() + interval;
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.sleep_until(next) => {}
            }
            self.evaluate_conditions().await;
            let now = self.now();
            if now - last_prune > 3_600_000 {
                last_prune = now;
                let retention = self.lock().opts.retention;
                match self.store.prune(now - retention) {
                    Ok(n) if n > 0 => info!(executions = n, "pruned old executions"),
                    Ok(_) => {}
                    Err(err) => warn!(error = %err, "cannot prune executions"),
                }
                let mut g = self.lock();
                g.guards.gc(now - 24 * 3_600_000);
                g.handled.retain(|_, (_, at)| *at >= now - 24 * 3_600_000);
            }
        }
    }

    /// One round of condition triggers.
    pub async fn evaluate_conditions(self: &Arc<Self>) {
        let conds: Vec<Arc<Playbook>> = self
            .lock()
            .playbooks
            .values()
            .filter(|p| matches!(p.trigger, Trigger::Condition { .. }))
            .cloned()
            .collect();
        for pb in conds {
            let Trigger::Condition { query, for_ } = &pb.trigger else {
                continue;
            };
            let now = self.now();
            let series = match self.instant(query, now).await {
                Ok(s) => s,
                Err(err) => {
                    warn!(playbook = %pb.name, error = %err, "condition query failed");
                    continue;
                }
            };
            let mut due = Vec::new();
            {
                let mut g = self.lock();
                let mut seen = Vec::new();
                for s in &series {
                    let labels = labels_map(&s.labels);
                    let key = (pb.name.clone(), s.labels.to_string());
                    seen.push(key.clone());
                    let st = g.conditions.entry(key).or_insert(CondState {
                        since: now,
                        labels: labels.clone(),
                        triggered: false,
                    });
                    if !st.triggered && now - st.since >= *for_ {
                        st.triggered = true;
                        due.push((st.labels.clone(), st.since));
                    }
                }
                g.conditions
                    .retain(|k, _| k.0 != pb.name || seen.contains(k));
            }
            for (labels, since) in due {
                let t = TriggerInfo {
                    kind: TriggerKind::Condition,
                    fingerprint: None,
                    labels,
                    annotations: BTreeMap::new(),
                    starts_at: since,
                    received_at: now,
                    by: None,
                };
                let this = self.clone();
                let pb = pb.clone();
                self.runtime.spawn(async move {
                    this.consider(pb, t, false).await;
                });
            }
        }
    }
}
