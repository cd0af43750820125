//! Starting and stopping the real binary, and talking to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medic_server::remote_write::{encode, proto};

/// A medic process. Killed (SIGKILL) when dropped.
pub struct Medic {
    child: Child,
    pub addr: String,
    /// `http` or `https`.
    pub scheme: String,
    pub stderr_log: PathBuf,
}

impl Medic {
    /// Starts `medic run` with `args` (plus `--listen 127.0.0.1:0` unless given) and waits for
    /// its "listening" line.
    pub fn start(data: &Path, config: Option<&Path>, extra: &[&str]) -> Medic {
        let stderr_log = data.with_extension(format!("stderr.{}.log", std::process::id()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medic"));
        cmd.arg("run").arg("--data").arg(data);
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(extra)
            .env("MEDIC_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn medic");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("medic listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let (scheme, addr) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => {
                let (scheme, addr) = url.split_once("://").expect("a URL");
                (scheme.to_string(), addr.to_string())
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "medic did not start; stderr:\n{}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                );
            }
        };
        Medic {
            child,
            addr,
            scheme,
            stderr_log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and wait.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) with a valid pid of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "medic did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Medic {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Labels and `(timestamp, value)` samples of one series.
pub type TestSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// A remote write request from `(labels, samples)`.
pub fn write_request(series: &[TestSeries]) -> Vec<u8> {
    let req = proto::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| proto::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| proto::Label {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| proto::Sample { value, timestamp })
                    .collect(),
                histograms: vec![],
            })
            .collect(),
    };
    encode(&req)
}

pub async fn post_write(
    c: &reqwest::Client,
    base: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    c.post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
}

/// One exported series.
#[derive(Debug, serde::Deserialize)]
pub struct Exported {
    pub metric: std::collections::BTreeMap<String, String>,
    pub values: Vec<serde_json::Value>,
    pub timestamps: Vec<i64>,
}

pub async fn export(c: &reqwest::Client, base: &str, selector: &str) -> Vec<Exported> {
    let text = c
        .get(format!("{base}/api/v1/export"))
        .query(&[("match[]", selector)])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// medic's own `/metrics`, as text.
pub async fn metrics_text(c: &reqwest::Client, medic: &Medic) -> String {
    c.get(medic.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn get_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fails with the Debian package to install when a binary the test needs is missing.
pub fn require_binary(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "this test needs {path}; install the Debian package `{package}` (apt-get install -y {package}), \
         which the README's test command does"
    );
}

/// A real Prometheus (Debian package `prometheus`) on a free loopback port, killed when dropped.
pub struct Prometheus {
    child: std::process::Child,
    /// Its port.
    pub port: u16,
}

impl Prometheus {
    /// Starts Prometheus with the config `config(port)` returns (YAML) and `extra` flags, data
    /// under `dir`.
    pub fn start(dir: &Path, config: impl Fn(u16) -> String, extra: &[&str]) -> Prometheus {
        require_binary("/usr/bin/prometheus", "prometheus");
        let port = free_port();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config(port)).unwrap();
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Prometheus { child, port }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// VictoriaMetrics (Debian `victoria-metrics`) on `port`, its data in `data`; a query sees
/// samples as soon as they are stored (`-search.latencyOffset=0s`).
pub fn victoria_metrics(data: &Path, port: u16) -> std::process::Child {
    require_binary("/usr/bin/victoria-metrics", "victoria-metrics");
    Command::new("/usr/bin/victoria-metrics")
        .arg(format!("-storageDataPath={}", data.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=100y")
        .arg("-search.latencyOffset=0s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start victoria-metrics")
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real HTTP server that records every POST it receives: path and JSON body. Answers with
/// the status set for the path (200 by default), so tests can make a receiver fail.
#[derive(Clone)]
pub struct Capture {
    pub addr: std::net::SocketAddr,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
    status: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u16>>>,
}

impl Capture {
    /// Starts the server on a free loopback port (on the current tokio runtime).
    pub async fn start() -> Capture {
        use axum::extract::State;
        type Shared = (
            std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
            std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u16>>>,
        );
        async fn record(
            State((got, status)): State<Shared>,
            uri: axum::http::Uri,
            body: axum::body::Bytes,
        ) -> axum::http::StatusCode {
            let path = uri.path().to_string();
            let v = serde_json::from_slice(&body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&body).into())
            });
            let code = status.lock().unwrap().get(&path).copied().unwrap_or(200);
            got.lock().unwrap().push((path, v));
            axum::http::StatusCode::from_u16(code).unwrap()
        }
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let status = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let app = axum::Router::new()
            .fallback(axum::routing::post(record))
            .with_state((got.clone(), status.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Capture { addr, got, status }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything received at `path`, in order.
    pub fn at(&self, path: &str) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Everything received, with paths.
    pub fn all(&self) -> Vec<(String, serde_json::Value)> {
        self.got.lock().unwrap().clone()
    }

    /// Makes `path` answer with `code`.
    pub fn set_status(&self, path: &str, code: u16) {
        self.status.lock().unwrap().insert(path.to_string(), code);
    }

    /// Waits until `path` has received a request whose body satisfies `pred`, and returns it.
    /// For receivers that several groups reach, whose order of arrival is not fixed.
    pub async fn wait_for_match(
        &self,
        path: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
        timeout: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.at(path).into_iter().find(|v| pred(v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no matching request at {path}; all: {:#?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `path` has received at least `n` requests.
    pub async fn wait_for(
        &self,
        path: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.at(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path} received {} requests, expected {n}: {got:#?}\nall: {:#?}",
                got.len(),
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A real Alertmanager (Debian package `prometheus-alertmanager`) on a free loopback port,
/// clustering off, killed when dropped.
pub struct Alertmanager {
    child: std::process::Child,
    pub port: u16,
}

impl Alertmanager {
    pub fn start(dir: &Path, config: &str) -> Alertmanager {
        require_binary(
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
        );
        let port = free_port();
        let cfg = dir.join("alertmanager-real.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new("/usr/bin/prometheus-alertmanager")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "alertmanager did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        am
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts medic with `alertmanager.yml` text as its alerting config (and no scraping), in
/// `dir`; `extra_config` is appended to medic.yml.
pub fn medic_with_alerting(dir: &Path, am_config: &str, extra_config: &str) -> Medic {
    std::fs::write(dir.join("alertmanager.yml"), am_config).unwrap();
    let cfg = dir.join("medic.yml");
    std::fs::write(
        &cfg,
        format!("scrape_configs: []\nalerting:\n  config_file: alertmanager.yml\n{extra_config}"),
    )
    .unwrap();
    Medic::start(&dir.join("data"), Some(&cfg), &[])
}

/// Polls `f` until it returns Some, for at most 30 s; the panic names `what` and shows medic's log.
pub async fn eventually<T, F, Fut>(what: &str, medic: &Medic, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; medic log:\n{}",
            medic.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Milliseconds since the epoch, by the clock medic reads.
pub fn now_ms() -> i64 {
    medic_model::Clock::now_ms(&medic_model::SystemClock)
}

/// The value of the first line of a Prometheus text exposition that starts with `line_start`
/// (a metric name with its labels), 0 when there is none.
pub fn counter(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Opens `target` (a file or URL) in Debian's headless Chromium through playwright-core and
/// returns what it drew (`crates/cli/tests/browser/render.mjs`): the title, each `<svg>`'s
/// rendered size and lines, page errors and requests. Saves a full-page screenshot at `png`.
/// Fails naming what to install when Chromium or the npm package is missing.
pub fn render_in_chromium(target: &str, png: &Path) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: install the Debian package chromium (scripts/test.sh does)"
    );
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix crates/cli/tests/browser` (scripts/test.sh does)"
    );
    let out = std::process::Command::new("node")
        .arg(dir.join("render.mjs"))
        .arg(target)
        .arg(png)
        .output()
        .expect("node is missing: install the Debian package nodejs");
    assert!(
        out.status.success(),
        "chromium could not render {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("render.mjs prints JSON")
}

/// A real SMTP server on loopback: Python's aiosmtpd (PyPI `aiosmtpd`, which the README's test
/// command installs), writing what it receives to a Maildir.
pub struct SmtpServer {
    child: std::process::Child,
    pub port: u16,
    pub mbox: std::path::PathBuf,
}

impl SmtpServer {
    pub fn start(dir: &std::path::Path) -> SmtpServer {
        let probe = std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .expect("python3");
        assert!(
            probe.status.success(),
            "this test needs the Python package aiosmtpd (pip install aiosmtpd), which the README's test command installs"
        );
        let port = free_port();
        let mbox = dir.join("maildir");
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&mbox)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer { child, port, mbox }
    }

    /// The messages received so far, as raw RFC 5322 text.
    pub fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.mbox.join("new"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `medic` CLI against `m` (`MEDIC_URL`); (success, stdout, stderr).
pub fn medic_cli_at(m: &Medic, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .env("MEDIC_URL", m.url(""))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
