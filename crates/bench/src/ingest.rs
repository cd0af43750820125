//! The ingest benchmark: one pre-encoded remote-write workload into each target in turn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use medic_server::remote_write::{encode, proto};
use serde::Serialize;

use crate::proc;
use crate::workload;

/// Arguments of `ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of series.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) series: usize,
    /// Hours of 15 s samples, ending 10 minutes ago.
    #[arg(long, default_value_t = 2)]
    pub(crate) hours: i64,
    /// Targets, in order: medic, prometheus, victoriametrics.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "medic,prometheus,victoriametrics"
    )]
    pub(crate) targets: Vec<String>,
    /// Rounds; targets run A B C C B A … and medians are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: usize,
    /// Series per request.
    #[arg(long, default_value_t = 2000)]
    pub(crate) batch_series: usize,
    /// Samples per series per request.
    #[arg(long, default_value_t = 10)]
    pub(crate) batch_samples: usize,
    /// The medic binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/medic")]
    pub(crate) medic: PathBuf,
    /// Write all measurements as JSON here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Default)]
struct Measure {
    target: String,
    round: usize,
    samples: u64,
    ingest_seconds: f64,
    samples_per_second: f64,
    server_cpu_seconds: f64,
    samples_per_cpu_second: f64,
    peak_rss_bytes: u64,
    rss_after_ingest_bytes: u64,
    disk_bytes: u64,
    bytes_per_sample: f64,
    errors: u64,
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn start(target: &str, medic: &Path) -> anyhow::Result<Server> {
    start_with(target, medic, "")
}

/// Starts `target` with `extra` appended to its config file (medic.yml or prometheus.yml; YAML
/// top-level keys such as `rule_files`; for Alertmanager, `extra` is the whole file), and
/// Prometheus with `/-/reload` enabled.
pub(crate) fn start_with(target: &str, medic: &Path, extra: &str) -> anyhow::Result<Server> {
    start_full(target, medic, extra, false)
}

/// [`start_with`], with VictoriaMetrics's result cache on if `vm_cache` (off everywhere else:
/// the query benchmarks time evaluation, not the cache).
pub(crate) fn start_full(
    target: &str,
    medic: &Path,
    extra: &str,
    vm_cache: bool,
) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let data = dir.path().join("data");
    let (mut cmd, ready) = match target {
        "medic" => {
            let cfg = dir.path().join("medic.yml");
            // No scraping unless `extra` sets its own jobs.
            let scrape = if extra.lines().any(|l| l.starts_with("scrape_configs:")) {
                ""
            } else {
                "scrape_configs: []\n"
            };
            std::fs::write(&cfg, format!("{scrape}storage:\n  retention: 0\n{extra}"))?;
            let mut c = Command::new(medic);
            c.args(["run", "--listen", &format!("127.0.0.1:{port}"), "--data"])
                .arg(&data)
                .arg("--config")
                .arg(&cfg);
            (c, "/-/ready")
        }
        "prometheus" => {
            let cfg = dir.path().join("prometheus.yml");
            std::fs::write(&cfg, format!("global: {{scrape_interval: 15s}}\n{extra}"))?;
            let mut c = Command::new("/usr/bin/prometheus");
            c.arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .args([
                    "--web.enable-remote-write-receiver",
                    "--web.enable-admin-api",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=100y",
                ]);
            (c, "/-/ready")
        }
        "alertmanager" => {
            let cfg = dir.path().join("alertmanager.yml");
            std::fs::write(&cfg, extra)?;
            let mut c = Command::new("/usr/bin/prometheus-alertmanager");
            c.arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=");
            (c, "/-/ready")
        }
        "victoriametrics" => {
            let mut c = Command::new("/usr/bin/victoria-metrics");
            c.arg(format!("-storageDataPath={}", data.display()))
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg("-retentionPeriod=100y");
            if !vm_cache {
                c.arg("-search.disableCache");
            }
            (c, "/health")
        }
        other => bail!(
            "unknown target {other:?}; use medic, prometheus, victoriametrics or alertmanager"
        ),
    };
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {target} (install the Debian package, or build medic with cargo build --release)"))?;
    let base = format!("http://127.0.0.1:{port}");
    let server = Server { child, base, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_ok(&format!("{}{ready}", server.base)) {
            return Ok(server);
        }
        if Instant::now() > deadline {
            bail!("{target} did not become ready");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a plain HTTP GET answers 200 (readiness polling, without an async runtime).
fn http_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some((host, path)) = url.trim_start_matches("http://").split_once('/') else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

pub(crate) struct Workload {
    /// Requests grouped by time window; windows are sent in order.
    windows: Vec<Arc<Vec<Bytes>>>,
    pub(crate) samples: u64,
    pub(crate) series: usize,
    /// End of the data (ms).
    pub(crate) end: i64,
    /// Start of the data (ms).
    pub(crate) start: i64,
}

/// POSTs every body to `url` with `headers` from `clients` concurrent tasks, each taking the
/// next body; fails on the first answer that is not 2xx.
pub(crate) async fn post_concurrently(
    c: &reqwest::Client,
    url: &str,
    bodies: Vec<Bytes>,
    clients: usize,
    headers: &'static [(&'static str, &'static str)],
) -> anyhow::Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bodies = Arc::new(bodies);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (c, url, next, bodies) = (c.clone(), url.to_string(), next.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(b) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let mut req = c.post(&url).body(b.clone());
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let r = req.send().await?;
                if !r.status().is_success() {
                    bail!(
                        "{url}: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    medic_model::Clock::now_ms(&medic_model::SystemClock)
}

pub(crate) fn build(a: &Args) -> Workload {
    build_ending(a, now_ms() - 10 * 60_000)
}

/// The workload of `a.hours` ending at `end` (ms).
pub(crate) fn build_ending(a: &Args, end: i64) -> Workload {
    let specs = workload::series(a.series, 42);
    let start = end - a.hours * 3_600_000;
    let data: Vec<Vec<medic_model::Sample>> = specs.iter().map(|s| s.samples(start, end)).collect();
    let samples: u64 = data.iter().map(|d| d.len() as u64).sum();
    let max_len = data.iter().map(Vec::len).max().unwrap_or(0);
    let mut windows = Vec::new();
    let mut w = 0;
    while w < max_len {
        let mut reqs = Vec::new();
        for group in (0..specs.len()).collect::<Vec<_>>().chunks(a.batch_series) {
            let ts: Vec<proto::TimeSeries> = group
                .iter()
                .filter_map(|&i| {
                    let part = data[i].get(w..(w + a.batch_samples).min(data[i].len()))?;
                    (!part.is_empty()).then(|| time_series(&specs[i], part.iter()))
                })
                .collect();
            if !ts.is_empty() {
                reqs.push(Bytes::from(encode(&proto::WriteRequest { timeseries: ts })));
            }
        }
        windows.push(Arc::new(reqs));
        w += a.batch_samples;
    }
    Workload {
        windows,
        samples,
        series: specs.len(),
        end,
        start,
    }
}

/// A remote-write series of `spec`'s labels and `samples`.
pub(crate) fn time_series<'a>(
    spec: &workload::SeriesSpec,
    samples: impl Iterator<Item = &'a medic_model::Sample>,
) -> proto::TimeSeries {
    proto::TimeSeries {
        labels: spec
            .labels
            .iter()
            .map(|(n, v)| proto::Label {
                name: n.clone(),
                value: v.clone(),
            })
            .collect(),
        samples: samples
            .map(|s| proto::Sample {
                value: s.v,
                timestamp: s.t,
            })
            .collect(),
        histograms: vec![],
    }
}

pub(crate) async fn send_all(base: &str, wl: &Workload, concurrency: usize) -> (u64, f64) {
    let client = ::reqwest::Client::builder().no_proxy().build().unwrap();
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    for window in &wl.windows {
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, next, errors) = (client.clone(), next.clone(), errors.clone());
            let url = format!("{base}/api/v1/write");
            let reqs = window.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                    let Some(body) = reqs.get(i) else { break };
                    let r = client
                        .post(&url)
                        .header("Content-Encoding", "snappy")
                        .header("Content-Type", "application/x-protobuf")
                        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {}
                        _ => {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
    (errors.load(Ordering::SeqCst), start.elapsed().as_secs_f64())
}

/// Makes the target persist and compact what it holds; returns the bytes that form represents.
async fn compacted_bytes(target: &str, s: &Server) -> anyhow::Result<u64> {
    let c = ::reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()?;
    let data = s.dir.path().join("data");
    match target {
        "medic" => {
            c.post(format!("{}/api/v1/admin/tsdb/flush", s.base))
                .send()
                .await?
                .error_for_status()?;
            Ok(proc::dir_bytes(&data))
        }
        "prometheus" => {
            let j: serde_json::Value = c
                .post(format!("{}/api/v1/admin/tsdb/snapshot", s.base))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let name = j["data"]["name"].as_str().context("snapshot name")?;
            Ok(proc::dir_bytes(&data.join("snapshots").join(name)))
        }
        "victoriametrics" => {
            c.get(format!("{}/internal/force_flush", s.base))
                .send()
                .await?;
            // VictoriaMetrics partitions by month: `YYYY_MM`.
            let month = |ms: i64| medic_model::format_rfc3339(ms)[..7].replace('-', "_");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as i64;
            let mut months: Vec<String> = (0..3).map(|d| month(now - d * 86_400_000)).collect();
            months.dedup();
            for m in months {
                c.get(format!(
                    "{}/internal/force_merge?partition_prefix={m}",
                    s.base
                ))
                .send()
                .await?;
            }
            // Merges run in the background: wait until the size holds still.
            let mut last = 0;
            let mut stable = 0;
            for _ in 0..240 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let b = proc::dir_bytes(&data);
                if b == last {
                    stable += 1;
                    if stable >= 6 {
                        break;
                    }
                } else {
                    stable = 0;
                    last = b;
                }
            }
            Ok(last)
        }
        _ => unreachable!(),
    }
}

async fn verify_medic(s: &Server, expected: u64) -> anyhow::Result<()> {
    let c = ::reqwest::Client::builder().no_proxy().build()?;
    let j: serde_json::Value = c
        .get(format!("{}/api/v1/status/tsdb", s.base))
        .send()
        .await?
        .json()
        .await?;
    let in_blocks: u64 = j["data"]["blocks"]
        .as_array()
        .context("blocks")?
        .iter()
        .map(|b| b["stats"]["num_samples"].as_u64().unwrap_or(0))
        .sum();
    if in_blocks != expected {
        bail!("medic holds {in_blocks} samples in blocks after flush, {expected} were sent");
    }
    Ok(())
}

/// The `p` quantile (0–1) of `v`, nearest rank; 0 when empty.
pub(crate) fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    eprintln!("building workload: {} series × {} h …", a.series, a.hours);
    let wl = build(&a);
    let bytes: usize = wl
        .windows
        .iter()
        .flat_map(|w| w.iter())
        .map(Bytes::len)
        .sum();
    eprintln!(
        "{} series, {} samples, {} requests, {:.1} MiB encoded",
        wl.series,
        wl.samples,
        wl.windows.iter().map(|w| w.len()).sum::<usize>(),
        bytes as f64 / (1 << 20) as f64
    );
    let mut order: Vec<String> = Vec::new();
    for r in 0..a.rounds {
        let mut t = a.targets.clone();
        if r % 2 == 1 {
            t.reverse();
        }
        order.extend(t);
    }
    let mut results: Vec<Measure> = Vec::new();
    for (i, target) in order.iter().enumerate() {
        let round = i / a.targets.len();
        eprintln!("round {} · {target}", round + 1);
        let server = start(target, &a.medic)?;
        let pid = server.child.id();
        let cpu0 = proc::cpu_seconds(pid);
        let sampler = proc::RssSampler::start(pid, Duration::from_millis(20));
        let (errors, secs) = rt.block_on(send_all(&server.base, &wl, a.concurrency));
        let sampled = sampler.stop();
        let cpu = proc::cpu_seconds(pid) - cpu0;
        let rss_after = proc::status_bytes(pid, "VmRSS:");
        let peak_rss = sampled.max(proc::status_bytes(pid, "VmHWM:"));
        let disk = rt.block_on(compacted_bytes(target, &server))?;
        if target == "medic" {
            rt.block_on(verify_medic(&server, wl.samples))?;
        }
        let m = Measure {
            target: target.clone(),
            round,
            samples: wl.samples,
            ingest_seconds: secs,
            samples_per_second: wl.samples as f64 / secs,
            server_cpu_seconds: cpu,
            samples_per_cpu_second: wl.samples as f64 / cpu.max(1e-9),
            peak_rss_bytes: peak_rss,
            rss_after_ingest_bytes: rss_after,
            disk_bytes: disk,
            bytes_per_sample: disk as f64 / wl.samples as f64,
            errors,
        };
        eprintln!(
            "  {:.0} samples/s, {:.0} samples/CPU-s, peak RSS {:.0} MiB, {:.3} bytes/sample, {} failed requests",
            m.samples_per_second,
            m.samples_per_cpu_second,
            m.peak_rss_bytes as f64 / (1 << 20) as f64,
            m.bytes_per_sample,
            m.errors
        );
        if errors > 0 {
            eprintln!("  warning: {target} refused {errors} requests");
        }
        results.push(m);
        drop(server);
    }
    report(&a, &wl, &results);
    if let Some(out) = &a.out {
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(out, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(())
}

fn report(a: &Args, wl: &Workload, results: &[Measure]) {
    let mut by: BTreeMap<&str, Vec<&Measure>> = BTreeMap::new();
    for r in results {
        by.entry(&r.target).or_default().push(r);
    }
    let med = |t: &str, f: &dyn Fn(&Measure) -> f64| {
        median(
            by.get(t)
                .map(|v| v.iter().map(|m| f(m)).collect())
                .unwrap_or_default(),
        )
    };
    println!(
        "\n{} series × {} h at 15 s = {} samples; {} rounds; medians\n",
        wl.series, a.hours, wl.samples, a.rounds
    );
    println!("| target | ingest samples/s | samples/CPU-s | peak RSS MiB | bytes/sample |");
    println!("|---|---:|---:|---:|---:|");
    for t in &a.targets {
        println!(
            "| {t} | {:.0} | {:.0} | {:.0} | {:.3} |",
            med(t, &|m| m.samples_per_second),
            med(t, &|m| m.samples_per_cpu_second),
            med(t, &|m| m.peak_rss_bytes as f64) / (1 << 20) as f64,
            med(t, &|m| m.bytes_per_sample)
        );
    }
    if by.contains_key("medic") {
        println!("\n| medic ÷ | ingest | per CPU-s | peak RSS | bytes/sample |");
        println!("|---|---:|---:|---:|---:|");
        for peer in a.targets.iter().filter(|t| *t != "medic") {
            println!(
                "| {peer} | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
                med("medic", &|m| m.samples_per_second) / med(peer, &|m| m.samples_per_second),
                med("medic", &|m| m.samples_per_cpu_second)
                    / med(peer, &|m| m.samples_per_cpu_second),
                med("medic", &|m| m.peak_rss_bytes as f64)
                    / med(peer, &|m| m.peak_rss_bytes as f64),
                med("medic", &|m| m.bytes_per_sample) / med(peer, &|m| m.bytes_per_sample)
            );
        }
    }
}
