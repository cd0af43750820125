//! The heal engine in `medic run`: PromQL answers for it, and the alert manager as its source
//! of alerts and its way to people.

use std::collections::BTreeMap;
use std::sync::Arc;

use medic_alert::{Alert, AlertManager, AlertSource, Fingerprint};
use medic_heal::engine::AlertOrigin;
use medic_heal::engine::{BoxFuture, Hooks, Notification, NotifyError};
use medic_model::{InstantQuery, Labels, QueryError, QuerySeries, Queryable};

/// PromQL over medic's store, for the heal engine.
pub struct PromQuery {
    pub engine: medic_promql::Engine,
    pub store: Arc<dyn Queryable>,
    /// The log store, for `logs:` collectors.
    pub logs: Option<medic_logs::store::LogStore>,
    /// The store that answers PromQL instead of `store` (`query.backend`); logs stay local.
    pub backend: Option<Arc<dyn InstantQuery>>,
}

impl InstantQuery for PromQuery {
    fn logs(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<medic_model::LogLine>, QueryError> {
        use medic_logs::logql::{self, ast::Expr, logs, Direction};
        let store = self
            .logs
            .as_ref()
            .ok_or_else(|| QueryError::Failed("logs are disabled (logs.enabled: false)".into()))?;
        let Expr::Log(l) = logql::parse(expr).map_err(|e| QueryError::Failed(e.to_string()))?
        else {
            return Err(QueryError::NotSeries {
                expr: expr.to_string(),
                kind: "metric query",
            });
        };
        let ms = 1_000_000;
        let streams = logs::query_logs(
            store,
            &l,
            start.saturating_mul(ms),
            end.saturating_mul(ms),
            limit,
            Direction::Backward,
        )
        .map_err(|e| QueryError::Failed(e.to_string()))?;
        let mut lines: Vec<medic_model::LogLine> = streams
            .into_iter()
            .flat_map(|s| {
                let labels = s.labels;
                s.entries
                    .into_iter()
                    .map(move |(ts_ns, line)| medic_model::LogLine {
                        ts_ns,
                        labels: labels.clone(),
                        line,
                    })
            })
            .collect();
        lines.sort_by_key(|l| std::cmp::Reverse(l.ts_ns));
        Ok(lines)
    }

    fn instant(&self, expr: &str, t: i64) -> Result<Vec<QuerySeries>, QueryError> {
        use medic_promql::Value;
        if let Some(b) = &self.backend {
            return b.instant(expr, t);
        }
        match self
            .engine
            .instant(&*self.store, expr, t)
            .map_err(|e| QueryError::Failed(e.to_string()))?
        {
            Value::Scalar(v) => Ok(vec![QuerySeries {
                labels: Labels::empty(),
                samples: vec![(t, v)],
            }]),
            // Histograms have no float value to decide on: left out.
            Value::Vector(v) => Ok(v
                .into_iter()
                .filter(|s| s.h.is_none())
                .map(|s| QuerySeries {
                    labels: s.labels,
                    samples: vec![(s.t, s.v)],
                })
                .collect()),
            Value::Matrix(m) => Ok(m
                .into_iter()
                .map(|s| QuerySeries {
                    labels: s.labels,
                    samples: s.samples.iter().map(|p| (p.t, p.v)).collect(),
                })
                .collect()),
            Value::String(_) => Err(QueryError::NotSeries {
                expr: expr.to_string(),
                kind: "string",
            }),
        }
    }

    fn range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<QuerySeries>, QueryError> {
        if let Some(b) = &self.backend {
            return b.range(expr, start, end, step);
        }
        let r = self
            .engine
            .range(&*self.store, expr, start, end, step)
            .map_err(|e| QueryError::Failed(e.to_string()))?;
        Ok(r.into_iter()
            .map(|s| QuerySeries {
                labels: s.labels,
                samples: s.samples.iter().map(|p| (p.t, p.v)).collect(),
            })
            .collect())
    }
}

/// The alert manager as the heal engine sees it (with the audit log, and the incidents that
/// follow repairs).
pub struct AlertHooks(
    pub Arc<AlertManager>,
    pub Arc<dyn medic_model::AuditSink>,
    pub Arc<crate::incidents::Incidents>,
    /// The leader lease, when replicas share the state: every action is fenced by it.
    pub Option<Arc<crate::ha::Leader>>,
);

fn fingerprint(labels: &BTreeMap<String, String>) -> Fingerprint {
    Fingerprint::of(&Labels::from_pairs(
        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

impl Hooks for AlertHooks {
    fn fence(&self) -> medic_heal::hooks::BoxFuture<Result<(), String>> {
        let leader = self.3.clone();
        Box::pin(async move {
            if let Some(l) = leader {
                // Exits the process when the lease is not surely this replica's.
                tokio::task::spawn_blocking(move || l.fence_or_exit())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    fn alert_resolved(&self, labels: &BTreeMap<String, String>) -> Option<bool> {
        let a = self.0.get(fingerprint(labels))?;
        Some(a.resolved_at(self.0.now()))
    }

    fn repairing(&self, labels: &BTreeMap<String, String>, note: Option<String>) {
        self.0.set_repair(fingerprint(labels), note);
    }

    fn audit(&self, entry: medic_model::AuditEntry) {
        self.1.record(entry);
    }

    fn journaled(&self, e: &medic_heal::journal::Execution) {
        self.2.journaled(e);
    }

    fn notify(&self, n: Notification) -> BoxFuture<Result<(), NotifyError>> {
        let am = self.0.clone();
        Box::pin(async move {
            let now = am.now();
            let labels = Labels::from_pairs([
                ("alertname", "MedicHeal"),
                ("medic_event", n.event.as_str()),
                ("playbook", n.playbook.as_str()),
                ("target", n.target.as_str()),
            ]);
            let mut annotations = BTreeMap::new();
            annotations.insert("summary".to_string(), n.title.clone());
            annotations.insert("description".to_string(), n.text.clone());
            annotations.insert("execution".to_string(), n.execution.clone());
            let alert = Alert {
                labels,
                annotations,
                starts_at: now,
                // A success closes the matter: it goes out as resolved.
                ends_at: if n.event == medic_heal::kinds::NotifyEvent::Success {
                    now
                } else {
                    0
                },
                generator_url: String::new(),
                updated_at: now,
                timeout: false,
                value: None,
                source: Default::default(),
            };
            let mut failures = Vec::new();
            for r in &n.receivers {
                if let Err(e) = am.send_direct(r, vec![alert.clone()]).await {
                    failures.push((r.clone(), e));
                }
            }
            if failures.is_empty() {
                Ok(())
            } else {
                Err(NotifyError { failures })
            }
        })
    }
}

/// Connects the alert manager's alerts to the engine.
pub fn observe(am: &AlertManager, heal: Arc<medic_heal::Engine>) {
    am.set_observer(Arc::new(move |alerts: &[Arc<Alert>]| {
        let inputs: Vec<medic_heal::AlertInput> = alerts.iter().map(|a| alert_input(a)).collect();
        heal.on_alerts(&inputs);
    }));
}

/// An alert as the heal engine takes it.
pub fn alert_input(a: &Alert) -> medic_heal::AlertInput {
    medic_heal::AlertInput {
        fingerprint: a.fingerprint().to_string(),
        origin: match &a.source {
            AlertSource::Unknown => AlertOrigin::Unknown,
            AlertSource::Rules => AlertOrigin::Rules,
            AlertSource::Anomaly => AlertOrigin::Anomaly,
            AlertSource::Api {
                identity,
                may_trigger,
            } => AlertOrigin::Api {
                identity: identity.clone(),
                may_trigger: *may_trigger,
            },
        },
        labels: a
            .labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect(),
        annotations: a.annotations.clone(),
        starts_at: a.starts_at,
        ends_at: a.ends_at,
    }
}
