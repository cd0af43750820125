//! `medic demo`: the whole loop in one command. It starts a small web service (the patients)
//! as real child processes, medic itself (`medic run`) on the configuration in
//! `examples/demo/`, and then injects one fault after another — crash, memory leak, bad deploy,
//! saturation, a filling log directory — with quiet, noisy-but-healthy periods between them in
//! which medic must do nothing. It prints what happens as it happens and a table per fault.

mod monitor;
mod process;
mod scenario;

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

use monitor::{get_json, spawn_monitor, Seen};
use process::{Listen, MedicProcess, Spawner};
use scenario::{outcome_mark, spawn_load, Demo, FaultResult};
use supervisor::{Supervisor, Trouble};
use view::Timeline;

use crate::client::table_string;

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

    /// Where medic listens. Default 127.0.0.1:9099, or a free port if that one is taken;
    /// port 0 (127.0.0.1:0) means any free port.
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
    let stop = watch_signals()?;
    let (faults, trouble, expect) = plan(args);
    let timeline = Arc::new(Timeline::new());
    let d = start(args, dir, trouble, timeline.clone()).await?;
    if args.trouble == Some(TroubleKind::RestartMedic) {
        kill_medic_on_first_restart(&d);
    }
    spawn_monitor(d.clone());
    spawn_ticker(timeline.clone());
    wait_for_scrapes(&d).await?;
    timeline.event("●", "medic scrapes all three every second");
    let schedule_start = Instant::now();
    let (results, quiet_execs) = run_schedule(&d, &faults, expect, args, &stop).await?;
    let ok = report(
        &d,
        args,
        &faults,
        &results,
        &quiet_execs,
        schedule_start.elapsed(),
    )
    .await?;
    let (timeline, medic, sup) = (&d.timeline, &d.medic, &d.sup);
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
    let url = format!("http://{}", medic.listen());
    timeline.plain(format!(
        "\nThe demo keeps running (traffic continues) so you can look around; Ctrl-C stops it.\n  {url}/console/                         the web console (alerts, repairs, queries)\n  {url}/api/v1/alerts                    alerts from the rules\n  {url}/api/v1/medic/heal/executions     repairs, with evidence and every step\n  {url}/api/v1/query?query=up            PromQL (Grafana can use medic as a Prometheus)\n  medic heal list --url {url}\n  medic heal show ID --url {url}\n  medic alerts history --url {url}\n  medic anomalies --url {url}\n  medic query --url {url} 'sum by (instance) (rate(demo_http_requests_total[10s]))'"
    ));
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    timeline.plain("stopping…");
    medic.stop();
    sup.stop_all();
    Ok(if ok { 0 } else { 1 })
}

/// Ctrl-C, a closed terminal (SIGHUP) and SIGTERM all end the demo the same way: children
/// stopped, working directory removed.
fn watch_signals() -> anyhow::Result<Arc<AtomicBool>> {
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
    Ok(stop)
}

/// The faults to inject, the patients' trouble and the ending expected of each fault.
fn plan(args: &DemoArgs) -> (Vec<Fault>, Trouble, Expect) {
    match args.trouble {
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
    }
}

/// Starts the patients and medic (with 30 minutes of past traffic), sends the base load and
/// waits until medic is ready.
async fn start(
    args: &DemoArgs,
    dir: &Path,
    trouble: Trouble,
    timeline: Arc<Timeline>,
) -> anyhow::Result<Arc<Demo>> {
    let exe = std::env::current_exe().context("finding the medic binary")?;
    let dir = dir.to_path_buf();
    let sup = Supervisor::start(exe.clone(), dir.clone(), timeline.clone(), trouble).await?;
    write_config(&dir, &sup.addr.to_string())?;
    let listen = Listen::pick(args.listen.clone())?;
    let medic = Arc::new(MedicProcess {
        exe: exe.clone(),
        dir: dir.clone(),
        listen: Mutex::new(listen),
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
        let retries = AtomicU64::new(0);
        wait_until("medic to start", Duration::from_secs(30), || {
            let (c, m) = (c.clone(), m.clone());
            // A port the demo picked and another process took in the moment before medic
            // bound it: pick another, a few times.
            let taken = m.exited().is_some()
                && m.listen.lock().unwrap().picked()
                && m.port_was_taken()
                && retries.fetch_add(1, Ordering::Relaxed) < 3;
            async move {
                if taken {
                    m.kill();
                    return m.repick().and_then(|_| m.start()).is_err();
                }
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
    timeline.event("●", format!("medic listening on http://{}", medic.listen()));
    Ok(Arc::new(Demo {
        timeline: timeline.clone(),
        medic: medic.clone(),
        sup: sup.clone(),
        client: client.clone(),
        seen: Arc::new(Mutex::new(Seen::default())),
        load,
    }))
}

/// Kills medic the moment its restart request arrives, then starts it again: the action's
/// outcome is unknown to it, and it must verify rather than restart twice.
fn kill_medic_on_first_restart(d: &Demo) {
    let m = d.medic.clone();
    let tl = d.timeline.clone();
    let once = AtomicBool::new(false);
    d.sup.set_restart_hook(Box::new(move |name| {
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

fn spawn_ticker(tl: Arc<Timeline>) {
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(120)).await;
            n += 1;
            tl.tick(n);
        }
    });
}

async fn wait_for_scrapes(d: &Demo) -> anyhow::Result<()> {
    let (client, medic, sup, timeline) = (&d.client, &d.medic, &d.sup, &d.timeline);

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
    Ok(())
}

/// Injects each fault in turn, follows it to its end, and watches the quiet periods.
async fn run_schedule(
    d: &Arc<Demo>,
    faults: &[Fault],
    expect: Expect,
    args: &DemoArgs,
    stop: &AtomicBool,
) -> anyhow::Result<(Vec<FaultResult>, Vec<Execution>)> {
    let (timeline, medic) = (&d.timeline, &d.medic);
    let dir = &medic.dir;
    let mut results = Vec::new();
    let mut quiet_execs = d.quiet(args.quiet, stop).await;
    for f in faults {
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
            .follow(*f, expect, injected, args.fault_timeout, stop)
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
        quiet_execs.extend(d.quiet(args.quiet, stop).await);
    }
    Ok((results, quiet_execs))
}

/// The closing table and figures; the JSON summary when asked. Whether every fault ended as
/// expected and medic stayed still in the quiet periods.
async fn report(
    d: &Demo,
    args: &DemoArgs,
    faults: &[Fault],
    results: &[FaultResult],
    quiet_execs: &[Execution],
    schedule: Duration,
) -> anyhow::Result<bool> {
    let (timeline, medic, sup, client) = (&d.timeline, &d.medic, &d.sup, &d.client);
    let quiet_actions: Vec<&Execution> = quiet_execs
        .iter()
        .filter(|e| e.steps.iter().any(|s| s.kind == "action"))
        .collect();
    // The closing table.
    let mut rows = Vec::new();
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.1}s"));
    for r in results {
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
    let anomalies = get_json(client, &medic.url("/api/v1/medic/anomalies"))
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
    Ok(ok)
}
