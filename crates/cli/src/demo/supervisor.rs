//! The demo's supervisor: runs the patients as child processes and offers the HTTP API the demo
//! playbooks call where a real setup calls systemd, Kubernetes or a deploy tool. It also
//! receives the alert manager's webhooks, so the timeline can show who was told what.
//!
//! ```text
//! GET  /instances                  every instance
//! GET  /instances/{name}           {name, state, exit_code, version, previous, deployed_at, …}
//! POST /instances/{name}/restart   stop it if it runs, start it again
//! POST /instances/{name}/rollback  go back to the previous version
//! POST /jobs/{job}/scale-out       start one more instance
//! POST /jobs/{job}/scale-in        stop the newest instance
//! POST /notify/{receiver}          an Alertmanager webhook message
//! ```
//!
//! Every control call is appended to `supervisor.log` in the demo directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::view::Timeline;

/// What the supervisor does wrong on purpose, for the scenario suite.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Trouble {
    /// Scale-out starts an instance that never becomes healthy and answers 500.
    pub scale_out_fails: bool,
    /// Restarted instances crash again this many seconds after starting.
    pub crash_after_restart: Option<f64>,
}

/// Instances run at most this many at once.
pub const MAX_INSTANCES: usize = 6;

pub struct Instance {
    pub name: String,
    pub port: u16,
    pub version: String,
    pub previous: Option<String>,
    pub deployed_at: Option<f64>,
    pub log_dir: PathBuf,
    child: Option<Child>,
    pub exit_code: Option<i32>,
    pub restarts: u32,
    /// Listed in the targets file (scraped, sent traffic).
    pub in_service: bool,
}

impl Instance {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    fn state(&self) -> &'static str {
        if self.child.is_some() {
            "running"
        } else if self.exit_code.is_some() {
            "exited"
        } else {
            "stopped"
        }
    }
}

/// Called with the instance name when a restart is asked for, before it happens.
pub type RestartHook = Box<dyn Fn(&str) + Send + Sync>;

pub struct Supervisor {
    exe: PathBuf,
    dir: PathBuf,
    pub addr: SocketAddr,
    timeline: Arc<Timeline>,
    trouble: Trouble,
    instances: Mutex<BTreeMap<String, Instance>>,
    next: Mutex<u32>,
    on_restart: Mutex<Option<RestartHook>>,
    notifications: Mutex<Vec<(String, Value)>>,
    calls: Mutex<Vec<String>>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl Supervisor {
    /// Binds the API on a free loopback port and serves it on the current runtime.
    pub async fn start(
        exe: PathBuf,
        dir: PathBuf,
        timeline: Arc<Timeline>,
        trouble: Trouble,
    ) -> anyhow::Result<Arc<Supervisor>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the supervisor's API")?;
        let sup = Arc::new(Supervisor {
            exe,
            dir,
            addr: listener.local_addr()?,
            timeline,
            trouble,
            instances: Mutex::new(BTreeMap::new()),
            next: Mutex::new(1),
            on_restart: Mutex::new(None),
            notifications: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/instances", get(list))
            .route("/instances/{name}", get(show))
            .route("/instances/{name}/restart", post(restart))
            .route("/instances/{name}/rollback", post(rollback))
            .route("/jobs/{job}/scale-out", post(scale_out))
            .route("/jobs/{job}/scale-in", post(scale_in))
            .route("/notify/{receiver}", post(notify))
            .with_state(sup.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let reaper = sup.clone();
        tokio::spawn(async move {
            loop {
                reaper.reap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Ok(sup)
    }

    pub fn set_restart_hook(&self, hook: RestartHook) {
        *self.on_restart.lock().unwrap() = Some(hook);
    }

    fn record(&self, call: String) {
        let line = format!("{:.3} {call}", unix_now());
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("supervisor.log"))
        {
            let _ = writeln!(f, "{line}");
        }
        self.calls.lock().unwrap().push(call);
    }

    /// Control calls received so far (`restart web-1`, `scale-out web`, …).
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// Webhook messages received so far, with their receiver.
    pub fn notifications(&self) -> Vec<(String, Value)> {
        self.notifications.lock().unwrap().clone()
    }

    /// Notices instances whose process exited.
    fn reap(&self) {
        let mut exited = Vec::new();
        {
            let mut all = self.instances.lock().unwrap();
            for i in all.values_mut() {
                if let Some(c) = &mut i.child {
                    if let Ok(Some(st)) = c.try_wait() {
                        i.child = None;
                        i.exit_code = Some(st.code().unwrap_or(-1));
                        exited.push((i.name.clone(), st));
                    }
                }
            }
        }
        for (name, st) in exited {
            self.timeline
                .event("✗", format!("{name}: process exited ({st})"));
        }
    }

    /// Addresses of the instances in service whose process runs.
    pub fn serving(&self) -> Vec<(String, u16)> {
        self.instances
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.in_service && i.running())
            .map(|i| (i.name.clone(), i.port))
            .collect()
    }

    pub fn port_of(&self, name: &str) -> Option<u16> {
        self.instances.lock().unwrap().get(name).map(|i| i.port)
    }

    pub fn log_dir_of(&self, name: &str) -> Option<PathBuf> {
        self.instances
            .lock()
            .unwrap()
            .get(name)
            .map(|i| i.log_dir.clone())
    }

    pub fn count(&self) -> usize {
        self.instances
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.in_service)
            .count()
    }

    /// Records a new instance `web-N` (not started, not in service) and returns its name.
    fn reserve(&self, version: &str) -> anyhow::Result<String> {
        let name = {
            let mut n = self.next.lock().unwrap();
            let name = format!("web-{n}");
            *n += 1;
            name
        };
        let port = free_port()?;
        let log_dir = self.dir.join(&name).join("logs");
        std::fs::create_dir_all(&log_dir)?;
        self.instances.lock().unwrap().insert(
            name.clone(),
            Instance {
                name: name.clone(),
                port,
                version: version.to_string(),
                previous: None,
                deployed_at: None,
                log_dir,
                child: None,
                exit_code: None,
                restarts: 0,
                in_service: false,
            },
        );
        Ok(name)
    }

    /// Starts a new instance `web-N` and puts it in service once it answers.
    pub fn add(&self, version: &str) -> anyhow::Result<String> {
        let name = self.reserve(version)?;
        self.spawn(&name, None)?;
        self.instances
            .lock()
            .unwrap()
            .get_mut(&name)
            .expect("just added")
            .in_service = true;
        self.write_targets()?;
        Ok(name)
    }

    /// Starts the instance's process (stopping a running one first) and waits until it answers.
    fn spawn(&self, name: &str, crash_after: Option<f64>) -> anyhow::Result<()> {
        let (port, version, log_dir, old) = {
            let mut all = self.instances.lock().unwrap();
            let i = all
                .get_mut(name)
                .with_context(|| format!("no instance {name}"))?;
            (i.port, i.version.clone(), i.log_dir.clone(), i.child.take())
        };
        if let Some(mut c) = old {
            let _ = c.kill();
            let _ = c.wait();
        }
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(name).join("stderr.log"))?;
        let mut cmd = Command::new(&self.exe);
        cmd.args(["demo", "patient", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--app-version")
            .arg(&version)
            .arg("--log-dir")
            .arg(&log_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        if let Some(s) = crash_after {
            cmd.arg("--crash-after").arg(s.to_string());
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        {
            let mut all = self.instances.lock().unwrap();
            let i = all.get_mut(name).expect("checked above");
            i.child = Some(child);
            i.exit_code = None;
        }
        // Ready when it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            self.reap();
            let alive = self
                .instances
                .lock()
                .unwrap()
                .get(name)
                .is_some_and(Instance::running);
            if !alive || Instant::now() > deadline {
                anyhow::bail!("{name} did not start answering on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&self, name: &str) -> anyhow::Result<()> {
        self.spawn(name, self.trouble.crash_after_restart)?;
        if let Some(i) = self.instances.lock().unwrap().get_mut(name) {
            i.restarts += 1;
        }
        Ok(())
    }

    /// Switches an instance to `version`, remembering the one it ran.
    pub fn deploy(&self, name: &str, version: &str) -> anyhow::Result<()> {
        {
            let mut all = self.instances.lock().unwrap();
            let i = all
                .get_mut(name)
                .with_context(|| format!("no instance {name}"))?;
            i.previous = Some(std::mem::replace(&mut i.version, version.to_string()));
            i.deployed_at = Some(unix_now());
        }
        self.spawn(name, None)
    }

    pub fn rollback(&self, name: &str) -> anyhow::Result<String> {
        let version = {
            let mut all = self.instances.lock().unwrap();
            let i = all
                .get_mut(name)
                .with_context(|| format!("no instance {name}"))?;
            let prev = i
                .previous
                .take()
                .with_context(|| format!("{name} has no previous version"))?;
            i.version = prev.clone();
            i.deployed_at = Some(unix_now());
            prev
        };
        self.spawn(name, None)?;
        Ok(version)
    }

    pub fn scale_out(&self) -> anyhow::Result<String> {
        if self.count() >= MAX_INSTANCES {
            anyhow::bail!("already {MAX_INSTANCES} instances");
        }
        if self.trouble.scale_out_fails {
            // A new instance that dies at once (think: a bad image): it is never put in service.
            let name = self.add_broken()?;
            anyhow::bail!("{name} did not become healthy");
        }
        self.add("v1.4.2")
    }

    fn add_broken(&self) -> anyhow::Result<String> {
        let name = self.reserve("v1.4.2")?;
        let _ = self.spawn(&name, Some(0.0));
        Ok(name)
    }

    /// Stops the newest instance (beyond the first).
    pub fn scale_in(&self) -> anyhow::Result<String> {
        let (name, child) = {
            let mut all = self.instances.lock().unwrap();
            let newest = all
                .values()
                .filter(|i| i.name != "web-1")
                .max_by_key(|i| i.name[4..].parse::<u32>().unwrap_or(0))
                .map(|i| i.name.clone())
                .context("nothing to scale in")?;
            let mut i = all.remove(&newest).expect("found above");
            (newest, i.child.take())
        };
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.write_targets()?;
        Ok(name)
    }

    /// Writes `targets/web.json` (file_sd) atomically: rename over the old file.
    fn write_targets(&self) -> anyhow::Result<()> {
        let groups: Vec<Value> = self
            .instances
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.in_service)
            .map(|i| {
                json!({
                    "targets": [format!("127.0.0.1:{}", i.port)],
                    "labels": {"instance": i.name, "log_dir": i.log_dir.display().to_string()},
                })
            })
            .collect();
        let dir = self.dir.join("targets");
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(".web.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&groups)?)?;
        std::fs::rename(&tmp, dir.join("web.json"))?;
        Ok(())
    }

    /// Stops every instance.
    pub fn stop_all(&self) {
        let mut all = self.instances.lock().unwrap();
        for i in all.values_mut() {
            if let Some(mut c) = i.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    fn describe(&self, name: &str) -> Option<Value> {
        let all = self.instances.lock().unwrap();
        let i = all.get(name)?;
        Some(json!({
            "name": i.name,
            "state": i.state(),
            "exit_code": i.exit_code,
            "port": i.port,
            "version": i.version,
            "previous": i.previous,
            "deployed_at": i.deployed_at,
            "deployed_seconds_ago": i.deployed_at.map(|t| unix_now() - t),
            "restarts": i.restarts,
            "in_service": i.in_service,
            "log_dir": i.log_dir,
        }))
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

type S = State<Arc<Supervisor>>;

fn err(code: StatusCode, e: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    (
        code,
        Json(json!({"status": "error", "error": e.to_string()})),
    )
}

async fn list(State(s): S) -> Json<Value> {
    let names: Vec<String> = s.instances.lock().unwrap().keys().cloned().collect();
    Json(Value::Array(
        names.iter().filter_map(|n| s.describe(n)).collect(),
    ))
}

async fn show(State(s): S, UrlPath(name): UrlPath<String>) -> (StatusCode, Json<Value>) {
    match s.describe(&name) {
        Some(v) => (StatusCode::OK, Json(v)),
        None => err(StatusCode::NOT_FOUND, format!("no instance {name:?}")),
    }
}

/// Runs a blocking control operation off the async threads.
async fn blocking<T: Send + 'static>(
    s: &Arc<Supervisor>,
    f: impl FnOnce(&Supervisor) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
}

async fn restart(State(s): S, UrlPath(name): UrlPath<String>) -> (StatusCode, Json<Value>) {
    s.record(format!("restart {name}"));
    if s.describe(&name).is_none() {
        return err(StatusCode::NOT_FOUND, format!("no instance {name:?}"));
    }
    if let Some(hook) = &*s.on_restart.lock().unwrap() {
        hook(&name);
    }
    s.timeline
        .event("⚙", format!("supervisor: restarting {name}"));
    let n = name.clone();
    match blocking(&s, move |s| s.restart(&n)).await {
        Ok(()) => (
            StatusCode::OK,
            Json(s.describe(&name).unwrap_or(Value::Null)),
        ),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn rollback(State(s): S, UrlPath(name): UrlPath<String>) -> (StatusCode, Json<Value>) {
    s.record(format!("rollback {name}"));
    let n = name.clone();
    match blocking(&s, move |s| s.rollback(&n)).await {
        Ok(v) => {
            s.timeline
                .event("⚙", format!("supervisor: rolled {name} back to {v}"));
            (
                StatusCode::OK,
                Json(s.describe(&name).unwrap_or(Value::Null)),
            )
        }
        Err(e) => err(StatusCode::CONFLICT, e),
    }
}

async fn scale_out(State(s): S, UrlPath(job): UrlPath<String>) -> (StatusCode, Json<Value>) {
    s.record(format!("scale-out {job}"));
    if job != "web" {
        return err(StatusCode::NOT_FOUND, format!("no job {job:?}"));
    }
    match blocking(&s, |s| s.scale_out()).await {
        Ok(name) => {
            s.timeline.event(
                "⚙",
                format!("supervisor: started {name}; {} instances", s.count()),
            );
            (
                StatusCode::OK,
                Json(s.describe(&name).unwrap_or(Value::Null)),
            )
        }
        Err(e) => {
            s.timeline
                .event("⚙", format!("supervisor: scale-out failed: {e}"));
            err(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

async fn scale_in(State(s): S, UrlPath(job): UrlPath<String>) -> (StatusCode, Json<Value>) {
    s.record(format!("scale-in {job}"));
    if job != "web" {
        return err(StatusCode::NOT_FOUND, format!("no job {job:?}"));
    }
    match blocking(&s, |s| s.scale_in()).await {
        Ok(name) => {
            s.timeline.event(
                "⚙",
                format!("supervisor: stopped {name}; {} instances", s.count()),
            );
            (StatusCode::OK, Json(json!({"stopped": name})))
        }
        Err(e) => err(StatusCode::CONFLICT, e),
    }
}

async fn notify(
    State(s): S,
    UrlPath(receiver): UrlPath<String>,
    Json(msg): Json<Value>,
) -> StatusCode {
    let alerts = msg["alerts"].as_array().cloned().unwrap_or_default();
    for a in &alerts {
        let l = &a["labels"];
        let text = if let Some(ev) = l["medic_event"].as_str() {
            format!(
                "{receiver} ← medic {ev}: {}",
                a["annotations"]["summary"]
                    .as_str()
                    .or(a["annotations"]["description"].as_str())
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            )
        } else {
            format!(
                "{receiver} ← {} {}{}",
                a["status"].as_str().unwrap_or("?"),
                l["alertname"].as_str().unwrap_or("?"),
                l["instance"]
                    .as_str()
                    .or(l["job"].as_str())
                    .map(|i| format!(" on {i}"))
                    .unwrap_or_default()
            )
        };
        s.timeline.event("✉", text);
    }
    s.notifications.lock().unwrap().push((receiver, msg));
    StatusCode::OK
}
