//! The demo's patient: a small HTTP service with Prometheus metrics and faults to inject.
//!
//! `GET /` is the API (answers `ok <version>`), `GET /metrics` the exposition, `GET /health`
//! a health check. `POST /admin/crash`, `/admin/leak?mb_per_sec=N`,
//! `/admin/errors?ratio=R&seconds=S` and `/admin/latency?ms=M&seconds=S` inject faults. A
//! version whose name contains `bad` fails 60 % of its requests (a bad deploy). The instance
//! serves at most `--capacity` requests per second comfortably: `demo_saturation_ratio` is the
//! last second's rate over it, and latency grows beyond it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use clap::Args;

#[derive(Debug, Args)]
pub struct PatientArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:9181")]
    listen: String,
    /// The version it claims to be; one containing "bad" fails 60 % of its requests.
    #[arg(long, default_value = "v1.4.2")]
    app_version: String,
    /// Its log directory (it writes `app.log` there and reports the directory's size).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Requests per second it serves comfortably.
    #[arg(long, default_value_t = 50.0)]
    capacity: f64,
    /// Exit with status 1 this many seconds after starting (a fault that comes back).
    #[arg(long)]
    crash_after: Option<f64>,
}

/// Latency histogram buckets (seconds), Prometheus's defaults up to 2.5 s.
const BUCKETS: [f64; 10] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    f64::INFINITY,
];
/// At most this much memory is leaked (the demo must not exhaust the machine).
const MAX_LEAK: usize = 1 << 30;

struct Fault {
    ratio: f64,
    until: Instant,
}

struct Patient {
    version: String,
    log_dir: Option<PathBuf>,
    capacity: f64,
    started: f64,
    requests: Mutex<BTreeMap<u16, u64>>,
    latency: Mutex<([u64; BUCKETS.len()], f64, u64)>,
    /// Requests per 100 ms slot over the last second: (slot number, count).
    window: Mutex<[(u64, u64); 10]>,
    errors: Mutex<Option<Fault>>,
    slow: Mutex<Option<(u64, Instant)>>,
    leaked: Mutex<Vec<Vec<u8>>>,
    rng: AtomicU64,
}

impl Patient {
    fn random(&self) -> f64 {
        // xorshift64*: plenty for deciding which requests fail.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn slot() -> u64 {
        (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            / 100) as u64
    }

    /// Requests in the last second.
    fn rate(&self) -> u64 {
        let now = Self::slot();
        let w = self.window.lock().unwrap();
        w.iter()
            .filter(|(s, _)| now.saturating_sub(*s) < 10)
            .map(|(_, n)| n)
            .sum()
    }

    fn count(&self) {
        let now = Self::slot();
        let mut w = self.window.lock().unwrap();
        let cell = &mut w[(now % 10) as usize];
        if cell.0 != now {
            *cell = (now, 0);
        }
        cell.1 += 1;
    }

    fn saturation(&self) -> f64 {
        self.rate() as f64 / self.capacity
    }
}

pub fn run(args: PatientArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: PatientArgs) -> anyhow::Result<()> {
    if let Some(d) = &args.log_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let p = Arc::new(Patient {
        version: args.app_version.clone(),
        log_dir: args.log_dir.clone(),
        capacity: args.capacity.max(1.0),
        started: now.as_secs_f64(),
        // Known codes start at zero, so rates over them exist from the first scrape.
        requests: Mutex::new(BTreeMap::from([(200, 0), (500, 0)])),
        latency: Mutex::new(([0; BUCKETS.len()], 0.0, 0)),
        window: Mutex::new([(0, 0); 10]),
        errors: Mutex::new(None),
        slow: Mutex::new(None),
        leaked: Mutex::new(Vec::new()),
        rng: AtomicU64::new(now.as_nanos() as u64 | 1),
    });
    // A patient dies with the demo that started it, however the demo ended (even `kill -9`):
    // once it has been re-parented, its parent is gone.
    let parent = std::os::unix::process::parent_id();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                eprintln!("patient: the demo that started me is gone; exiting");
                std::process::exit(0);
            }
        }
    });
    if let Some(s) = args.crash_after {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await;
            eprintln!("patient: crashing as told (--crash-after {s}s)");
            std::process::exit(1);
        });
    }
    if let Some(d) = args.log_dir.clone() {
        let p = p.clone();
        tokio::spawn(async move { write_log(&d, &p).await });
    }
    let app = Router::new()
        .route("/", get(root))
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/admin/crash", post(crash))
        .route("/admin/leak", post(leak))
        .route("/admin/errors", post(errors))
        .route("/admin/latency", post(latency))
        .with_state(p);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// One line a second into `app.log`, as a real service would.
async fn write_log(dir: &Path, p: &Patient) {
    use std::io::Write;
    let path = dir.join("app.log");
    loop {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = writeln!(f, "version={} rate={}/s", p.version, p.rate());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn root(State(p): State<Arc<Patient>>) -> (StatusCode, String) {
    let t0 = Instant::now();
    p.count();
    let sat = p.saturation();
    // Beyond capacity requests queue: latency grows with the overload.
    let mut delay_ms = 1.0 + if sat > 1.0 { 200.0 * (sat - 1.0) } else { 0.0 };
    if let Some((ms, until)) = *p.slow.lock().unwrap() {
        if Instant::now() < until {
            delay_ms += ms as f64;
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(delay_ms / 1000.0)).await;
    let mut fail = if p.version.contains("bad") { 0.6 } else { 0.0 };
    if let Some(f) = &*p.errors.lock().unwrap() {
        if Instant::now() < f.until {
            fail = f64::max(fail, f.ratio);
        }
    }
    let code = if p.random() < fail { 500 } else { 200 };
    *p.requests.lock().unwrap().entry(code).or_default() += 1;
    let secs = t0.elapsed().as_secs_f64();
    {
        let mut l = p.latency.lock().unwrap();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                l.0[i] += 1;
            }
        }
        l.1 += secs;
        l.2 += 1;
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code == 200 {
        (status, format!("ok {}\n", p.version))
    } else {
        (status, "internal error\n".into())
    }
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

async fn metrics(State(p): State<Arc<Patient>>) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    o.push_str("# HELP demo_http_requests_total Requests served, by status code.\n# TYPE demo_http_requests_total counter\n");
    for (code, n) in p.requests.lock().unwrap().iter() {
        let _ = writeln!(o, "demo_http_requests_total{{code=\"{code}\"}} {n}");
    }
    o.push_str("# HELP demo_http_request_duration_seconds Time to answer a request.\n# TYPE demo_http_request_duration_seconds histogram\n");
    {
        let l = p.latency.lock().unwrap();
        for (i, b) in BUCKETS.iter().enumerate() {
            let le = if b.is_infinite() {
                "+Inf".to_string()
            } else {
                b.to_string()
            };
            let _ = writeln!(
                o,
                "demo_http_request_duration_seconds_bucket{{le=\"{le}\"}} {}",
                l.0[i]
            );
        }
        let _ = writeln!(o, "demo_http_request_duration_seconds_sum {}", l.1);
        let _ = writeln!(o, "demo_http_request_duration_seconds_count {}", l.2);
    }
    let _ = writeln!(
        o,
        "# HELP demo_build_info The running version.\n# TYPE demo_build_info gauge\ndemo_build_info{{version=\"{}\"}} 1",
        p.version
    );
    let _ = writeln!(
        o,
        "# HELP demo_saturation_ratio Requests in the last second over the capacity.\n# TYPE demo_saturation_ratio gauge\ndemo_saturation_ratio {:.4}",
        p.saturation()
    );
    let _ = writeln!(
        o,
        "# HELP demo_capacity_requests_per_second Requests per second served comfortably.\n# TYPE demo_capacity_requests_per_second gauge\ndemo_capacity_requests_per_second {}",
        p.capacity
    );
    let _ = writeln!(
        o,
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
        resident_bytes()
    );
    let _ = writeln!(
        o,
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {:.3}",
        p.started
    );
    if let Some(d) = &p.log_dir {
        let _ = writeln!(
            o,
            "# HELP demo_log_dir_bytes Bytes in the log directory's files.\n# TYPE demo_log_dir_bytes gauge\ndemo_log_dir_bytes {}",
            dir_bytes(d)
        );
    }
    o
}

async fn crash() -> &'static str {
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        eprintln!("patient: crashing as told (/admin/crash)");
        std::process::exit(1);
    });
    "crashing\n"
}

async fn leak(
    State(p): State<Arc<Patient>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> (StatusCode, String) {
    let mb: f64 = q
        .get("mb_per_sec")
        .and_then(|v| v.parse().ok())
        .unwrap_or(40.0);
    if !(mb > 0.0 && mb <= 1024.0) {
        return (
            StatusCode::BAD_REQUEST,
            "mb_per_sec must be in (0, 1024]\n".into(),
        );
    }
    tokio::spawn(async move {
        let chunk = (mb * 1024.0 * 1024.0 / 10.0) as usize;
        loop {
            {
                let mut l = p.leaked.lock().unwrap();
                if l.iter().map(Vec::len).sum::<usize>() + chunk > MAX_LEAK {
                    return;
                }
                // Written, not just reserved, so the pages are resident.
                l.push(vec![0x5a; chunk]);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (StatusCode::OK, format!("leaking {mb} MB/s\n"))
}

fn seconds(q: &BTreeMap<String, String>) -> Result<Duration, String> {
    let s: f64 = q
        .get("seconds")
        .map(|v| {
            v.parse()
                .map_err(|_| format!("seconds: not a number: {v:?}"))
        })
        .transpose()?
        .unwrap_or(10.0);
    if !(0.0..=3600.0).contains(&s) {
        return Err("seconds must be in [0, 3600]".into());
    }
    Ok(Duration::from_secs_f64(s))
}

async fn errors(
    State(p): State<Arc<Patient>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> (StatusCode, String) {
    let ratio: f64 = q.get("ratio").and_then(|v| v.parse().ok()).unwrap_or(0.5);
    let d = match seconds(&q) {
        Ok(d) if (0.0..=1.0).contains(&ratio) => d,
        Ok(_) => return (StatusCode::BAD_REQUEST, "ratio must be in [0, 1]\n".into()),
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    *p.errors.lock().unwrap() = Some(Fault {
        ratio,
        until: Instant::now() + d,
    });
    (
        StatusCode::OK,
        format!("failing {:.0} % for {d:?}\n", ratio * 100.0),
    )
}

async fn latency(
    State(p): State<Arc<Patient>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> (StatusCode, String) {
    let ms: u64 = q.get("ms").and_then(|v| v.parse().ok()).unwrap_or(200);
    let d = match seconds(&q) {
        Ok(d) if ms <= 10_000 => d,
        Ok(_) => return (StatusCode::BAD_REQUEST, "ms must be at most 10000\n".into()),
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    *p.slow.lock().unwrap() = Some((ms, Instant::now() + d));
    (StatusCode::OK, format!("adding {ms} ms for {d:?}\n"))
}
