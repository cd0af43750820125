//! One fault at a time: inject it, follow medic until the repair is verified (or the scenario's expected end), and the quiet periods in which medic must do nothing.

use super::monitor::Seen;
use super::process::MedicProcess;
use super::*;

pub(super) struct Demo {
    pub(super) timeline: Arc<Timeline>,
    pub(super) medic: Arc<MedicProcess>,
    pub(super) sup: Arc<Supervisor>,
    pub(super) client: reqwest::Client,
    pub(super) seen: Arc<Mutex<Seen>>,
    pub(super) load: Arc<AtomicU64>,
}

impl Demo {
    pub(super) fn set_load(&self, rps: f64) {
        self.load.store(rps.to_bits(), Ordering::Relaxed);
    }

    pub(super) async fn patient_post(&self, name: &str, path: &str) -> anyhow::Result<()> {
        let port = self
            .sup
            .port_of(name)
            .with_context(|| format!("no instance {name}"))?;
        let r = self
            .client
            .post(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => bail!("{name}{path}: {}", r.status()),
            // A crash may close the connection before answering.
            Err(_) if path == "/admin/crash" => Ok(()),
            Err(e) => bail!("{name}{path}: {e}"),
        }
    }

    pub(super) async fn inject(&self, f: Fault) -> anyhow::Result<()> {
        let target = f.target();
        match f {
            Fault::Crash => self.patient_post(target, "/admin/crash").await?,
            Fault::Leak => {
                self.patient_post(target, "/admin/leak?mb_per_sec=50")
                    .await?
            }
            Fault::BadDeploy => {
                let sup = self.sup.clone();
                tokio::task::spawn_blocking(move || sup.deploy("web-3", "v1.5.0-bad")).await??;
            }
            Fault::Saturation => self.set_load(SATURATING_LOAD),
            Fault::DiskFill => {
                let dir = self
                    .sup
                    .log_dir_of(target)
                    .with_context(|| format!("no instance {target}"))?;
                // A job that dumps rotated logs: 20 files of 4 MiB, then stops.
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    let chunk = vec![b'.'; 4 << 20];
                    for n in 1..=20 {
                        std::fs::write(dir.join(format!("app.log.{n}")), &chunk)?;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Ok(())
                })
                .await??;
            }
        }
        Ok(())
    }

    /// Executions created at or after `since` (ms).
    pub(super) fn executions_since(&self, since: i64) -> Vec<Execution> {
        self.seen
            .lock()
            .unwrap()
            .executions
            .values()
            .filter(|e| e.created_at >= since)
            .cloned()
            .collect()
    }

    /// Waits for the fault's outcome; the result for the table.
    pub(super) async fn follow(
        &self,
        f: Fault,
        expect: Expect,
        injected: i64,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> FaultResult {
        let key = format!("{}/{}", f.alert(), f.target());
        let deadline = Instant::now() + timeout;
        let mut reached = false;
        self.timeline.waiting(Some(format!(
            "waiting for medic to detect and repair the {} on {}",
            f.name(),
            f.target()
        )));
        loop {
            let execs: Vec<Execution> = self
                .executions_since(injected)
                .into_iter()
                .filter(|e| e.playbook == f.playbook())
                .collect();
            let firing = self.seen.lock().unwrap().firing.contains_key(&key);
            let done = match expect {
                Expect::Healed => execs.iter().any(|e| e.status == Status::Succeeded) && !firing,
                Expect::Escalated => execs.iter().any(|e| {
                    e.status == Status::Failed
                        && e.steps
                            .iter()
                            .any(|s| s.kind == "rollback" && s.state == StepState::Succeeded)
                }),
                Expect::BreakerOpened => execs
                    .iter()
                    .any(|e| e.steps.iter().any(|s| s.name == "circuit_breaker")),
            };
            if done {
                reached = true;
                break;
            }
            if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.timeline.waiting(None);
        let execs: Vec<Execution> = self
            .executions_since(injected)
            .into_iter()
            .filter(|e| e.playbook == f.playbook())
            .collect();
        // When the alert fired: the rules engine's own time, as the executions' triggers carry
        // it, or else when the timeline first saw it firing (polled every 100 ms).
        let seen_firing = self
            .seen
            .lock()
            .unwrap()
            .fired
            .iter()
            .find(|(k, at)| *k == key && *at >= injected)
            .map(|(_, at)| *at);
        let fired = execs
            .iter()
            .filter(|e| e.trigger.labels.get("alertname").map(String::as_str) == Some(f.alert()))
            .map(|e| e.trigger.starts_at)
            .filter(|&t| t >= injected)
            .min();
        let detected = match (fired, seen_firing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|at| (at - injected) as f64 / 1000.0);
        // Recovery is only claimed where healing was the expected end.
        let recovered = execs
            .iter()
            .filter(|_| expect == Expect::Healed)
            .filter(|e| e.status == Status::Succeeded)
            .flat_map(|e| e.steps.iter())
            .filter(|s| s.kind == "verify" && s.state == StepState::Succeeded)
            .filter_map(|s| s.ended_at)
            .min()
            .map(|at| (at - injected) as f64 / 1000.0);
        let actions: Vec<String> = execs
            .iter()
            .flat_map(|e| e.steps.iter())
            .filter(|s| s.kind == "action" || s.kind == "rollback")
            .map(|s| {
                let what = if s.kind == "rollback" {
                    format!("rollback of {}", s.name)
                } else {
                    s.name.clone()
                };
                format!("{what} ({})", s.state.as_str())
            })
            .collect();
        let outcome = if reached {
            expect.as_str().to_string()
        } else if let Some(e) = execs.last() {
            format!(
                "not {} in {timeout:?} (last: {})",
                expect.as_str(),
                e.status.as_str()
            )
        } else {
            format!("nothing happened in {timeout:?}")
        };
        FaultResult {
            fault: f.name().to_string(),
            target: f.target().to_string(),
            expected: expect.as_str().to_string(),
            outcome,
            ok: reached,
            detect_seconds: detected,
            recover_seconds: recovered,
            actions,
            executions: execs
                .iter()
                .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
                .collect(),
        }
    }

    /// A quiet period: load wobbles, a few requests fail, latency blips — nothing medic should
    /// act on. Returns the executions that started in it.
    pub(super) async fn quiet(&self, length: Duration, stop: &AtomicBool) -> Vec<Execution> {
        let start = now_ms();
        self.timeline.event(
            "·",
            format!(
                "quiet period ({:.0}s): traffic wobbles, a few errors and slow requests; medic should do nothing",
                length.as_secs_f64()
            ),
        );
        self.timeline
            .waiting(Some("quiet period: medic should do nothing".into()));
        let end = Instant::now() + length;
        let mut n = 0u64;
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            n += 1;
            let jitter = ((now_ms() / 7 % 41) as f64 - 20.0) / 100.0;
            self.set_load(BASE_LOAD * (1.0 + jitter));
            let serving = self.sup.serving();
            if !serving.is_empty() {
                let (name, _) = &serving[(n as usize) % serving.len()];
                let path = match n % 3 {
                    0 => "/admin/errors?ratio=0.05&seconds=2",
                    1 => "/admin/latency?ms=40&seconds=2",
                    _ => "",
                };
                if !path.is_empty() {
                    let _ = self.patient_post(name, path).await;
                }
            }
            let left = end.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
        self.set_load(BASE_LOAD);
        self.timeline.waiting(None);
        let found = self.executions_since(start);
        let acted: Vec<&Execution> = found
            .iter()
            .filter(|e| e.steps.iter().any(|s| s.kind == "action"))
            .collect();
        if acted.is_empty() {
            self.timeline
                .event("·", "quiet period over: medic took no action");
        } else {
            self.timeline.event(
                "!",
                format!(
                    "quiet period over: medic acted {} time(s) — it should not have",
                    acted.len()
                ),
            );
        }
        found
    }
}

/// Sends the load to the instances in service, spread evenly, open loop.
pub(super) fn spawn_load(sup: Arc<Supervisor>, load: Arc<AtomicU64>, client: reqwest::Client) {
    tokio::spawn(async move {
        let tick = Duration::from_millis(50);
        let mut carry: HashMap<String, f64> = HashMap::new();
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let rps = f64::from_bits(load.load(Ordering::Relaxed));
            let serving = sup.serving();
            if serving.is_empty() {
                continue;
            }
            let each = rps / serving.len() as f64 * tick.as_secs_f64();
            for (name, port) in serving {
                let c = carry.entry(name).or_default();
                *c += each;
                while *c >= 1.0 {
                    *c -= 1.0;
                    let client = client.clone();
                    tokio::spawn(async move {
                        let _ = client.get(format!("http://127.0.0.1:{port}/")).send().await;
                    });
                }
            }
        }
    });
}

/// The timeline mark of a fault's end: a success only when it was healed; an escalation or an
/// open circuit breaker that the scenario expected is marked as what it is.
pub(super) fn outcome_mark(r: &FaultResult) -> &'static str {
    match (r.ok, r.expected.as_str()) {
        (false, _) => "❌",
        (true, "healed") => "✅",
        (true, "escalated") => "📟",
        (true, _) => "⏸",
    }
}

/// What the demo learned of one fault.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct FaultResult {
    pub(super) fault: String,
    pub(super) target: String,
    pub(super) expected: String,
    pub(super) outcome: String,
    pub(super) ok: bool,
    /// Seconds from injection until the alert was seen firing.
    pub(super) detect_seconds: Option<f64>,
    /// Seconds from injection until the repair was verified.
    pub(super) recover_seconds: Option<f64>,
    pub(super) actions: Vec<String>,
    pub(super) executions: Vec<Value>,
}
