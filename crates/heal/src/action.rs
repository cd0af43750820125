//! Running commands and HTTP requests for collectors, actions and verification.
//!
//! Commands never go through a shell: each argument is expanded on its own and passed to
//! `execve` as one argument, so an alert label holding `x; rm -rf /` is a string, not a
//! command. A command runs in its own process group, which is killed whole on timeout.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value as Json};
use tokio::io::AsyncReadExt;

use crate::playbook::{ExecSpec, HttpSpec, Scope};

/// The most output kept from a command or response body.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// A command with its templates expanded: what would run.
#[derive(Debug, Clone, Serialize)]
pub struct Command {
    pub argv: Vec<String>,
    /// Values are shown as `<secret>` wherever the command is shown (journal, API, dry run):
    /// `env` is where credentials such as `PGPASSWORD` go.
    #[serde(serialize_with = "masked_values")]
    pub env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    pub timeout_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_regex")]
    pub expect_output: Option<regex::Regex>,
}

impl PartialEq for Command {
    fn eq(&self, o: &Self) -> bool {
        self.argv == o.argv
            && self.env == o.env
            && self.dir == o.dir
            && self.timeout_ms == o.timeout_ms
            && self.expect_output.as_ref().map(regex::Regex::as_str)
                == o.expect_output.as_ref().map(regex::Regex::as_str)
    }
}

/// What is shown instead of a secret value, as Prometheus shows it.
pub const MASK: &str = "<secret>";

fn masked_values<S: serde::Serializer>(
    m: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(m.len()))?;
    for k in m.keys() {
        map.serialize_entry(k, MASK)?;
    }
    map.end()
}

fn masked_headers<S: serde::Serializer>(
    m: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    const PLAIN: &[&str] = &["accept", "content-type", "user-agent", "accept-encoding"];
    let mut map = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        let shown = if PLAIN.contains(&k.to_ascii_lowercase().as_str()) {
            v.as_str()
        } else {
            MASK
        };
        map.serialize_entry(k, shown)?;
    }
    map.end()
}

mod opt_regex {
    pub fn serialize<S: serde::Serializer>(
        r: &Option<regex::Regex>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match r {
            Some(r) => s.serialize_str(r.as_str()),
            None => s.serialize_none(),
        }
    }
}

/// A request with its templates expanded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    pub method: String,
    pub url: String,
    /// Shown with values masked, except headers that never carry credentials.
    #[serde(serialize_with = "masked_headers")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub expect_status: Vec<u16>,
    pub timeout_ms: i64,
}

/// Expands a command's templates.
pub fn command(spec: &ExecSpec, scope: &Scope) -> Result<Command, String> {
    let mut argv: Vec<String> = Vec::with_capacity(spec.command.len());
    let mut options_ended = false;
    for (i, a) in spec.command.iter().enumerate() {
        let v = a.expand(scope).map_err(|e| format!("command[{i}]: {e}"))?;
        // A value from a template must never become an option: `find {{ $labels.dir }}` fed
        // `-delete` would delete. An argument the author wrote starting with `-` (`--unit={{…}}`)
        // is an option on purpose; after a literal `--` nothing is an option.
        if i > 0
            && !options_ended
            && a.is_template()
            && v.starts_with('-')
            && !a.source().starts_with('-')
        {
            return Err(format!(
                "command[{i}]: the value {v:?} starts with '-' and {:?} would read it as an option; refused (constrain it with a `params` pattern, or put \"--\" before it)",
                argv[0]
            ));
        }
        if !a.is_template() && v == "--" {
            options_ended = true;
        }
        argv.push(v);
    }
    let mut env = BTreeMap::new();
    for (k, v) in &spec.env {
        let v = v.expand(scope).map_err(|e| format!("env.{k}: {e}"))?;
        if v.contains('\0') {
            return Err(format!("env.{k}: contains a NUL byte"));
        }
        env.insert(k.clone(), v);
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err("an argument contains a NUL byte".into());
    }
    let dir = spec
        .dir
        .as_ref()
        .map(|d| d.expand(scope))
        .transpose()
        .map_err(|e| format!("dir: {e}"))?;
    Ok(Command {
        argv,
        env,
        dir,
        timeout_ms: spec.timeout,
        expect_output: spec.expect_output.clone(),
    })
}

/// Whether the host part of a URL as written (`scheme://host/…`) holds a template.
fn host_is_templated(source: &str) -> bool {
    let rest = source.split_once("://").map_or(source, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.contains("{{") || !source.contains("://")
}

/// Expands a request's templates. A URL whose host comes from alert data gets no credentials
/// unless the playbook lists the hosts they may go to (`hosts:`): a crafted `instance` label
/// must not receive the `Authorization` header.
pub fn request(spec: &HttpSpec, scope: &Scope) -> Result<Request, String> {
    let url = spec.url.expand(scope).map_err(|e| format!("url: {e}"))?;
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| format!("url: not a valid URL once expanded: {e}"))?;
    let sensitive = spec.headers.iter().any(|(k, _)| {
        !matches!(
            k.to_ascii_lowercase().as_str(),
            "content-type" | "accept" | "user-agent" | "accept-encoding"
        )
    });
    if sensitive && spec.url.is_template() && host_is_templated(spec.url.source()) {
        let host = parsed.host_str().unwrap_or("");
        let with_port = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let allowed = spec
            .hosts
            .iter()
            .any(|re| re.is_match(host) || re.is_match(&with_port));
        if !allowed {
            return Err(format!(
                "url: the host {with_port:?} comes from a template and is not among the playbook's `hosts`; the request's headers are not sent there (list the hosts credentials may go to under `hosts:`)"
            ));
        }
    }
    let mut headers = BTreeMap::new();
    for (k, v) in &spec.headers {
        headers.insert(
            k.clone(),
            v.expand(scope).map_err(|e| format!("headers.{k}: {e}"))?,
        );
    }
    let body = spec
        .body
        .as_ref()
        .map(|b| b.expand(scope))
        .transpose()
        .map_err(|e| format!("body: {e}"))?;
    Ok(Request {
        method: spec.method.to_string(),
        url,
        headers,
        body,
        expect_status: spec.expect_status.clone(),
        timeout_ms: spec.timeout,
    })
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl ExecResult {
    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        if self.timed_out {
            return "timed out; the process group was killed".into();
        }
        let mut s = match self.exit_code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".into(),
        };
        let tail = self.stderr.trim();
        if !self.ok && !tail.is_empty() {
            let tail: String = tail
                .chars()
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            s.push_str(": ");
            s.push_str(&tail);
        }
        s
    }
}

/// Runs a command (no shell) with `extra_env` added, killing its process group on timeout.
pub async fn run_command(c: &Command, extra_env: &[(&str, &str)]) -> ExecResult {
    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::new(&c.argv[0]);
    cmd.args(&c.argv[1..])
        .envs(&c.env)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(d) = &c.dir {
        cmd.current_dir(d);
    }
    let fail = |e: String| ExecResult {
        exit_code: None,
        stdout: String::new(),
        stderr: String::new(),
        timed_out: false,
        ok: false,
        error: Some(e),
        duration_ms: started.elapsed().as_millis() as i64,
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run {:?}: {e}", c.argv[0])),
    };
    let pid = child.id();
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let read_out = async move {
        let mut buf = Vec::new();
        let _ = (&mut out)
            .take(MAX_OUTPUT as u64)
            .read_to_end(&mut buf)
            .await;
        // Drain the rest so the child never blocks on a full pipe.
        let _ = tokio::io::copy(&mut out, &mut tokio::io::sink()).await;
        buf
    };
    let read_err = async move {
        let mut buf = Vec::new();
        let _ = (&mut err)
            .take(MAX_OUTPUT as u64)
            .read_to_end(&mut buf)
            .await;
        let _ = tokio::io::copy(&mut err, &mut tokio::io::sink()).await;
        buf
    };
    let timeout = Duration::from_millis(c.timeout_ms.max(1) as u64);
    let run = async { tokio::join!(child.wait(), read_out, read_err) };
    match tokio::time::timeout(timeout, run).await {
        Ok((status, o, e)) => {
            let status = match status {
                Ok(s) => s,
                Err(e) => return fail(format!("waiting for {:?}: {e}", c.argv[0])),
            };
            let stdout = String::from_utf8_lossy(&o).into_owned();
            let matched = c.expect_output.as_ref().is_none_or(|r| r.is_match(&stdout));
            ExecResult {
                exit_code: status.code(),
                error: (status.success() && !matched).then(|| {
                    format!(
                        "exit code 0 but the output does not match {:?}: {}",
                        c.expect_output
                            .as_ref()
                            .map(regex::Regex::as_str)
                            .unwrap_or(""),
                        stdout.trim().chars().take(200).collect::<String>()
                    )
                }),
                stdout,
                stderr: String::from_utf8_lossy(&e).into_owned(),
                timed_out: false,
                ok: status.success() && matched,
                duration_ms: started.elapsed().as_millis() as i64,
            }
        }
        Err(_) => {
            if let Some(pid) = pid {
                // The whole group: a command's children go too.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            ExecResult {
                exit_code: None,
                stdout: String::new(),
                stderr: String::new(),
                timed_out: true,
                ok: false,
                error: None,
                duration_ms: started.elapsed().as_millis() as i64,
            }
        }
    }
}

/// What a request did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub body: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl HttpResult {
    pub fn summary(&self) -> String {
        match (&self.error, self.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => "no response".into(),
        }
    }
}

/// Sends a request; success is an expected status (any 2xx when none is listed).
pub async fn run_request(client: &reqwest::Client, r: &Request) -> HttpResult {
    let started = std::time::Instant::now();
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client
        .request(method, &r.url)
        .timeout(Duration::from_millis(r.timeout_ms.max(1) as u64));
    for (k, v) in &r.headers {
        req = req.header(k, v);
    }
    if let Some(b) = &r.body {
        req = req.body(b.clone());
    }
    let res = match req.send().await {
        Ok(res) => res,
        Err(e) => {
            return HttpResult {
                status: None,
                body: String::new(),
                ok: false,
                // Without the URL: it may carry a token, and the request is on the record.
                error: Some(medic_model::error_chain(&e.without_url())),
                duration_ms: started.elapsed().as_millis() as i64,
            };
        }
    };
    let status = res.status().as_u16();
    let mut body = Vec::new();
    let mut res = res;
    while let Ok(Some(chunk)) = res.chunk().await {
        let room = MAX_OUTPUT.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    let ok = if r.expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        r.expect_status.contains(&status)
    };
    HttpResult {
        status: Some(status),
        body: String::from_utf8_lossy(&body).into_owned(),
        ok,
        error: None,
        duration_ms: started.elapsed().as_millis() as i64,
    }
}

/// Evidence from a command, as diagnosis expressions see it.
pub fn exec_evidence(r: &ExecResult) -> Json {
    // Output that is JSON is also given parsed, so conditions can read its fields.
    let parsed: Json = serde_json::from_str(r.stdout.trim()).unwrap_or(Json::Null);
    json!({
        "exit_code": r.exit_code,
        "json": parsed,
        "stdout": r.stdout,
        "stderr": r.stderr,
        "ok": r.ok,
        "timed_out": r.timed_out,
        "error": r.error,
    })
}

/// Evidence from a request.
pub fn http_evidence(r: &HttpResult) -> Json {
    // A JSON answer (most APIs) is also given parsed, as command output is.
    let parsed: Json = serde_json::from_str(r.body.trim()).unwrap_or(Json::Null);
    json!({
        "status": r.status,
        "body": r.body,
        "json": parsed,
        "ok": r.ok,
        "error": r.error,
    })
}
