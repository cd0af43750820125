//! The heal engine in the real binary, against real things broken for real: an HTTP service
//! that crashes, leaks memory, gets a bad deploy, fills its log directory; a real PostgreSQL
//! whose connections idle sessions exhaust; a real Redis at maxmemory with `noeviction`;
//! `kill -9` of medic in the middle of an action; label values that try to inject commands;
//! and every example playbook checked by `medic heal dry-run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

pub(crate) const APP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/heal/app.py");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/playbooks");

pub(crate) fn app(cmd: &str, state: &Path, port: u16, extra: &[&str]) {
    let st = Command::new("python3")
        .arg(APP)
        .arg(cmd)
        .arg(state)
        .arg(port.to_string())
        .args(extra)
        .status()
        .unwrap();
    assert!(st.success(), "app.py {cmd} failed");
}

/// Receivers: `alerts` (the route's), `ops` (the test playbooks'), `team-ops` and `pager` (the
/// example playbooks'), all webhooks into `cap`.
fn am_config(cap: &Capture) -> String {
    format!(
        "route:\n  receiver: alerts\n  group_by: [alertname]\n  group_wait: 500ms\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: alerts\n    webhook_configs: [{{url: \"{}\"}}]\n  - name: ops\n    webhook_configs: [{{url: \"{}\"}}]\n  - name: team-ops\n    webhook_configs: [{{url: \"{}\"}}]\n  - name: pager\n    webhook_configs: [{{url: \"{}\"}}]\n",
        cap.url("/alerts"),
        cap.url("/ops"),
        cap.url("/team-ops"),
        cap.url("/pager")
    )
}

/// medic scraping the app every second, with `rules` and the playbooks in `playbooks`.
pub(crate) fn medic(
    dir: &Path,
    cap: &Capture,
    app_port: Option<u16>,
    rules: &str,
    playbooks: &[(&str, String)],
) -> Medic {
    std::fs::write(dir.join("alertmanager.yml"), am_config(cap)).unwrap();
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    let pdir = dir.join("playbooks");
    std::fs::create_dir_all(&pdir).unwrap();
    for (name, text) in playbooks {
        std::fs::write(pdir.join(format!("{name}.yml")), text).unwrap();
    }
    let scrape = match app_port {
        Some(p) => format!("scrape_configs:\n  - job_name: app\n    scrape_interval: 1s\n    static_configs: [{{targets: ['127.0.0.1:{p}']}}]\n"),
        None => "scrape_configs: []\n".into(),
    };
    let cfg = dir.join("medic.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  evaluation_interval: 1s\n{scrape}rule_files: [rules.yml]\nalerting:\n  config_file: alertmanager.yml\nheal:\n  playbooks: ['playbooks/*.yml']\n  condition_interval: 1s\n"),
    )
    .unwrap();
    Medic::start(&dir.join("data"), Some(&cfg), &[])
}

async fn executions(c: &reqwest::Client, m: &Medic, query: &str) -> Vec<Value> {
    let v = get_json(c, &m.url(&format!("/api/v1/medic/heal/executions?{query}"))).await;
    v["data"].as_array().cloned().unwrap_or_default()
}

/// Waits for an execution of `playbook` to end; returns it.
pub(crate) async fn finished(
    c: &reqwest::Client,
    m: &Medic,
    playbook: &str,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let all = executions(c, m, &format!("playbook={playbook}")).await;
        if let Some(e) = all.iter().find(|e| {
            !["running", "awaiting_approval", "verifying"]
                .contains(&e["status"].as_str().unwrap_or(""))
        }) {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no execution of {playbook} ended in {timeout:?}: {all:#?}\n{}",
            m.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn steps(e: &Value) -> Vec<(String, String, String)> {
    e["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) fn playbook(name: &str, alert: &str, body: &str) -> String {
    format!("name: {name}\ntrigger:\n  alert: '{{alertname=\"{alert}\"}}'\ntarget: '{{{{ $labels.instance }}}}'\n{body}")
}

const APP_RULES: &str = r#"
groups:
  - name: app
    interval: 1s
    rules:
      - alert: AppDown
        expr: up{job="app"} == 0
      - alert: AppLeaking
        expr: app_memory_bytes > 60e6
      - alert: AppErrors
        expr: app_error_ratio > 0.5
      - alert: AppDiskFull
        expr: app_dir_bytes > 5e6
"#;

pub(crate) async fn wait_up(c: &reqwest::Client, m: &Medic) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = get_json(
            c,
            &m.url("/api/v1/query?query=up%7Bjob%3D%22app%22%7D%3D%3D1"),
        )
        .await;
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            return;
        }
        assert!(Instant::now() < deadline, "the app was never scraped up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_service_is_restarted_verified_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("app");
    let port = free_port();
    app("start", &state, port, &[]);
    let cap = Capture::start().await;
    let pb = playbook(
        "app-restart",
        "AppDown",
        &format!(
            "actions:\n  restart:\n    exec:\n      command: [python3, {APP}, restart, '{}', '{port}']\n      timeout: 30s\nverify:\n  query: 'up{{job=\"app\"}} == 1'\n  after: 2s\n  within: 20s\n  interval: 500ms\nnotify:\n  receivers: [ops]\n",
            state.display()
        ),
    );
    let m = medic(dir.path(), &cap, Some(port), APP_RULES, &[("restart", pb)]);
    let c = client();
    wait_up(&c, &m).await;
    let t0 = Instant::now();
    let _ = c.get(format!("http://127.0.0.1:{port}/crash")).send().await;
    let e = finished(&c, &m, "app-restart", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    eprintln!("crash → verified recovery in {:?}", t0.elapsed());
    let body = c
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok v1\n");
    assert_eq!(e["trigger"]["kind"], "alert");
    assert_eq!(e["trigger"]["labels"]["alertname"], "AppDown");
    // While it repaired, the alert's message said so; afterwards the report went to ops.
    let alerts = cap.wait_for("/alerts", 1, Duration::from_secs(10)).await;
    let note = alerts[0]["alerts"][0]["annotations"]["medic_repair"]
        .as_str()
        .unwrap_or("");
    assert!(
        note.starts_with("medic is repairing: app-restart, step"),
        "{:#}",
        alerts[0]
    );
    let ops = cap.wait_for("/ops", 1, Duration::from_secs(10)).await;
    assert_eq!(ops[0]["alerts"][0]["labels"]["medic_event"], "success");
    let text = ops[0]["alerts"][0]["annotations"]["description"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("Did:")
            && text.contains("action restart Succeeded")
            && text.contains("Verified: fixed"),
        "{text}"
    );
    // Its own metrics.
    let metrics = c
        .get(m.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "medic_heal_executions_total{playbook=\"app-restart\",status=\"succeeded\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("medic_heal_reaction_seconds_count 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaking_service_is_restarted_on_evidence_of_growth() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("app");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("leak"), "").unwrap();
    let port = free_port();
    app("start", &state, port, &[]);
    let cap = Capture::start().await;
    let pb = playbook(
        "app-leak",
        "AppLeaking",
        &format!(
            "collect:\n  - name: mem\n    query: 'app_memory_bytes'\n    range: 5s\n    step: 1s\ndiagnose:\n  - cause: leak\n    when: 'mem.delta > 0.0'\n    actions: [restart]\nactions:\n  restart:\n    exec:\n      command: [python3, {APP}, restart, '{}', '{port}']\nverify:\n  query: 'app_memory_bytes < 45e6'\n  within: 20s\n  interval: 500ms\n",
            state.display()
        ),
    );
    let m = medic(dir.path(), &cap, Some(port), APP_RULES, &[("leak", pb)]);
    let c = client();
    let e = finished(&c, &m, "app-leak", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["diagnosis"]["cause"], "leak");
    assert!(e["diagnosis"]["support"]["mem"]["delta"].as_f64().unwrap() > 0.0);
    assert!(
        e["evidence"]["mem"]["max"].as_f64().unwrap() > 60e6,
        "{:#}",
        e["evidence"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_deploy_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("app");
    let port = free_port();
    app("start", &state, port, &[]);
    let cap = Capture::start().await;
    let s = state.display();
    let pb = playbook(
        "app-rollback",
        "AppErrors",
        &format!(
            "collect:\n  - name: deployed\n    exec:\n      command: [python3, {APP}, status, '{s}', '{port}']\ndiagnose:\n  - cause: bad_deploy\n    when: 'deployed.json.previous != \"\"'\n    actions: [rollback]\n  - cause: unknown\n    when: 'true'\n    actions: [restart]\nactions:\n  rollback:\n    exec:\n      command: [python3, {APP}, rollback, '{s}', '{port}']\n  restart:\n    exec:\n      command: [python3, {APP}, restart, '{s}', '{port}']\nverify:\n  query: 'app_error_ratio == 0'\n  after: 1s\n  within: 20s\n  interval: 500ms\n"
        ),
    );
    let m = medic(dir.path(), &cap, Some(port), APP_RULES, &[("rollback", pb)]);
    let c = client();
    wait_up(&c, &m).await;
    app("deploy", &state, port, &["bad"]);
    assert_eq!(
        c.get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
    let e = finished(&c, &m, "app-rollback", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["diagnosis"]["cause"], "bad_deploy");
    assert_eq!(e["evidence"]["deployed"]["json"]["version"], "bad");
    assert_eq!(
        std::fs::read_to_string(state.join("current"))
            .unwrap()
            .trim(),
        "v1"
    );
    assert_eq!(
        c.get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok v1\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_directory_is_cleaned_of_rotated_logs_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("app");
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("app.log"), vec![b'x'; 100_000]).unwrap();
    let port = free_port();
    app("start", &state, port, &[]);
    let cap = Capture::start().await;
    let pb = playbook(
        "app-disk",
        "AppDiskFull",
        &format!(
            "actions:\n  remove_rotated_logs:\n    exec:\n      command: [find, '{}', -type, f, -name, '*.log.[0-9]*', -delete]\nverify:\n  query: 'app_dir_bytes < 5e6'\n  within: 20s\n  interval: 500ms\n",
            logs.display()
        ),
    );
    let m = medic(dir.path(), &cap, Some(port), APP_RULES, &[("disk", pb)]);
    let c = client();
    wait_up(&c, &m).await;
    for i in 1..=6 {
        std::fs::write(logs.join(format!("app.log.{i}")), vec![b'y'; 1_000_000]).unwrap();
    }
    let e = finished(&c, &m, "app-disk", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    let left: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["app.log"]);
}

async fn post_alert(c: &reqwest::Client, m: &Medic, labels: Value) {
    let r = c
        .post(m.url("/api/v2/alerts"))
        .json(&json!([{"labels": labels, "annotations": {"summary": "test"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// An example playbook, admitting alerts posted through the API (these tests post the alert
/// as an external Prometheus would; by default only medic's own rules may start a playbook).
fn example(name: &str) -> String {
    let text = std::fs::read_to_string(Path::new(EXAMPLES).join(name)).unwrap();
    assert!(
        text.contains("\ntrigger:\n"),
        "{name} has a trigger section"
    );
    text.replacen("\ntrigger:\n", "\ntrigger:\n  sources: [api]\n", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_exhausted_by_idle_sessions_are_freed() {
    let dir = tempfile::tempdir().unwrap();
    let pg = medic_testkit::Postgres::start(dir.path(), 10);
    pg.psql("postgres", "create role app login").unwrap();
    // Idle sessions, opened one at a time, until the app may not connect any more (7 of the
    // 10 slots; 3 are reserved for superusers). A session refused because a check held a slot
    // at that moment is simply opened again.
    let app_session = || {
        Command::new("psql")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "app",
                "-d",
                "postgres",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let count = || {
        pg.psql(
            "postgres",
            "select count(*) from pg_stat_activity where usename = 'app'",
        )
        .unwrap_or_default()
    };
    let mut idle: Vec<std::process::Child> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match pg.psql("app", "select 1") {
            Err(e) if e.contains("remaining connection slots are reserved") => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "connections never ran out ({} sessions)",
            count()
        );
        let mut s = app_session();
        let want = (idle.len() + 1).to_string();
        loop {
            if count() == want {
                idle.push(s);
                break;
            }
            if s.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "a session never connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let refused = pg.psql("app", "select 1").unwrap_err();
    assert!(
        refused.contains("remaining connection slots are reserved"),
        "{refused}"
    );
    // The playbook frees sessions idle for more than 5 seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let cap = Capture::start().await;
    let m = medic(
        dir.path(),
        &cap,
        None,
        "groups: []\n",
        &[("pg", example("postgres-idle-connections.yml"))],
    );
    let c = client();
    post_alert(&c, &m, json!({"alertname": "PostgresConnectionsExhausted", "instance": format!("127.0.0.1:{}", pg.port)})).await;
    let e = finished(&c, &m, "postgres-idle-connections", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["evidence"]["sessions"]["json"]["idle"], idle.len());
    assert_eq!(idle.len(), 7);
    assert_eq!(pg.psql("app", "select 1").unwrap(), "1");
    let ops = cap.wait_for("/team-ops", 1, Duration::from_secs(10)).await;
    assert_eq!(
        ops[0]["alerts"][0]["labels"]["playbook"],
        "postgres-idle-connections"
    );
    for mut p in idle {
        let _ = p.kill();
        let _ = p.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_out_of_memory_gets_an_eviction_policy() {
    require_binary("/usr/bin/redis-server", "redis-server");
    require_binary("/usr/bin/redis-cli", "redis-tools");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--maxmemory",
            "2mb",
            "--maxmemory-policy",
            "noeviction",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while cli(&["ping"]) != "PONG" {
        assert!(Instant::now() < deadline, "redis did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    cli(&[
        "eval",
        "for i = 1, 100000 do redis.call('set', 'k' .. i, string.rep('x', 200)) end",
        "0",
    ]);
    assert!(
        cli(&["set", "probe", "x"]).contains("OOM"),
        "redis is not full"
    );
    let cap = Capture::start().await;
    let m = medic(
        dir.path(),
        &cap,
        None,
        "groups: []\n",
        &[("redis", example("redis-oom-eviction.yml"))],
    );
    let c = client();
    post_alert(
        &c,
        &m,
        json!({"alertname": "RedisOutOfMemory", "instance": format!("127.0.0.1:{port}")}),
    )
    .await;
    let e = finished(&c, &m, "redis-oom-eviction", Duration::from_secs(60)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(e["diagnosis"]["cause"], "noeviction_at_maxmemory");
    assert_eq!(
        cli(&["config", "get", "maxmemory-policy"]),
        "maxmemory-policy\nallkeys-lru"
    );
    assert_eq!(cli(&["set", "probe", "x"]), "OK");
    let _ = redis.kill();
    let _ = redis.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_action_resumes_without_running_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let done = dir.path().join("done");
    let cap = Capture::start().await;
    // The action takes 3 s, then appends a line and leaves a marker; verification checks it.
    let pb = format!(
        "name: slow\ntrigger:\n  alert: '{{alertname=\"Slow\"}}'\ntarget: '{{{{ $labels.instance }}}}'\nactions:\n  fix:\n    exec:\n      command: [python3, -c, 'import sys, time; time.sleep(3); open(sys.argv[1], \"a\").write(\"ran\\n\"); open(sys.argv[2], \"w\").close()', '{}', '{}']\nverify:\n  exec:\n    command: [test, -f, '{}']\n  within: 10s\n  interval: 500ms\n",
        ran.display(),
        done.display(),
        done.display()
    );
    let m = medic(dir.path(), &cap, None, "groups: []\n", &[("slow", pb)]);
    let c = client();
    let r = c
        .post(m.url("/api/v1/medic/heal/trigger"))
        .json(&json!({"playbook": "slow", "labels": {"instance": "x"}}))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Wait until the journal says the action started, then kill medic.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = get_json(&c, &m.url(&format!("/api/v1/medic/heal/executions/{id}"))).await;
        if steps(&e["data"])
            .iter()
            .any(|(k, _, s)| k == "action" && s == "started")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the action never started: {e:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    m.kill9();
    // The action's process outlives medic and finishes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let cfg = dir.path().join("medic.yml");
    let m = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let e = finished(&c, &m, "slow", Duration::from_secs(30)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    assert_eq!(
        std::fs::read_to_string(&ran).unwrap(),
        "ran\n",
        "the action ran twice"
    );
    let s = steps(&e);
    assert!(
        s.contains(&("action".into(), "fix".into(), "unknown".into())),
        "{s:?}"
    );
    assert!(s.iter().any(|(k, _, _)| k == "resume"), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_trigger_show_pause_and_injection_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary");
    std::fs::write(&canary, "alive").unwrap();
    let cap = Capture::start().await;
    let pb = "name: echo\ntrigger:\n  alert: '{alertname=\"Echo\"}'\ntarget: '{{ $labels.instance }}'\nactions:\n  say:\n    exec:\n      command: [echo, '{{ $labels.arg }}']\n      env: {ARG: '{{ $labels.arg }}'}\nverify:\n  exec:\n    command: ['true']\n  within: 5s\n".to_string();
    let m = medic(dir.path(), &cap, None, "groups: []\n", &[("echo", pb)]);
    let medic_cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(args)
            .env("MEDIC_URL", m.url(""))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let evil = format!("x; rm -rf {}", canary.display());
    let (code, out, err) = medic_cli(&[
        "heal",
        "trigger",
        "echo",
        "-l",
        "instance=i1",
        "-l",
        &format!("arg={evil}"),
        "--wait",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("succeeded"), "{out}");
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "alive");
    let (_, out, _) = medic_cli(&["heal", "list", "--format", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    let e = &list["data"][0];
    let act = e["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "action")
        .unwrap();
    assert_eq!(act["detail"]["result"]["stdout"], format!("{evil}\n"));
    assert_eq!(act["detail"]["command"]["argv"], json!(["echo", evil]));
    let (code, out, _) = medic_cli(&["heal", "show", e["id"].as_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert!(out.contains("STEP") && out.contains("say"), "{out}");
    // One timestamp format, with its zone; no escaped JSON lines.
    assert!(
        out.lines()
            .any(|l| l.starts_with("20") && l.split_whitespace().next().unwrap().ends_with('Z')),
        "{out}"
    );
    assert!(!out.contains("\\\""), "{out}");
    // Without --wait, trigger says what to do next instead of an empty summary.
    let (code, out, _) = medic_cli(&[
        "heal",
        "trigger",
        "echo",
        "-l",
        "instance=i3",
        "-l",
        "arg=b",
    ]);
    assert_eq!(code, Some(0));
    assert!(!out.trim_end().ends_with('—'), "{out}");
    // Pause, vetoed with the reason, resume.
    let (code, _, err) = medic_cli(&[
        "heal",
        "pause",
        "echo",
        "-r",
        "change window",
        "--by",
        "alice",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = medic_cli(&[
        "heal",
        "trigger",
        "echo",
        "-l",
        "instance=i2",
        "-l",
        "arg=a",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("vetoed") && out.contains("change window"),
        "{out}"
    );
    let (_, out, _) = medic_cli(&["heal", "playbooks"]);
    assert!(out.contains("paused by alice"), "{out}");
    let (code, _, _) = medic_cli(&["heal", "resume", "echo"]);
    assert_eq!(code, Some(0));
    // Errors are clear: unknown playbook, bad label.
    let (code, _, err) = medic_cli(&["heal", "trigger", "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no playbook named \"nope\""), "{err}");
    let (code, _, err) = medic_cli(&["heal", "trigger", "echo", "-l", "bad"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("expected name=value"), "{err}");
}

#[test]
fn every_example_playbook_passes_dry_run_for_its_scenario() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(EXAMPLES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    names.sort();
    assert!(names.len() >= 11, "{names:?}");
    for pb in names {
        let alert = Path::new(EXAMPLES)
            .join("alerts")
            .join(pb.file_name().unwrap());
        let out = Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["heal", "dry-run"])
            .arg(&pb)
            .arg("--alert")
            .arg(&alert)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {text}{}",
            pb.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(": YES — "),
            "{}: no cause concluded\n{text}",
            pb.display()
        );
        assert!(
            text.contains("  1. "),
            "{}: no action\n{text}",
            pb.display()
        );
    }
    // An alert that does not match: exit 2, and the reason.
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), "labels: {alertname: Other}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["heal", "dry-run"])
        .arg(Path::new(EXAMPLES).join("redis-oom-eviction.yml"))
        .arg("--alert")
        .arg(other.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("does NOT match: alertname=\"RedisOutOfMemory\" fails"));
}

#[test]
fn a_bad_playbook_is_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("bad.yml");
    let alert = dir.path().join("a.yml");
    std::fs::write(&alert, "labels: {alertname: X}\n").unwrap();
    let cases = [
        ("name: x\ntrigger: {alert: '{alertname=\"X\"}'}\nactions:\n  a:\n    exec: {command: [echo]}\n    shell: true\nverify: {alert_resolved: true, within: 1m}\n", "actions.a.shell: unknown field `shell`"),
        ("name: x\ntrigger: {alert: '{alertname=\"X\"}'}\ndiagnose:\n  - cause: c\n    when: 'nope.value > 1'\n    actions: [a]\nactions:\n  a:\n    exec: {command: [echo]}\nverify: {alert_resolved: true, within: 1m}\n", "refers to \"nope\", which is neither collected"),
        ("name: x\ntrigger: {alert: '{alertname=\"X\"}'}\nactions:\n  a:\n    exec: {command: ['{{ $labels.cmd }}']}\nverify: {alert_resolved: true, within: 1m}\n", "argv[0]) cannot be a template"),
        ("name: x\ntrigger: {alert: '{alertname=\"X\"}'}\ndiagnose:\n  - cause: c\n    when: 'a >'\n    actions: [a]\nactions:\n  a:\n    exec: {command: [echo]}\nverify: {alert_resolved: true, within: 1m}\n", "invalid CEL"),
    ];
    for (text, want) in cases {
        std::fs::write(&pb, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["heal", "dry-run"])
            .arg(&pb)
            .arg("--alert")
            .arg(&alert)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&*pb.display().to_string()) && err.contains(want),
            "want {want:?} in {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn playbooks_with_unknown_receivers_or_bad_promql_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        "route: {receiver: ops}\nreceivers: [{name: ops}]\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("pb")).unwrap();
    std::fs::write(
        dir.path().join("pb/x.yml"),
        "name: x\ntrigger: {alert: '{alertname=\"X\"}'}\nactions:\n  a:\n    exec: {command: ['true']}\nverify: {alert_resolved: true, within: 1m}\nnotify: {receivers: [ops], escalate: [nobody]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("medic.yml"),
        "alerting: {config_file: alertmanager.yml}\nheal: {playbooks: ['pb/*.yml']}\n",
    )
    .unwrap();
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["check", "config"])
            .arg(dir.path().join("medic.yml"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("x.yml: notify: no receiver named \"nobody\""),
        "{err}"
    );
    // PromQL that does not parse is refused at load too.
    std::fs::write(
        dir.path().join("pb/x.yml"),
        "name: x\ntrigger: {alert: '{alertname=\"X\"}'}\nactions:\n  a:\n    exec: {command: ['true']}\nverify: {query: 'up{job=', within: 1m}\n",
    )
    .unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("x.yml: verify.query:"), "{err}");
}
