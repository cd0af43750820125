//! `medic-bench logs`: one log workload (nginx access lines, JSON application logs, Java stack
//! traces; a needle request id once in the middle) into medic (Loki push, snappy protobuf) and
//! into Debian's `clickhouse-server` (HTTP TabSeparated inserts into a MergeTree table), one
//! after the other; then `zstd -19` and `grep` over the same lines in a raw file, the physical
//! limits. Prints ingest lines/s, lines per server CPU-second, bytes per line on disk, and the
//! median latency of a needle search and of a count over the hour.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use medic_logs::ingest::loki::proto;

use crate::proc::{cpu_seconds, dir_bytes};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The medic binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/medic")]
    medic: PathBuf,
    /// Log entries in the workload (spread over one hour).
    #[arg(long, default_value_t = 2_000_000)]
    lines: usize,
    /// Repetitions of each query; the median is reported.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Entries per push / insert request.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
}

const NEEDLE: &str = "req-5f0c2e9a7d31b844";
const APPS: [&str; 5] = ["checkout", "search", "auth", "cart", "payments"];
const HOUR_NS: i64 = 3_600_000_000_000;

/// One entry of the workload.
struct Line {
    ts: i64,
    app: &'static str,
    kind: &'static str,
    text: String,
}

/// A small deterministic generator, so every run and target sees the same lines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn workload(n: usize, start: i64) -> Vec<Line> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let paths = [
        "/api/v1/orders",
        "/api/v1/cart/items",
        "/search",
        "/login",
        "/static/app.js",
        "/api/v1/payments/charge",
        "/healthz",
    ];
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        "curl/7.88.1",
        "okhttp/4.12.0",
        "Go-http-client/2.0",
    ];
    let msgs = [
        "order placed",
        "cart updated",
        "payment authorised",
        "cache miss",
        "user logged in",
        "inventory reserved",
        "retrying upstream call",
    ];
    let levels = ["info", "info", "info", "info", "warn", "error", "debug"];
    (0..n)
        .map(|i| {
            let ts = start + (i as i128 * HOUR_NS as i128 / n as i128) as i64;
            let app = APPS[i % APPS.len()];
            let secs = ts / 1_000_000_000;
            let rid = if i == n / 2 { NEEDLE.to_string() } else { format!("req-{:016x}", r.next()) };
            if r.next() % 100 < 55 {
                let text = format!(
                    "10.{}.{}.{} - - [{}] \"{} {} HTTP/1.1\" {} {} \"-\" \"{}\" rt={}ms req_id={rid}",
                    r.next() % 256,
                    r.next() % 256,
                    r.next() % 256,
                    medic_model::format_rfc3339(secs * 1000),
                    r.pick(&["GET", "GET", "GET", "POST", "PUT"]),
                    r.pick(&paths),
                    r.pick(&["200", "200", "200", "200", "201", "304", "404", "500"]),
                    r.next() % 50_000,
                    r.pick(&agents),
                    r.next() % 900
                );
                Line { ts, app, kind: "access", text }
            } else if r.next() % 100 < 92 {
                let text = format!(
                    "{{\"ts\":\"{}\",\"level\":\"{}\",\"service\":\"{app}\",\"msg\":\"{}\",\"user\":\"u{}\",\"order_id\":{},\"latency_ms\":{}.{},\"request_id\":\"{rid}\",\"trace_id\":\"{:016x}{:016x}\"}}",
                    medic_model::format_rfc3339_millis(ts / 1_000_000),
                    r.pick(&levels),
                    r.pick(&msgs),
                    r.next() % 100_000,
                    r.next() % 10_000_000,
                    r.next() % 500,
                    r.next() % 10,
                    r.next(),
                    r.next()
                );
                Line { ts, app, kind: "app", text }
            } else {
                let mut text = format!("java.lang.IllegalStateException: order {} in state {} request_id={rid}", r.next() % 10_000_000, r.pick(&["NEW", "PAID", "SHIPPED"]));
                for f in 0..(6 + r.next() % 8) {
                    text.push_str(&format!(
                        "\n\tat com.shop.{app}.{}.{}({}.java:{})",
                        r.pick(&["OrderService", "CartController", "PaymentClient", "Repository"]),
                        r.pick(&["handle", "process", "apply", "lambda$run$0"]),
                        r.pick(&["OrderService", "CartController", "PaymentClient", "Repository"]),
                        40 + f * 7 + r.next() % 300
                    ));
                }
                Line { ts, app, kind: "app", text }
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Ingest and query figures of one target.
struct Figures {
    ingest_secs: f64,
    cpu_secs: f64,
    disk_bytes: u64,
    needle_ms: f64,
    count_ms: f64,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // The hour before the last whole hour: inside medic's retention and acceptance window.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let start = (now_ms / 3_600_000 - 2) * HOUR_NS;
    let lines = workload(a.lines, start);
    let raw_bytes: usize = lines.iter().map(|l| l.text.len() + 1).sum();
    eprintln!(
        "workload: {} entries, {:.1} MB of text",
        lines.len(),
        raw_bytes as f64 / 1e6
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let medic = rt.block_on(medic_run(&a, &lines, start))?;
    let ch = rt.block_on(clickhouse_run(&a, &lines, start))?;
    let (zstd_bytes, grep_ms) = physical(&a, &lines)?;
    let n = lines.len() as f64;
    println!("\n| figure ({} entries, {:.0} MB, one hour) | medic | ClickHouse 18.16 (Debian) | medic ÷ ClickHouse |", lines.len(), raw_bytes as f64 / 1e6);
    println!("|---|---:|---:|---:|");
    let row = |name: &str, m: f64, c: f64, unit: &str| {
        println!("| {name} | {m:.1}{unit} | {c:.1}{unit} | {:.2}× |", m / c)
    };
    row(
        "ingest, lines/s",
        n / medic.ingest_secs,
        n / ch.ingest_secs,
        "",
    );
    row(
        "lines per server CPU-second",
        n / medic.cpu_secs,
        n / ch.cpu_secs,
        "",
    );
    row(
        "bytes per line on disk",
        medic.disk_bytes as f64 / n,
        ch.disk_bytes as f64 / n,
        "",
    );
    row(
        "needle search (median ms)",
        medic.needle_ms,
        ch.needle_ms,
        "",
    );
    row(
        "count over the hour (median ms)",
        medic.count_ms,
        ch.count_ms,
        "",
    );
    println!("\nphysical limits over the raw file ({:.1} MB): zstd -19 {:.1} bytes/line (medic ÷ zstd {:.2}×); grep -c needle {:.1} ms (medic ÷ grep {:.2}×)",
        raw_bytes as f64 / 1e6, zstd_bytes as f64 / n, medic.disk_bytes as f64 / zstd_bytes as f64, grep_ms, medic.needle_ms / grep_ms);
    Ok(())
}

/// Pushes by stream, `batch` entries a request, two requests in flight.
async fn medic_run(a: &Args, lines: &[Line], start: i64) -> anyhow::Result<Figures> {
    let server = crate::ingest::start_with("medic", &a.medic, "logs:\n  retention: 3650d\n")?;
    let pid = server.child.id();
    let c = reqwest::Client::new();
    let bodies = push_bodies(lines, a.batch);
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let url = format!("{}/loki/api/v1/push", server.base);
    let mut it = bodies.into_iter();
    loop {
        let (x, y) = (it.next(), it.next());
        if x.is_none() {
            break;
        }
        let send = |b: Vec<u8>| {
            c.post(&url)
                .header("Content-Type", "application/x-protobuf")
                .body(b)
                .send()
        };
        let (r1, r2) = tokio::join!(send(x.unwrap()), async {
            match y {
                Some(b) => Some(send(b).await),
                None => None,
            }
        });
        for r in std::iter::once(r1).chain(r2) {
            let r = r?;
            if !r.status().is_success() {
                bail!(
                    "medic push: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
            }
        }
    }
    let ingest_secs = t0.elapsed().as_secs_f64();
    let r = c
        .post(format!("{}/api/v1/medic/logs/flush", server.base))
        .json(&serde_json::json!({}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("medic flush: {}", r.status());
    }
    let cpu_secs = cpu_seconds(pid) - cpu0;
    let disk_bytes = dir_bytes(&server.dir.path().join("data/logs"));
    let (s, e) = (start.to_string(), (start + HOUR_NS).to_string());
    let mut needle = Vec::new();
    let mut count = Vec::new();
    for _ in 0..a.reps {
        let t = Instant::now();
        let q = format!("{{env=\"prod\"}} |= \"{NEEDLE}\"");
        let v: serde_json::Value = c
            .get(format!("{}/loki/api/v1/query_range", server.base))
            .query(&[
                ("query", q.as_str()),
                ("start", &s),
                ("end", &e),
                ("limit", "100"),
            ])
            .send()
            .await?
            .json()
            .await?;
        needle.push(t.elapsed().as_secs_f64() * 1e3);
        let found: usize = v["data"]["result"].as_array().map_or(0, |r| {
            r.iter()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum()
        });
        if found != 1 {
            bail!("medic's needle search found {found} lines: {v}");
        }
        let t = Instant::now();
        let v: serde_json::Value = c
            .get(format!("{}/loki/api/v1/query", server.base))
            .query(&[
                ("query", "sum(count_over_time({env=\"prod\"}[1h]))"),
                ("time", &(start + HOUR_NS - 1).to_string()),
            ])
            .send()
            .await?
            .json()
            .await?;
        count.push(t.elapsed().as_secs_f64() * 1e3);
        let n: f64 = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0.0);
        if n as usize != lines.len() {
            bail!("medic counted {n} lines of {}: {v}", lines.len());
        }
    }
    Ok(Figures {
        ingest_secs,
        cpu_secs,
        disk_bytes,
        needle_ms: median(needle),
        count_ms: median(count),
    })
}

/// Snappy-compressed Loki pushes of `batch` entries each, grouped by stream.
fn push_bodies(lines: &[Line], batch: usize) -> Vec<Vec<u8>> {
    lines
        .chunks(batch)
        .map(|chunk| {
            let mut by: std::collections::BTreeMap<(&str, &str), Vec<proto::EntryAdapter>> =
                Default::default();
            for l in chunk {
                by.entry((l.app, l.kind))
                    .or_default()
                    .push(proto::EntryAdapter {
                        timestamp: Some(proto::Timestamp {
                            seconds: l.ts / 1_000_000_000,
                            nanos: (l.ts % 1_000_000_000) as i32,
                        }),
                        line: l.text.clone(),
                        structured_metadata: Vec::new(),
                    });
            }
            let req = proto::PushRequest {
                streams: by
                    .into_iter()
                    .map(|((app, kind), entries)| proto::StreamAdapter {
                        labels: format!("{{app=\"{app}\", env=\"prod\", kind=\"{kind}\"}}"),
                        entries,
                        hash: 0,
                    })
                    .collect(),
            };
            snap::raw::Encoder::new()
                .compress_vec(&prost::Message::encode_to_vec(&req))
                .expect("snappy")
        })
        .collect()
}

/// Debian's clickhouse-server with its packaged config, paths and ports moved to a temporary
/// directory.
struct ClickHouse {
    child: std::process::Child,
    base: String,
    /// Kept for the server's lifetime: its data and logs live here.
    _dir: tempfile::TempDir,
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn start_clickhouse() -> anyhow::Result<ClickHouse> {
    let bin = Path::new("/usr/sbin/clickhouse-server");
    if !bin.exists() {
        bail!(
            "{} is missing: apt-get install clickhouse-server clickhouse-client",
            bin.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let d = dir.path().display().to_string();
    let (http, tcp, inter) = (free_port(), free_port(), free_port());
    let cfg = std::fs::read_to_string("/etc/clickhouse-server/config.xml")?
        .replace("/var/lib/clickhouse/", &format!("{d}/data/"))
        .replace("/var/log/clickhouse-server/", &format!("{d}/log/"))
        .replace(
            "<http_port>8123</http_port>",
            &format!("<http_port>{http}</http_port>"),
        )
        .replace(
            "<tcp_port>9000</tcp_port>",
            &format!("<tcp_port>{tcp}</tcp_port>"),
        )
        .replace(
            "<interserver_http_port>9009</interserver_http_port>",
            &format!("<interserver_http_port>{inter}</interserver_http_port>"),
        );
    std::fs::write(dir.path().join("config.xml"), cfg)?;
    std::fs::copy(
        "/etc/clickhouse-server/users.xml",
        dir.path().join("users.xml"),
    )?;
    let child = Command::new(bin)
        .arg(format!("--config-file={d}/config.xml"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting clickhouse-server")?;
    let ch = ClickHouse {
        child,
        base: format!("http://127.0.0.1:{http}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        if Instant::now() > deadline {
            bail!("clickhouse-server did not listen");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(ch)
}

async fn ch_query(
    c: &reqwest::Client,
    base: &str,
    sql: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<String> {
    let req = c.post(base).query(&[("query", sql)]);
    // ClickHouse 18 wants a length even on an empty POST.
    let req = req.body(body.unwrap_or_else(|| b" ".to_vec()));
    let r = req.send().await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("clickhouse: {sql}: {status}: {text}");
    }
    Ok(text)
}

fn tsv_escape(s: &str, out: &mut String) {
    for ch in s.chars() {
        match ch {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
}

async fn clickhouse_run(a: &Args, lines: &[Line], start: i64) -> anyhow::Result<Figures> {
    let ch = start_clickhouse()?;
    let pid = ch.child.id();
    let c = reqwest::Client::new();
    ch_query(&c, &ch.base, "CREATE TABLE logs (ts UInt64, app String, env String, kind String, line String) ENGINE = MergeTree ORDER BY (app, kind, ts)", None).await?;
    let bodies: Vec<Vec<u8>> = lines
        .chunks(a.batch)
        .map(|chunk| {
            let mut s = String::new();
            for l in chunk {
                s.push_str(&format!("{}\t{}\tprod\t{}\t", l.ts, l.app, l.kind));
                tsv_escape(&l.text, &mut s);
                s.push('\n');
            }
            s.into_bytes()
        })
        .collect();
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut it = bodies.into_iter();
    loop {
        let (x, y) = (it.next(), it.next());
        let Some(x) = x else { break };
        let insert = "INSERT INTO logs FORMAT TabSeparated";
        let (r1, r2) = tokio::join!(ch_query(&c, &ch.base, insert, Some(x)), async {
            match y {
                Some(b) => Some(ch_query(&c, &ch.base, insert, Some(b)).await),
                None => None,
            }
        });
        r1?;
        if let Some(r) = r2 {
            r?;
        }
    }
    let ingest_secs = t0.elapsed().as_secs_f64();
    ch_query(&c, &ch.base, "OPTIMIZE TABLE logs FINAL", None).await?;
    let cpu_secs = cpu_seconds(pid) - cpu0;
    // Active parts only: merged-away ones wait minutes on disk before ClickHouse deletes them.
    let disk_bytes: u64 = ch_query(
        &c,
        &ch.base,
        "SELECT sum(bytes) FROM system.parts WHERE table = 'logs' AND active",
        None,
    )
    .await?
    .trim()
    .parse()
    .context("system.parts bytes")?;
    let mut needle = Vec::new();
    let mut count = Vec::new();
    for _ in 0..a.reps {
        let t = Instant::now();
        let n = ch_query(
            &c,
            &ch.base,
            &format!(
                "SELECT count() FROM logs WHERE env = 'prod' AND position(line, '{NEEDLE}') > 0"
            ),
            None,
        )
        .await?;
        needle.push(t.elapsed().as_secs_f64() * 1e3);
        if n.trim() != "1" {
            bail!("clickhouse's needle search found {n}");
        }
        let t = Instant::now();
        let n = ch_query(
            &c,
            &ch.base,
            &format!(
                "SELECT count() FROM logs WHERE env = 'prod' AND ts >= {start} AND ts < {}",
                start + HOUR_NS
            ),
            None,
        )
        .await?;
        count.push(t.elapsed().as_secs_f64() * 1e3);
        if n.trim() != lines.len().to_string() {
            bail!("clickhouse counted {n}");
        }
    }
    Ok(Figures {
        ingest_secs,
        cpu_secs,
        disk_bytes,
        needle_ms: median(needle),
        count_ms: median(count),
    })
}

/// `zstd -19` size of the raw file, and the median time of `grep -c` for the needle in it.
fn physical(a: &Args, lines: &[Line]) -> anyhow::Result<(u64, f64)> {
    let dir = tempfile::tempdir()?;
    let raw = dir.path().join("raw.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&raw)?);
    for l in lines {
        writeln!(f, "{}", l.text)?;
    }
    f.flush()?;
    drop(f);
    let zst = dir.path().join("raw.log.zst");
    let st = Command::new("zstd")
        .args(["-19", "-q", "-T1", "-f"])
        .arg(&raw)
        .arg("-o")
        .arg(&zst)
        .status()
        .context("zstd (Debian package zstd)")?;
    if !st.success() {
        bail!("zstd failed");
    }
    let zstd_bytes = std::fs::metadata(&zst)?.len();
    let mut times = Vec::new();
    for _ in 0..a.reps.max(3) {
        let t = Instant::now();
        let out = Command::new("grep")
            .args(["-c", NEEDLE])
            .arg(&raw)
            .output()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if String::from_utf8_lossy(&out.stdout).trim() != "1" {
            bail!("grep found {:?}", String::from_utf8_lossy(&out.stdout));
        }
    }
    Ok((zstd_bytes, median(times)))
}
