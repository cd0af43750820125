use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medic_heal::engine::{BoxFuture, Hooks, Notification};
use medic_heal::{Engine, Execution, HealStore, MemStore, Options, Playbook, Status};
use medic_model::{InstantQuery, Labels, MemStorage, QueryError, QuerySeries, Sample, SystemClock};

/// PromQL over a MemStorage, as the server wires it over the TSDB.
pub struct Prom {
    pub store: Arc<MemStorage>,
    engine: medic_promql::Engine,
}

impl Prom {
    pub fn new() -> Arc<Prom> {
        Arc::new(Prom {
            store: Arc::new(MemStorage::new()),
            engine: medic_promql::Engine::default(),
        })
    }

    /// Sets a gauge: one sample now.
    pub fn set(&self, series: &str, v: f64) {
        let labels = medic_model::parse_selector(series).unwrap();
        let labels = Labels::from_pairs(labels.iter().map(|m| (m.name.as_str(), m.value.as_str())));
        let now = medic_model::Clock::now_ms(&SystemClock);
        self.store.add(labels, &[Sample { t: now, v }]);
    }
}

impl InstantQuery for Prom {
    fn instant(&self, expr: &str, t: i64) -> Result<Vec<QuerySeries>, QueryError> {
        match self
            .engine
            .instant(&*self.store, expr, t)
            .map_err(|e| QueryError::Failed(e.to_string()))?
        {
            medic_promql::Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| QuerySeries {
                    labels: s.labels,
                    samples: vec![(s.t, s.v)],
                })
                .collect()),
            medic_promql::Value::Scalar(v) => Ok(vec![QuerySeries {
                labels: Labels::empty(),
                samples: vec![(t, v)],
            }]),
            _ => Err(QueryError::NotSeries {
                expr: expr.to_string(),
                kind: "string or matrix",
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

/// Hooks that record what the engine tells the alert manager.
#[derive(Default)]
pub struct Recorder {
    pub resolved: Mutex<BTreeMap<String, bool>>,
    pub notes: Mutex<Vec<Option<String>>>,
    pub sent: Mutex<Vec<Notification>>,
}

impl Hooks for Recorder {
    fn alert_resolved(&self, labels: &BTreeMap<String, String>) -> Option<bool> {
        let key = labels.get("alertname").cloned().unwrap_or_default();
        self.resolved.lock().unwrap().get(&key).copied()
    }
    fn repairing(&self, _: &BTreeMap<String, String>, note: Option<String>) {
        self.notes.lock().unwrap().push(note);
    }
    fn notify(&self, n: Notification) -> BoxFuture<Result<(), medic_heal::engine::NotifyError>> {
        self.sent.lock().unwrap().push(n);
        Box::pin(async { Ok(()) })
    }
}

pub struct Rig {
    pub engine: Arc<Engine>,
    pub store: Arc<MemStore>,
    pub hooks: Arc<Recorder>,
    pub prom: Arc<Prom>,
    pub dir: tempfile::TempDir,
}

pub fn playbook(dir: &Path, yaml: &str) -> Playbook {
    let path = dir.join("pb.yml");
    std::fs::write(&path, yaml).unwrap();
    Playbook::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

impl Rig {
    pub fn new(yamls: &[&str], opts: Options) -> Rig {
        Self::with_store(yamls, opts, Arc::new(MemStore::new()))
    }

    pub fn with_store(yamls: &[&str], opts: Options, store: Arc<MemStore>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let pbs = yamls
            .iter()
            .map(|y| playbook(dir.path(), &y.replace("$DIR", dir.path().to_str().unwrap())))
            .collect();
        let hooks = Arc::new(Recorder::default());
        let prom = Prom::new();
        let engine = Engine::new(
            pbs,
            opts,
            store.clone(),
            prom.clone(),
            hooks.clone(),
            Arc::new(SystemClock),
            Default::default(),
        )
        .unwrap();
        Rig {
            engine,
            store,
            hooks,
            prom,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// Waits until the execution is in a final state.
    pub async fn settle(&self, id: &str) -> Execution {
        for _ in 0..400 {
            let e = self.store.execution(id).unwrap().unwrap();
            if e.status.is_final() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "execution {id} did not end: {:?}",
            self.store.execution(id).unwrap()
        );
    }

    /// Waits until the execution reaches `status`.
    pub async fn wait_for(&self, id: &str, status: Status) -> Execution {
        for _ in 0..400 {
            let e = self.store.execution(id).unwrap().unwrap();
            if e.status == status {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "execution {id} never reached {status:?}: {:?}",
            self.store.execution(id).unwrap()
        );
    }

    pub async fn trigger(&self, pb: &str, labels: &[(&str, &str)]) -> Execution {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.engine.trigger(pb, labels, "test").await.unwrap()
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
