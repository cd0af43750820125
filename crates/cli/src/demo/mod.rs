//! `medic demo`: the whole loop in one command. It starts a small web service (the patients)
//! as real child processes, medic itself (`medic run`) on the configuration in
//! `examples/demo/`, and then injects one fault after another — crash, memory leak, bad deploy,
//! saturation, a filling log directory — with quiet, noisy-but-healthy periods between them in
//! which medic must do nothing. It prints what happens as it happens and a table per fault.

mod history;
mod patient;
mod supervisor;
mod view;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use medic_heal::journal::{Execution, Status, StepState};
use serde_json::{json, Value};

use supervisor::{Supervisor, Trouble};
use view::Timeline;

use crate::alerts_cmd::table_string;

/// The demo configuration, embedded so that the binary runs the demo from anywhere.
const FILES: &[(&str, &str)] = &[
    (
        "medic.yml",
        include_str!("../../../../examples/demo/medic.yml"),
    ),
    (
        "rules.yml",
        include_str!("../../../../examples/demo/rules.yml"),
    ),
    (
        "alertmanager.yml",
        include_str!("../../../../examples/demo/alertmanager.yml"),
    ),
    (
        "playbooks/restart-instance.yml",
        include_str!("../../../../examples/demo/playbooks/restart-instance.yml"),
    ),
    (
        "playbooks/restart-leaking-instance.yml",
        include_str!("../../../../examples/demo/playbooks/restart-leaking-instance.yml"),
    ),
    (
        "playbooks/rollback-bad-deploy.yml",
        include_str!("../../../../examples/demo/playbooks/rollback-bad-deploy.yml"),
    ),
    (
        "playbooks/scale-out.yml",
        include_str!("../../../../examples/demo/playbooks/scale-out.yml"),
    ),
    (
        "playbooks/clean-log-dir.yml",
        include_str!("../../../../examples/demo/playbooks/clean-log-dir.yml"),
    ),
];

/// The supervisor's address in the files; replaced by the one the demo chose.
const SUPERVISOR_PLACEHOLDER: &str = "127.0.0.1:9180";

/// Requests per second sent to the service in total, normally and while saturated.
const BASE_LOAD: f64 = 45.0;
const SATURATING_LOAD: f64 = 150.0;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    #[command(subcommand)]
    command: Option<DemoCommand>,

    #[command(flatten)]
    pub log: crate::LogArgs,

    /// Exit after the schedule instead of running until Ctrl-C: status 0 only if every fault
    /// ended as expected (healed, unless --trouble says otherwise) and medic took no action in
    /// a quiet period.
    #[arg(long)]
    once: bool,

    /// Faults to inject, in this order (comma-separated). Default: all five.
    #[arg(long, value_enum, value_delimiter = ',')]
    faults: Vec<Fault>,

    /// Length of each quiet, noisy-but-healthy period (before the first fault and after each).
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    quiet: Duration,

    /// Give up waiting for a fault's outcome after this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    fault_timeout: Duration,

    /// Run a scenario in which something goes wrong on purpose (see docs/demo.md).
    #[arg(long, value_enum)]
    trouble: Option<TroubleKind>,

    /// Working directory for the configuration, data and logs. Default: a new temporary
    /// directory, deleted at exit unless --keep.
    #[arg(long)]
    dir: Option<PathBuf>,

    /// Keep the temporary directory.
    #[arg(long)]
    keep: bool,

    /// Where medic listens. Default 127.0.0.1:9099, or a free port if that one is taken.
    #[arg(long)]
    listen: Option<String>,

    /// Also write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum DemoCommand {
    /// The demo's web service (started by `medic demo`; usable alone).
    #[command(hide = true)]
    Patient(patient::PatientArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// web-1's process exits.
    Crash,
    /// web-2 leaks memory, 50 MB/s.
    Leak,
    /// web-3 gets a version that fails 60 % of requests.
    BadDeploy,
    /// Traffic triples; the service needs another instance.
    Saturation,
    /// 80 MB of rotated logs land in web-1's log directory.
    DiskFill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TroubleKind {
    /// Saturation, but scaling out fails: medic rolls back and escalates.
    FailingAction,
    /// A crash that comes back after each restart: cooldown, then the circuit breaker.
    Recurring,
    /// A crash, with medic killed (SIGKILL) while it restarts the instance: it resumes and
    /// verifies without restarting twice.
    RestartMedic,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    medic_model::parse_duration(s).map_err(|e| e.to_string())
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Crash => "crash",
            Fault::Leak => "memory leak",
            Fault::BadDeploy => "bad deploy",
            Fault::Saturation => "saturation",
            Fault::DiskFill => "disk fill",
        }
    }

    /// Which instance it hits (the job for saturation).
    fn target(self) -> &'static str {
        match self {
            Fault::Crash | Fault::DiskFill => "web-1",
            Fault::Leak => "web-2",
            Fault::BadDeploy => "web-3",
            Fault::Saturation => "web",
        }
    }

    /// The alert medic should raise and the playbook that should repair it.
    fn alert(self) -> &'static str {
        match self {
            Fault::Crash => "InstanceDown",
            Fault::Leak => "MemoryLeak",
            Fault::BadDeploy => "HighErrorRate",
            Fault::Saturation => "ServiceSaturated",
            Fault::DiskFill => "LogDirFilling",
        }
    }

    fn playbook(self) -> &'static str {
        match self {
            Fault::Crash => "restart-instance",
            Fault::Leak => "restart-leaking-instance",
            Fault::BadDeploy => "rollback-bad-deploy",
            Fault::Saturation => "scale-out",
            Fault::DiskFill => "clean-log-dir",
        }
    }
}

/// How a fault should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Repaired and verified, the alert resolved.
    Healed,
    /// The action failed, was rolled back, and people were told.
    Escalated,
    /// The fault kept coming back: the circuit breaker paused the playbook.
    BreakerOpened,
}

impl Expect {
    fn as_str(self) -> &'static str {
        match self {
            Expect::Healed => "healed",
            Expect::Escalated => "escalated",
            Expect::BreakerOpened => "circuit breaker",
        }
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if let Some(DemoCommand::Patient(p)) = args.command {
        return patient::run(p);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("medic-demo")
        .build()
        .context("starting the async runtime")?;
    let code = runtime.block_on(demo(args))?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

fn now_ms() -> i64 {
    medic_model::Clock::now_ms(&medic_model::SystemClock)
}

/// Starts child processes from one thread that lives as long as the demo: a child's
/// parent-death signal fires when the *thread* that forked it exits, so children must not be
/// started from the runtime's short-lived blocking threads.
struct Spawner {
    tx: Mutex<std::sync::mpsc::Sender<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>>,
}

impl Spawner {
    fn new() -> Spawner {
        let (tx, rx) =
            std::sync::mpsc::channel::<(Command, std::sync::mpsc::Sender<std::io::Result<Child>>)>(
            );
        std::thread::Builder::new()
            .name("medic-demo-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("starting the spawner thread");
        Spawner { tx: Mutex::new(tx) }
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (reply, answer) = std::sync::mpsc::channel();
        let sent = self.tx.lock().unwrap().send((cmd, reply));
        sent.map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
        answer
            .recv()
            .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
    }
}

/// medic itself, `medic run` as a child process.
struct MedicProcess {
    exe: PathBuf,
    dir: PathBuf,
    listen: String,
    child: Mutex<Option<Child>>,
    spawner: Spawner,
}

impl MedicProcess {
    fn start(&self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("medic.log"))?;
        let mut cmd = Command::new(&self.exe);
        // medic dies with the demo however the demo ends (terminal closed, SIGTERM, even
        // SIGKILL): the kernel sends it SIGTERM when the thread that started it exits — the
        // spawner's, which lives as long as the demo.
        // SAFETY: prctl is async-signal-safe and touches only the child's own settings.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        cmd.arg("run")
            .arg("--config")
            .arg(self.dir.join("medic.yml"))
            .arg("--listen")
            .arg(&self.listen)
            .arg("--data")
            .arg(self.dir.join("data"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = self
            .spawner
            .spawn(cmd)
            .with_context(|| format!("starting {} run", self.exe.display()))?;
        *self.child.lock().unwrap() = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crash would.
    fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait.
    fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn exited(&self) -> Option<String> {
        let mut g = self.child.lock().unwrap();
        match g.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(st))) => Some(st.to_string()),
            _ => None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }
}

impl Drop for MedicProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The timeline mark of a fault's end: a success only when it was healed; an escalation or an
/// open circuit breaker that the scenario expected is marked as what it is.
fn outcome_mark(r: &FaultResult) -> &'static str {
    match (r.ok, r.expected.as_str()) {
        (false, _) => "❌",
        (true, "healed") => "✅",
        (true, "escalated") => "📟",
        (true, _) => "⏸",
    }
}

/// What the demo learned of one fault.
#[derive(Debug, Clone, serde::Serialize)]
struct FaultResult {
    fault: String,
    target: String,
    expected: String,
    outcome: String,
    ok: bool,
    /// Seconds from injection until the alert was seen firing.
    detect_seconds: Option<f64>,
    /// Seconds from injection until the repair was verified.
    recover_seconds: Option<f64>,
    actions: Vec<String>,
    executions: Vec<Value>,
}

/// Shared view of medic's state, refreshed by the monitor.
#[derive(Default)]
struct Seen {
    /// Firing alerts now: key → first seen firing (ms).
    firing: HashMap<String, i64>,
    /// Every time an alert was seen firing first: (key, ms).
    fired: Vec<(String, i64)>,
    executions: BTreeMap<String, Execution>,
    medic_down_since: Option<i64>,
}

fn alert_key(labels: &Value) -> String {
    format!(
        "{}/{}",
        labels["alertname"].as_str().unwrap_or("?"),
        labels["instance"]
            .as_str()
            .or(labels["job"].as_str())
            .unwrap_or("")
    )
}

struct Demo {
    timeline: Arc<Timeline>,
    medic: Arc<MedicProcess>,
    sup: Arc<Supervisor>,
    client: reqwest::Client,
    seen: Arc<Mutex<Seen>>,
    load: Arc<AtomicU64>,
}

impl Demo {
    fn set_load(&self, rps: f64) {
        self.load.store(rps.to_bits(), Ordering::Relaxed);
    }

    async fn patient_post(&self, name: &str, path: &str) -> anyhow::Result<()> {
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

    async fn inject(&self, f: Fault) -> anyhow::Result<()> {
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
    fn executions_since(&self, since: i64) -> Vec<Execution> {
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
    async fn follow(
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
    async fn quiet(&self, length: Duration, stop: &AtomicBool) -> Vec<Execution> {
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
fn spawn_load(sup: Arc<Supervisor>, load: Arc<AtomicU64>, client: reqwest::Client) {
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

/// Polls medic's APIs and prints what changed: alerts firing and resolved, executions and their
/// steps.
fn spawn_monitor(d: Arc<Demo>) {
    tokio::spawn(async move {
        let mut printed: HashMap<String, Vec<(String, String, StepState)>> = HashMap::new();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let alerts = get_json(&d.client, &d.medic.url("/api/v1/alerts")).await;
            let execs = get_json(
                &d.client,
                &d.medic.url("/api/v1/medic/heal/executions?limit=200"),
            )
            .await;
            let (Some(alerts), Some(execs)) = (alerts, execs) else {
                let mut s = d.seen.lock().unwrap();
                if s.medic_down_since.is_none() {
                    s.medic_down_since = Some(now_ms());
                }
                continue;
            };
            let now = now_ms();
            if let Some(since) = d.seen.lock().unwrap().medic_down_since.take() {
                if now - since > 1000 {
                    d.timeline.event(
                        "●",
                        format!(
                            "medic answers again (it was unreachable for {:.1}s)",
                            (now - since) as f64 / 1000.0
                        ),
                    );
                }
            }
            // Alerts.
            let mut firing_now = HashSet::new();
            for a in alerts["data"]["alerts"].as_array().into_iter().flatten() {
                if a["state"] != "firing" {
                    continue;
                }
                let key = alert_key(&a["labels"]);
                firing_now.insert(key.clone());
                let new = {
                    let mut s = d.seen.lock().unwrap();
                    if s.firing.contains_key(&key) {
                        false
                    } else {
                        s.firing.insert(key.clone(), now);
                        s.fired.push((key.clone(), now));
                        true
                    }
                };
                if new {
                    let at = a["activeAt"]
                        .as_str()
                        .and_then(medic_model::parse_rfc3339)
                        .unwrap_or(now);
                    d.timeline.event_at(
                        at,
                        "🔔",
                        format!(
                            "alert {} firing: {}",
                            a["labels"]["alertname"].as_str().unwrap_or("?"),
                            a["annotations"]["summary"].as_str().unwrap_or("")
                        ),
                    );
                }
            }
            let gone: Vec<String> = {
                let mut s = d.seen.lock().unwrap();
                let gone: Vec<String> = s
                    .firing
                    .keys()
                    .filter(|k| !firing_now.contains(*k))
                    .cloned()
                    .collect();
                for k in &gone {
                    s.firing.remove(k);
                }
                gone
            };
            for k in gone {
                d.timeline.event("🔕", format!("alert {k} resolved"));
            }
            // Executions.
            let list: Vec<Execution> = execs["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| serde_json::from_value(e.clone()).ok())
                .collect();
            for e in list.iter().rev() {
                let old = printed.entry(e.id.clone()).or_default();
                if old.is_empty() {
                    d.timeline.event_at(
                        e.created_at,
                        "▶",
                        format!(
                            "medic: playbook {} for {} (alert {})",
                            e.playbook,
                            e.target,
                            e.trigger
                                .labels
                                .get("alertname")
                                .map_or("-", String::as_str)
                        ),
                    );
                }
                for (i, s) in e.steps.iter().enumerate() {
                    let now_state = (s.kind.clone(), s.name.clone(), s.state);
                    if old.get(i) == Some(&now_state) {
                        continue;
                    }
                    if let Some(line) = describe_step(e, s) {
                        let at = match s.state {
                            StepState::Started => s.started_at,
                            _ => s.ended_at.unwrap_or(s.started_at),
                        };
                        d.timeline.event_at(at, line.0, format!("  {}", line.1));
                    }
                    if i < old.len() {
                        old[i] = now_state;
                    } else {
                        old.push(now_state);
                    }
                }
                let mut s = d.seen.lock().unwrap();
                let was_final = s.executions.get(&e.id).is_some_and(|p| p.status.is_final());
                s.executions.insert(e.id.clone(), e.clone());
                drop(s);
                if e.status.is_final() && !was_final {
                    let took = e
                        .finished_at
                        .map(|f| format!(" in {:.1}s", (f - e.created_at) as f64 / 1000.0))
                        .unwrap_or_default();
                    let mark = match e.status {
                        Status::Succeeded => "✅",
                        Status::Vetoed => "⛔",
                        _ => "❌",
                    };
                    d.timeline.event_at(
                        e.finished_at.unwrap_or(now),
                        mark,
                        format!(
                            "  {} {}{took}: {}",
                            e.playbook,
                            e.status.as_str(),
                            e.summary.lines().next().unwrap_or("")
                        ),
                    );
                }
            }
        }
    });
}

/// A timeline line for a step, when it is worth one.
fn describe_step(e: &Execution, s: &medic_heal::journal::Step) -> Option<(&'static str, String)> {
    let took = s
        .ended_at
        .map(|t| format!(" ({:.1}s)", (t - s.started_at) as f64 / 1000.0))
        .unwrap_or_default();
    let first_line = s.message.lines().next().unwrap_or("").to_string();
    Some(match (s.kind.as_str(), s.state) {
        ("guard", StepState::Failed) => ("⛔", format!("guard {}: {first_line}", s.name)),
        ("guard", _) => return None,
        ("collect", StepState::Succeeded) => ("🔎", format!("evidence: {}{took}", s.name)),
        ("collect", _) => return None,
        ("diagnose", StepState::Succeeded) => (
            "🔎",
            match &e.diagnosis {
                Some(d) if !d.description.is_empty() => {
                    format!("cause: {} — {}", d.cause, d.description)
                }
                _ => first_line,
            },
        ),
        ("diagnose", StepState::Failed) => ("?", format!("no diagnosis: {first_line}")),
        ("action", StepState::Started) => ("⚙", format!("action {} …", s.name)),
        ("action", st) => ("⚙", format!("action {} {}{took}", s.name, st.as_str())),
        ("verify", StepState::Started) => ("⏱", "verifying …".to_string()),
        ("verify", StepState::Succeeded) => ("✔", format!("verified: {first_line}")),
        ("verify", _) => ("✗", format!("verification: {first_line}")),
        ("rollback", StepState::Started) => return None,
        ("rollback", st) => ("↩", format!("rollback of {} {}{took}", s.name, st.as_str())),
        ("escalate", _) => ("📟", format!("escalated: {first_line}")),
        ("resume", _) => ("↻", format!("resumed after a restart: {first_line}")),
        ("notify", StepState::Succeeded) => ("✉", format!("reported to {}", s.name)),
        (_, StepState::Started) => return None,
        (k, st) => ("·", format!("{k} {} {}", s.name, st.as_str())),
    })
}

async fn get_json(c: &reqwest::Client, url: &str) -> Option<Value> {
    let r = c.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Writes the configuration into `dir`, with the supervisor's real address.
fn write_config(dir: &Path, supervisor: &str) -> anyhow::Result<()> {
    for (name, text) in FILES {
        let path = dir.join(name);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(&path, text.replace(SUPERVISOR_PLACEHOLDER, supervisor))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn pick_listen(asked: Option<String>) -> anyhow::Result<String> {
    if let Some(l) = asked {
        return Ok(l);
    }
    if std::net::TcpListener::bind("127.0.0.1:9099").is_ok() {
        return Ok("127.0.0.1:9099".into());
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(format!("127.0.0.1:{}", l.local_addr()?.port()))
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> F,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !f().await {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn demo(args: DemoArgs) -> anyhow::Result<i32> {
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("medic-demo-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    match run_demo(&args, &dir).await {
        Ok(code) => {
            if temporary && !args.keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Ok(code)
        }
        // Kept: the error may point at medic.log or a patient's stderr.log in it.
        Err(e) => Err(e.context(format!(
            "the demo failed; its working directory {} is kept",
            dir.display()
        ))),
    }
}

async fn run_demo(args: &DemoArgs, dir: &Path) -> anyhow::Result<i32> {
    // Ctrl-C, a closed terminal (SIGHUP) and SIGTERM all end the demo the same way: children
    // stopped, working directory removed.
    let stop = Arc::new(AtomicBool::new(false));
    {
        use tokio::signal::unix::{signal, SignalKind};
        let stop = stop.clone();
        let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = hup.recv() => {}
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            stop.store(true, Ordering::SeqCst);
        });
    }
    let exe = std::env::current_exe().context("finding the medic binary")?;
    let dir = dir.to_path_buf();
    let (faults, trouble, expect) = match args.trouble {
        None => (
            if args.faults.is_empty() {
                vec![
                    Fault::Crash,
                    Fault::Leak,
                    Fault::BadDeploy,
                    Fault::Saturation,
                    Fault::DiskFill,
                ]
            } else {
                args.faults.clone()
            },
            Trouble::default(),
            Expect::Healed,
        ),
        Some(TroubleKind::FailingAction) => (
            vec![Fault::Saturation],
            Trouble {
                scale_out_fails: true,
                ..Trouble::default()
            },
            Expect::Escalated,
        ),
        Some(TroubleKind::Recurring) => (
            vec![Fault::Crash],
            Trouble {
                crash_after_restart: Some(2.0),
                ..Trouble::default()
            },
            Expect::BreakerOpened,
        ),
        Some(TroubleKind::RestartMedic) => (vec![Fault::Crash], Trouble::default(), Expect::Healed),
    };

    let timeline = Arc::new(Timeline::new());
    let sup = Supervisor::start(exe.clone(), dir.clone(), timeline.clone(), trouble).await?;
    write_config(&dir, &sup.addr.to_string())?;
    let listen = pick_listen(args.listen.clone())?;
    let medic = Arc::new(MedicProcess {
        exe: exe.clone(),
        dir: dir.clone(),
        listen,
        child: Mutex::new(None),
        spawner: Spawner::new(),
    });
    timeline.plain(format!(
        "medic demo — the whole loop: a web service breaks, medic notices, repairs, verifies.\n  working directory: {}\n  configuration:     {}/medic.yml (from examples/demo/)",
        dir.display(),
        dir.display()
    ));
    {
        let sup = sup.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for _ in 0..3 {
                sup.add("v1.4.2")?;
            }
            Ok(())
        })
        .await??;
    }
    timeline.event("●", "started web-1, web-2, web-3 (the patients)");
    let data = dir.join("data");
    if !data.exists() {
        history::seed(&data, BASE_LOAD)?;
        timeline.event(
            "●",
            "wrote 30 minutes of past traffic, so the anomaly rule knows what normal looks like",
        );
    }
    medic.start()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let load = Arc::new(AtomicU64::new(BASE_LOAD.to_bits()));
    spawn_load(sup.clone(), load.clone(), client.clone());
    {
        let (c, m) = (client.clone(), medic.clone());
        wait_until("medic to start", Duration::from_secs(30), || {
            let (c, m) = (c.clone(), m.clone());
            async move {
                c.get(m.url("/-/ready"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await
        .with_context(|| {
            format!(
                "medic did not start; see {}",
                dir.join("medic.log").display()
            )
        })?;
    }
    timeline.event("●", format!("medic listening on http://{}", medic.listen));
    let d = Arc::new(Demo {
        timeline: timeline.clone(),
        medic: medic.clone(),
        sup: sup.clone(),
        client: client.clone(),
        seen: Arc::new(Mutex::new(Seen::default())),
        load,
    });
    if args.trouble == Some(TroubleKind::RestartMedic) {
        // Kill medic the moment its restart request arrives, then start it again: the action's
        // outcome is unknown to it, and it must verify rather than restart twice.
        let m = medic.clone();
        let tl = timeline.clone();
        let once = AtomicBool::new(false);
        sup.set_restart_hook(Box::new(move |name| {
            if once.swap(true, Ordering::SeqCst) {
                return;
            }
            m.kill();
            tl.event(
                "💥",
                format!("killed medic (SIGKILL) while it restarts {name}; starting it again"),
            );
            if let Err(e) = m.start() {
                tl.event("!", format!("cannot start medic again: {e:#}"));
            }
        }));
    }
    spawn_monitor(d.clone());
    {
        let tl = timeline.clone();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(120)).await;
                n += 1;
                tl.tick(n);
            }
        });
    }
    {
        let (c, m) = (client.clone(), medic.clone());
        let n = sup.count();
        timeline.waiting(Some("waiting for the first scrapes".into()));
        wait_until(
            "the instances to be scraped",
            Duration::from_secs(30),
            || {
                let (c, m) = (c.clone(), m.clone());
                async move {
                    get_json(
                        &c,
                        &m.url("/api/v1/query?query=count(up%7Bjob%3D%22web%22%7D%3D%3D1)"),
                    )
                    .await
                    .and_then(|v| {
                        v["data"]["result"][0]["value"][1]
                            .as_str()
                            .map(str::to_string)
                    })
                    .is_some_and(|v| v == n.to_string())
                }
            },
        )
        .await?;
        timeline.waiting(None);
    }
    timeline.event("●", "medic scrapes all three every second");

    let schedule_start = Instant::now();
    let mut results = Vec::new();
    let mut quiet_execs = d.quiet(args.quiet, &stop).await;
    for f in &faults {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(st) = medic.exited() {
            bail!(
                "medic exited ({st}); see {}",
                dir.join("medic.log").display()
            );
        }
        let injected = now_ms();
        timeline.event("💥", format!("fault: {} on {}", f.name(), f.target()));
        if let Err(e) = d.inject(*f).await {
            timeline.event("!", format!("could not inject the fault: {e:#}"));
        }
        let r = d
            .follow(*f, expect, injected, args.fault_timeout, &stop)
            .await;
        if *f == Fault::Saturation {
            d.set_load(BASE_LOAD);
        }
        timeline.event(
            outcome_mark(&r),
            format!(
                "{} on {}: {}{}",
                r.fault,
                r.target,
                r.outcome,
                r.recover_seconds
                    .map(|s| format!(", verified {s:.1}s after the fault"))
                    .unwrap_or_default()
            ),
        );
        results.push(r);
        quiet_execs.extend(d.quiet(args.quiet, &stop).await);
    }
    let schedule = schedule_start.elapsed();
    let quiet_actions: Vec<&Execution> = quiet_execs
        .iter()
        .filter(|e| e.steps.iter().any(|s| s.kind == "action"))
        .collect();

    // The closing table.
    let mut rows = Vec::new();
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.1}s"));
    for r in &results {
        rows.push(vec![
            r.fault.clone(),
            r.target.clone(),
            secs(r.detect_seconds),
            secs(r.recover_seconds),
            if r.actions.is_empty() {
                "-".into()
            } else {
                r.actions.join(", ")
            },
            match (r.ok, r.expected.as_str()) {
                (false, _) => format!("✘ {}", r.outcome),
                (true, "healed") => format!("✔ {}", r.outcome),
                // The scenario expected a failure handled well; that is no success to cheer.
                (true, _) => format!("• {} (as this scenario expects)", r.outcome),
            },
        ]);
    }
    let mut recover: Vec<f64> = results.iter().filter_map(|r| r.recover_seconds).collect();
    recover.sort_by(f64::total_cmp);
    let median = (!recover.is_empty()).then(|| {
        let n = recover.len();
        if n % 2 == 1 {
            recover[n / 2]
        } else {
            (recover[n / 2 - 1] + recover[n / 2]) / 2.0
        }
    });
    let all_ok = results.iter().all(|r| r.ok) && results.len() == faults.len();
    // What the anomaly rule saw (no playbook acts on it; it tells people).
    let anomalies = get_json(&client, &medic.url("/api/v1/medic/anomalies"))
        .await
        .and_then(|v| v["data"].as_array().cloned())
        .unwrap_or_default();
    let headers = ["FAULT", "TARGET", "DETECT", "RECOVER", "ACTIONS", "OUTCOME"];
    timeline.plain(format!("\n{}", table_string(&headers, &rows)));
    timeline.plain(format!(
        "fault → verified recovery: median {}, max {}; quiet periods: {} action(s) taken, {} execution(s) started; schedule took {:.0}s",
        secs(median),
        secs(recover.last().copied()),
        quiet_actions.len(),
        quiet_execs.len(),
        schedule.as_secs_f64()
    ));
    if !anomalies.is_empty() {
        let list: Vec<String> = anomalies
            .iter()
            .map(|a| {
                format!(
                    "{} on {} (score {:.2})",
                    a["rule"].as_str().unwrap_or("?"),
                    a["labels"]["job"].as_str().unwrap_or("?"),
                    a["peak"].as_f64().or(a["score"].as_f64()).unwrap_or(0.0)
                )
            })
            .collect();
        timeline.plain(format!(
            "anomaly detection: {} anomal{} — {}",
            anomalies.len(),
            if anomalies.len() == 1 { "y" } else { "ies" },
            list.join(", ")
        ));
    }
    let ok = all_ok && quiet_actions.is_empty();
    let summary = json!({
        "ok": ok,
        "trouble": args.trouble.map(|t| format!("{t:?}")),
        "faults": results,
        "median_recover_seconds": median,
        "max_recover_seconds": recover.last(),
        "quiet_actions": quiet_actions.len(),
        "quiet_executions": quiet_execs.len(),
        "anomalies": anomalies,
        "schedule_seconds": schedule.as_secs_f64(),
        "supervisor_calls": sup.calls(),
        "notifications": sup.notifications().iter().map(|(r, m)| json!({"receiver": r, "message": m})).collect::<Vec<_>>(),
    });
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if args.once || stop.load(Ordering::Relaxed) {
        timeline.plain(if ok {
            "every fault ended as expected and medic stayed still in the quiet periods."
        } else {
            "NOT every fault ended as expected, or medic acted in a quiet period (see above)."
        });
        medic.stop();
        sup.stop_all();
        return Ok(if ok { 0 } else { 1 });
    }
    let url = format!("http://{}", medic.listen);
    timeline.plain(format!(
        "\nThe demo keeps running (traffic continues) so you can look around; Ctrl-C stops it.\n  {url}/api/v1/alerts                    alerts from the rules\n  {url}/api/v1/medic/heal/executions     repairs, with evidence and every step\n  {url}/api/v1/query?query=up            PromQL (Grafana can use medic as a Prometheus)\n  medic heal list --url {url}\n  medic heal show ID --url {url}\n  medic alerts history --url {url}\n  medic anomalies --url {url}\n  medic query --url {url} 'sum by (instance) (rate(demo_http_requests_total[10s]))'"
    ));
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    timeline.plain("stopping…");
    medic.stop();
    sup.stop_all();
    Ok(if ok { 0 } else { 1 })
}
