//! The heal engine benchmark (no peer does this; figures are absolute):
//!
//! - **reaction**: one alert at a time POSTed to `/api/v2/alerts`; the time from sending it to
//!   the playbook's action starting (the journal's `action_started_at`), and to the repair
//!   being verified;
//! - **storm**: N distinct matching alerts in batches of 64 from 4 clients, with a playbook
//!   rate limit; executions judged per second (each one guarded and journaled), and the
//!   number of actions run, which must not exceed the limit;
//! - **recovery**: a real HTTP service (`crates/cli/testdata/heal/app.py`) scraped every
//!   second is crashed; the time from the crash to medic's verified restart.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::ingest::{self, median, now_ms, pct};

/// Arguments of `heal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Alerts in the storm.
    #[arg(long, default_value_t = 10_000)]
    storm: usize,
    /// Actions the playbook's rate limit allows per hour.
    #[arg(long, default_value_t = 50)]
    rate_limit: usize,
    /// Sequential alerts for the reaction time.
    #[arg(long, default_value_t = 30)]
    samples: usize,
    /// Rounds (fresh medic each).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The medic binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/medic")]
    medic: std::path::PathBuf,
    /// Where medic keeps its state: sqlite, or postgresql (a cluster the bench starts,
    /// Debian `postgresql`, fsync on; a fresh database per medic).
    #[arg(long, default_value = "sqlite")]
    state: String,
}

/// The config lines that put medic's state where `--state` says.
struct StateBackend {
    pg: Option<medic_testkit::Postgres>,
    _dir: tempfile::TempDir,
    databases: std::cell::Cell<usize>,
}

impl StateBackend {
    fn new(kind: &str) -> anyhow::Result<StateBackend> {
        let dir = tempfile::tempdir()?;
        let pg = match kind {
            "sqlite" => None,
            "postgresql" => Some(medic_testkit::Postgres::start_with(dir.path(), 40, true)),
            other => bail!("unknown --state {other:?}; use sqlite or postgresql"),
        };
        Ok(StateBackend {
            pg,
            _dir: dir,
            databases: std::cell::Cell::new(0),
        })
    }

    /// Config lines for the next medic (a fresh database each).
    fn config(&self) -> String {
        let Some(pg) = &self.pg else {
            return String::new();
        };
        let n = self.databases.get();
        self.databases.set(n + 1);
        let url = pg.database(&format!("heal{n}"));
        format!("state:\n  backend: postgresql\n  postgresql:\n    url: {url}\n")
    }
}

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];
const APP: &str = "crates/cli/testdata/heal/app.py";

fn playbook(rate_limit: usize) -> String {
    format!(
        r#"name: bench
trigger:
  alert: '{{bench="heal"}}'
  sources: [api]
target: '{{{{ $labels.instance }}}}'
collect:
  - name: up
    query: 'vector(1)'
diagnose:
  - cause: down
    when: 'up.value == 1.0'
    actions: [fix]
actions:
  fix:
    exec:
      command: ['true']
verify:
  exec:
    command: ['true']
  within: 10s
guards:
  rate_limit: {{max: {rate_limit}, per: 1h}}
"#
    )
}

async fn execution(
    c: &reqwest::Client,
    base: &str,
    instance: &str,
) -> anyhow::Result<Option<Value>> {
    let v: Value = c
        .get(format!("{base}/api/v1/medic/heal/executions"))
        .query(&[("target", instance), ("limit", "1")])
        .send()
        .await?
        .json()
        .await?;
    Ok(v["data"].as_array().and_then(|a| a.first()).cloned())
}

/// Sum of a counter family in medic's /metrics.
async fn counter_sum(c: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<f64> {
    let text = c
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

struct Round {
    reaction_ms: Vec<f64>,
    verified_ms: Vec<f64>,
    judged_per_s: f64,
    actions: f64,
    recovery_ms: f64,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !Path::new(APP).exists() {
        bail!("run from the repository root ({APP} not found)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()?;
    let backend = StateBackend::new(&a.state)?;
    let mut rounds = Vec::new();
    for round in 0..a.rounds {
        let pbdir = tempfile::tempdir()?;
        std::fs::write(
            pbdir.path().join("bench.yml"),
            playbook(a.rate_limit + a.samples),
        )?;
        let server = ingest::start_with(
            "medic",
            &a.medic,
            &format!(
                "heal:\n  playbooks: ['{}/*.yml']\n{}",
                pbdir.path().display(),
                backend.config()
            ),
        )?;
        let base = server.base.clone();
        let url = format!("{base}/api/v2/alerts");

        let (reaction_ms, verified_ms) = sequential(&rt, &c, &base, &url, round, a.samples)?;

        let (judged_per_s, actions) = storm(&rt, &c, &base, &url, round, &a)?;
        drop(server);

        let recovery_ms = recovery(&a.medic, &rt, &c, &backend.config())?;
        eprintln!(
            "round {round}: reaction p50 {:.1} ms, verified p50 {:.1} ms, storm {judged_per_s:.0} executions judged/s, {actions} actions (limit {}), crash → verified restart {recovery_ms:.0} ms",
            median(reaction_ms.clone()),
            median(verified_ms.clone()),
            a.rate_limit
        );
        rounds.push(Round {
            reaction_ms,
            verified_ms,
            judged_per_s,
            actions,
            recovery_ms,
        });
    }
    print_table(&a, &rounds);
    Ok(())
}

type Rt = tokio::runtime::Runtime;

/// Reaction, one alert at a time: (alert → action started, alert → verified) in ms.
fn sequential(
    rt: &Rt,
    c: &reqwest::Client,
    base: &str,
    url: &str,
    round: usize,
    samples: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    // Reaction, one alert at a time.
    let mut reaction_ms = Vec::new();
    let mut verified_ms = Vec::new();
    for i in 0..samples {
        let instance = format!("r{round}-seq-{i}");
        let body =
            json!([{"labels": {"alertname": "Down", "bench": "heal", "instance": instance}}]);
        let sent = now_ms();
        rt.block_on(async { c.post(url).json(&body).send().await?.error_for_status() })?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let e = rt.block_on(execution(c, base, &instance))?;
            if let Some(e) = e.as_ref().filter(|e| e["status"] == "succeeded") {
                let started = e["action_started_at"].as_i64().context("no action start")?;
                let ended = e["finished_at"].as_i64().context("no end")?;
                reaction_ms.push((started - sent) as f64);
                verified_ms.push((ended - sent) as f64);
                break;
            }
            if Instant::now() > deadline {
                bail!("execution for {instance} did not succeed: {e:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok((reaction_ms, verified_ms))
}

/// The storm: executions judged per second, and the actions run.
fn storm(
    rt: &Rt,
    c: &reqwest::Client,
    base: &str,
    url: &str,
    round: usize,
    a: &Args,
) -> anyhow::Result<(f64, f64)> {
    let alerts: Vec<Value> = (0..a.storm)
        .map(|i| json!({"labels": {"alertname": "Down", "bench": "heal", "instance": format!("r{round}-storm-{i}")}}))
        .collect();
    let bodies: Vec<Bytes> = alerts
        .chunks(64)
        .map(|c| Bytes::from(serde_json::to_vec(c).expect("json")))
        .collect();
    let before = rt.block_on(counter_sum(c, base, "medic_heal_executions_total"))?;
    let t = Instant::now();
    rt.block_on(ingest::post_concurrently(c, url, bodies, 4, JSON))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = rt.block_on(counter_sum(c, base, "medic_heal_executions_total"))? - before;
        if n >= a.storm as f64 {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {n} of {} storm executions ended", a.storm);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let judged_per_s = a.storm as f64 / t.elapsed().as_secs_f64();
    let actions = rt.block_on(counter_sum(c, base, "medic_heal_actions_total"))? - a.samples as f64;
    Ok((judged_per_s, actions))
}

fn print_table(a: &Args, rounds: &[Round]) {
    let all = |f: fn(&Round) -> &Vec<f64>| -> Vec<f64> {
        rounds.iter().flat_map(|r| f(r).clone()).collect()
    };
    println!("\n| figure | median of {} rounds |", a.rounds);
    println!("|---|---|");
    println!(
        "| alert POSTed → action started, p50 | {:.1} ms |",
        median(all(|r| &r.reaction_ms))
    );
    println!(
        "| alert POSTed → action started, p99 | {:.1} ms |",
        pct(all(|r| &r.reaction_ms), 0.99)
    );
    println!(
        "| alert POSTed → repair verified, p50 | {:.1} ms |",
        median(all(|r| &r.verified_ms))
    );
    println!(
        "| storm of {}: executions judged and journaled per second | {:.0} |",
        a.storm,
        median(rounds.iter().map(|r| r.judged_per_s).collect())
    );
    println!(
        "| storm of {}: actions run (rate limit {}) | {:.0} |",
        a.storm,
        a.rate_limit,
        median(rounds.iter().map(|r| r.actions).collect())
    );
    println!(
        "| service crash → restart verified (scrape 1s, rule 1s) | {:.0} ms |",
        median(rounds.iter().map(|r| r.recovery_ms).collect())
    );
}

/// Crashes a real service and measures until medic's restart is verified.
fn recovery(
    medic: &Path,
    rt: &tokio::runtime::Runtime,
    c: &reqwest::Client,
    state_config: &str,
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("app");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let app = std::fs::canonicalize(APP)?;
    let run = |cmd: &str| -> anyhow::Result<()> {
        let st = Command::new("python3")
            .arg(&app)
            .arg(cmd)
            .arg(&state)
            .arg(port.to_string())
            .status()?;
        if !st.success() {
            bail!("app.py {cmd} failed");
        }
        Ok(())
    };
    run("start")?;
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: app\n    interval: 1s\n    rules:\n      - alert: AppDown\n        expr: up{job=\"app\"} == 0\n",
    )?;
    std::fs::write(
        dir.path().join("pb.yml"),
        format!(
            "name: restart\ntrigger:\n  alert: '{{alertname=\"AppDown\"}}'\ntarget: '{{{{ $labels.instance }}}}'\nactions:\n  restart:\n    exec:\n      command: [python3, '{}', restart, '{}', '{port}']\nverify:\n  query: 'up{{job=\"app\"}} == 1'\n  within: 30s\n  interval: 200ms\n",
            app.display(),
            state.display()
        ),
    )?;
    let server = ingest::start_with(
        "medic",
        medic,
        &format!(
            "global:\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    scrape_interval: 1s\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\nrule_files: ['{}']\nheal:\n  playbooks: ['{}']\n{state_config}",
            dir.path().join("rules.yml").display(),
            dir.path().join("pb.yml").display()
        ),
    )
    .context("starting medic for the recovery scenario")?;
    std::thread::sleep(Duration::from_secs(3));
    let crashed = now_ms();
    let _ = rt.block_on(async { c.get(format!("http://127.0.0.1:{port}/crash")).send().await });
    let deadline = Instant::now() + Duration::from_secs(60);
    let ms = loop {
        let v: Value = rt.block_on(async {
            c.get(format!("{}/api/v1/medic/heal/executions", server.base))
                .query(&[("status", "succeeded")])
                .send()
                .await?
                .json()
                .await
        })?;
        if let Some(e) = v["data"].as_array().and_then(|a| a.first()) {
            break (e["finished_at"].as_i64().unwrap_or(0) - crashed) as f64;
        }
        if Instant::now() > deadline {
            bail!("the crashed service was not repaired");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(server);
    let _ = Command::new("python3")
        .arg(&app)
        .arg("restart")
        .arg(&state)
        .arg(port.to_string())
        .status();
    if let Ok(pid) = std::fs::read_to_string(state.join("pid")) {
        let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
    }
    Ok(ms)
}
