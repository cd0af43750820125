//! The alert manager benchmark, medic against Alertmanager 0.25 on the same alertmanager.yml
//! and the same alert stream:
//!
//! - **throughput**: N distinct alerts POSTed to `/api/v2/alerts` in batches of 64 (the most
//!   Prometheus sends per request) by several concurrent clients — first as new alerts, then
//!   re-sent as Prometheus re-sends firing alerts; alerts accepted per second of wall time;
//! - **memory**: resident set size holding the N active alerts, and peak;
//! - **latency**: from POSTing one new alert to a webhook receiver (a real HTTP server in this
//!   process) getting it, with `group_wait: 0s`, sequentially, while the N alerts are held.
//!
//! Rounds alternate the order (medic, Alertmanager, Alertmanager, medic, …), each on a fresh
//! process; medians are reported with medic/Alertmanager ratios.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use serde_json::json;

use crate::ingest::{self, median, now_ms, pct};
use crate::proc;

/// Arguments of `alerts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Distinct active alerts.
    #[arg(long, default_value_t = 100_000)]
    alerts: usize,
    /// Alerts per request (Prometheus sends at most 64).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Rounds per target (fresh process each).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Latency samples per round.
    #[arg(long, default_value_t = 50)]
    latency_samples: usize,
    /// Targets: medic (state in SQLite), medic-postgresql (state in a PostgreSQL the bench
    /// starts, Debian `postgresql`; a fresh database each round), alertmanager.
    #[arg(long, value_delimiter = ',', default_value = "medic,alertmanager")]
    targets: Vec<String>,
    /// The medic binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/medic")]
    medic: std::path::PathBuf,
}

const NAMES: &[&str] = &[
    "KubePodCrashLooping",
    "KubePodNotReady",
    "KubeDeploymentReplicasMismatch",
    "NodeFilesystemSpaceFillingUp",
    "NodeFilesystemAlmostOutOfSpace",
    "NodeMemoryHighUtilization",
    "NodeCPUHighUsage",
    "TargetDown",
    "HighErrorRate",
    "HighLatency",
    "PostgresTooManyConnections",
    "RedisMemoryHigh",
    "DiskIOSaturation",
    "NetworkReceiveErrs",
    "CertificateExpiringSoon",
    "JobFailed",
    "QueueBacklogGrowing",
    "ApiSlowRequests",
    "ContainerOOMKilled",
    "HostClockSkew",
];

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

fn config(hook: &str) -> String {
    format!(
        r#"global:
  resolve_timeout: 5m
route:
  receiver: blackhole
  group_by: [alertname, cluster]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: [bench="latency"]
      receiver: hook
      group_by: ['...']
      group_wait: 0s
      group_interval: 1s
receivers:
  - name: blackhole
  - name: hook
    webhook_configs: [{{url: "{hook}"}}]
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster, service]
"#
    )
}

/// The alert stream: request bodies of `batch` alerts each, ending `ends_in` ms after now.
fn bodies(n: usize, batch: usize, starts: i64, ends: i64) -> Vec<Bytes> {
    let starts = medic_model::format_rfc3339(starts);
    let ends = medic_model::format_rfc3339(ends);
    let alerts: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let name = NAMES[i % NAMES.len()];
            let cluster = format!("cluster-{}", i / 7 % 10);
            let service = format!("svc-{}", i / 3 % 500);
            let severity = if i % 20 == 0 { "critical" } else { "warning" };
            json!({
                "labels": {
                    "alertname": name, "cluster": cluster, "service": service,
                    "namespace": format!("ns-{}", i % 40), "instance": format!("10.{}.{}.{}:9100", i >> 16 & 255, i >> 8 & 255, i & 255),
                    "job": "node", "severity": severity, "prometheus": "monitoring/k8s",
                },
                "annotations": {
                    "summary": format!("{name} on {service} in {cluster}"),
                    "description": format!("{name} has been firing for instance {i} of {service}; see the dashboard for details."),
                    "runbook_url": format!("https://runbooks.example.org/{}", name.to_lowercase()),
                },
                "startsAt": starts,
                "endsAt": ends,
                "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr=up%3D%3D0&g0.tab=1",
            })
        })
        .collect();
    alerts
        .chunks(batch)
        .map(|c| Bytes::from(serde_json::to_vec(c).expect("json")))
        .collect()
}

/// A webhook receiver that notes when each `id` label first arrived.
async fn hook_server() -> anyhow::Result<(String, Arc<Mutex<HashMap<String, Instant>>>)> {
    use axum::extract::State;
    type Seen = Arc<Mutex<HashMap<String, Instant>>>;
    async fn hook(State(seen): State<Seen>, body: Bytes) -> &'static str {
        let now = Instant::now();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            for a in v["alerts"].as_array().into_iter().flatten() {
                if let Some(id) = a["labels"]["id"].as_str() {
                    seen.lock().unwrap().entry(id.to_string()).or_insert(now);
                }
            }
        }
        "ok"
    }
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok((format!("http://{addr}/hook"), seen))
}

struct Outcome {
    target: String,
    new_rate: f64,
    resend_rate: f64,
    rss: u64,
    peak_rss: u64,
    cpu: f64,
    latency_ms: Vec<f64>,
    held: usize,
}

/// medic on the shared alertmanager.yml; its state in a fresh PostgreSQL database when `pg`.
fn start_medic(
    medic: &std::path::Path,
    am_file: &std::path::Path,
    pg: Option<&medic_testkit::Postgres>,
    round: usize,
) -> anyhow::Result<ingest::Server> {
    let mut config = format!("alerting:\n  config_file: {}\n", am_file.display());
    if let Some(pg) = pg {
        let url = pg.database(&format!("round{round}"));
        config.push_str(&format!(
            "state:\n  backend: postgresql\n  postgresql:\n    url: {url}\n"
        ));
    }
    ingest::start_with("medic", medic, &config)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    for t in &a.targets {
        if !matches!(t.as_str(), "medic" | "medic-postgresql" | "alertmanager") {
            bail!("unknown target {t:?}; use medic, medic-postgresql or alertmanager");
        }
    }
    let pg_dir = tempfile::tempdir()?;
    let pg = a
        .targets
        .iter()
        .any(|t| t == "medic-postgresql")
        .then(|| medic_testkit::Postgres::start_with(pg_dir.path(), 40, true));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()?;
    let (hook_url, seen) = rt.block_on(hook_server())?;
    let cfg = config(&hook_url);
    let am_dir = tempfile::tempdir()?;
    std::fs::write(am_dir.path().join("alertmanager.yml"), &cfg)?;
    let mut order = Vec::new();
    for r in 0..a.rounds {
        if r % 2 == 0 {
            order.extend(a.targets.iter().cloned());
        } else {
            order.extend(a.targets.iter().rev().cloned());
        }
    }
    let mut outcomes = Vec::new();
    for (round, target) in order.iter().enumerate() {
        let am_file = am_dir.path().join("alertmanager.yml");
        let server = match target.as_str() {
            "medic" => start_medic(&a.medic, &am_file, None, round)?,
            "medic-postgresql" => start_medic(&a.medic, &am_file, pg.as_ref(), round)?,
            _ => ingest::start_with("alertmanager", &a.medic, &cfg)?,
        };
        let pid = server.child.id();
        let url = format!("{}/api/v2/alerts", server.base);
        let now = now_ms();
        let first = bodies(a.alerts, a.batch, now - 60_000, now + 3_600_000);
        let again = bodies(a.alerts, a.batch, now - 60_000, now + 3_660_000);
        let cpu0 = proc::cpu_seconds(pid);
        let t = Instant::now();
        rt.block_on(ingest::post_concurrently(&c, &url, first, a.clients, JSON))?;
        let new_rate = a.alerts as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        rt.block_on(ingest::post_concurrently(&c, &url, again, a.clients, JSON))?;
        let resend_rate = a.alerts as f64 / t.elapsed().as_secs_f64();
        let cpu = proc::cpu_seconds(pid) - cpu0;

        // Latency with the alerts held.
        let mut latency_ms = Vec::new();
        for i in 0..a.latency_samples {
            let id = format!("r{round}-{i}");
            let body = json!([{"labels": {"alertname": "Latency", "bench": "latency", "id": id}}]);
            let t = Instant::now();
            rt.block_on(async { c.post(&url).json(&body).send().await?.error_for_status() })?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(at) = seen.lock().unwrap().get(&id) {
                    latency_ms.push(at.duration_since(t).as_secs_f64() * 1000.0);
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{target}: alert {id} never reached the webhook");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        std::thread::sleep(Duration::from_secs(3));
        // Memory before anything lists the alerts (a listing of all of them costs more than
        // holding them, in both).
        let rss = proc::status_bytes(pid, "VmRSS:");
        let peak_rss = proc::status_bytes(pid, "VmHWM:");
        // Check that every alert is held: one alert name's share, listed.
        let listed = rt.block_on(async {
            c.get(&url)
                .query(&[
                    ("filter", format!("alertname=\"{}\"", NAMES[0])),
                    ("silenced", "true".into()),
                    ("inhibited", "true".into()),
                ])
                .send()
                .await?
                .json::<serde_json::Value>()
                .await
        });
        let one_name = match listed {
            Ok(v) => v.as_array().map_or(0, Vec::len),
            Err(e) => {
                eprintln!("{target}: listing alerts failed: {e}");
                0
            }
        };
        let held = one_name * NAMES.len();
        eprintln!(
            "{target}: {new_rate:.0} new alerts/s, {resend_rate:.0} re-sent alerts/s, {held} held, RSS {:.0} MiB (peak {:.0}), latency p50 {:.1} ms",
            rss as f64 / 1048576.0,
            peak_rss as f64 / 1048576.0,
            median(latency_ms.clone())
        );
        outcomes.push(Outcome {
            target: target.clone(),
            new_rate,
            resend_rate,
            rss,
            peak_rss,
            cpu,
            latency_ms,
            held,
        });
        drop(server);
    }
    report(&a, &outcomes);
    Ok(())
}

fn report(a: &Args, outcomes: &[Outcome]) {
    println!(
        "\n{} alerts in batches of {} from {} clients, {} rounds per target\n",
        a.alerts, a.batch, a.clients, a.rounds
    );
    println!("| target | new alerts/s | re-sent alerts/s | CPU s | RSS holding them | peak RSS | latency p50 | latency p99 |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut med: HashMap<&str, (f64, f64, f64, f64, f64)> = HashMap::new();
    for t in &a.targets {
        let o: Vec<&Outcome> = outcomes.iter().filter(|o| &o.target == t).collect();
        let lat: Vec<f64> = o.iter().flat_map(|o| o.latency_ms.clone()).collect();
        let row = (
            median(o.iter().map(|o| o.new_rate).collect()),
            median(o.iter().map(|o| o.resend_rate).collect()),
            median(o.iter().map(|o| o.rss as f64).collect()),
            median(o.iter().map(|o| o.peak_rss as f64).collect()),
            pct(lat.clone(), 0.5),
        );
        println!(
            "| {t} | {:.0} | {:.0} | {:.1} | {:.0} MiB | {:.0} MiB | {:.1} ms | {:.1} ms |",
            row.0,
            row.1,
            median(o.iter().map(|o| o.cpu).collect()),
            row.2 / 1048576.0,
            row.3 / 1048576.0,
            row.4,
            pct(lat, 0.99)
        );
        if o.iter().any(|o| o.held < a.alerts - a.alerts % NAMES.len()) {
            println!(
                "|  | (held fewer alerts than sent: {:?}) | | | | | | |",
                o.iter().map(|o| o.held).collect::<Vec<_>>()
            );
        }
        med.insert(t.as_str(), row);
    }
    if let (Some(m), Some(p)) = (med.get("medic"), med.get("alertmanager")) {
        println!(
            "\nmedic / Alertmanager: new {:.2}×, re-sent {:.2}×, RSS {:.2}×, peak RSS {:.2}×, latency p50 {:.2}×",
            m.0 / p.0,
            m.1 / p.1,
            m.2 / p.2,
            m.3 / p.3,
            m.4 / p.4
        );
        let rounds: Vec<String> = outcomes
            .iter()
            .map(|o| format!("{} {:.0}/{:.0}", o.target, o.new_rate, o.resend_rate))
            .collect();
        println!("per round (new/re-sent alerts/s): {}", rounds.join(", "));
    }
}
