//! The manager on a real tokio runtime and the wall clock: groups run on their own, alerts
//! reach the notifier with external labels and a link back, a broken reload changes nothing,
//! and a removed group's series end at once.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medic_model::{Clock, Labels, MemStorage, Sample, SystemClock};
use medic_promql::{Engine, Value};
use medic_rules::{GroupOptions, Manager, Notification, Notifier, RuleMetrics};

#[derive(Default)]
struct Collect(Mutex<Vec<Notification>>);

impl Notifier for Collect {
    fn notify(&self, alerts: Vec<Notification>) {
        self.0.lock().unwrap().extend(alerts);
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn write(dir: &Path, text: &str) -> Vec<std::path::PathBuf> {
    let f = dir.join("r.yml");
    std::fs::write(&f, text).unwrap();
    vec![f]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_run_alerts_go_out_and_reloads_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(MemStorage::new());
    let now = SystemClock.now_ms();
    mem.add(
        Labels::from_pairs([("__name__", "temp"), ("room", "lab")]),
        &[Sample::new(now - 1000, 95.0)],
    );
    let sink = Arc::new(Collect::default());
    let mgr = Manager::new(
        Engine::default(),
        mem.clone(),
        sink.clone(),
        Arc::new(SystemClock),
        RuleMetrics::default(),
    );
    let opts = GroupOptions {
        external_labels: Labels::from_pairs([("site", "x"), ("room", "never-overrides")]),
        external_url: "http://medic.example:9099/".into(),
        ..GroupOptions::default()
    };
    let files = write(
        dir.path(),
        "groups:\n- name: g\n  interval: 50ms\n  rules:\n  - alert: Hot\n    expr: temp > 90\n",
    );
    let m = mgr.clone();
    let (f, o) = (files.clone(), opts.clone());
    let summary = tokio::task::spawn_blocking(move || m.update(&f, &o))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((summary.groups, summary.rules), (1, 1));

    until("a notification", || !sink.0.lock().unwrap().is_empty()).await;
    let n = sink.0.lock().unwrap()[0].clone();
    assert_eq!(n.labels.get("alertname"), Some("Hot"));
    assert_eq!(n.labels.get("site"), Some("x"));
    // External labels never override the alert's own.
    assert_eq!(n.labels.get("room"), Some("lab"));
    assert!(!n.resolved);
    assert!(n.ends_at > n.starts_at);
    assert_eq!(
        n.generator_url,
        "http://medic.example:9099/graph?g0.expr=temp+%3E+90&g0.tab=1"
    );
    // It keeps evaluating on its own schedule.
    let first = mgr.groups()[0].last_eval;
    until("another evaluation", || mgr.groups()[0].last_eval > first).await;
    until("ALERTS written", || {
        matches!(Engine::default().instant(&*mem, "ALERTS", SystemClock.now_ms()),
            Ok(Value::Vector(v)) if v.len() == 1)
    })
    .await;

    // A broken file: an error naming it, and the running group untouched.
    let broken = write(
        dir.path(),
        "groups:\n- name: g\n  rules:\n  - alert: Hot\n    expr: temp >\n",
    );
    let m = mgr.clone();
    let o = opts.clone();
    let errs = tokio::task::spawn_blocking(move || m.update(&broken, &o))
        .await
        .unwrap()
        .unwrap_err();
    assert!(errs[0].to_string().contains("r.yml:4"), "{errs:?}");
    let before = mgr.groups()[0].last_eval;
    until("evaluation after the failed reload", || {
        mgr.groups()[0].last_eval > before
    })
    .await;

    // The group removed: it stops, and its ALERTS series ends at once.
    let empty = write(dir.path(), "groups: []\n");
    let m = mgr.clone();
    tokio::task::spawn_blocking(move || m.update(&empty, &opts))
        .await
        .unwrap()
        .unwrap();
    assert!(mgr.groups().is_empty());
    let t = SystemClock.now_ms() + 1;
    match Engine::default().instant(&*mem, "ALERTS", t).unwrap() {
        Value::Vector(v) => assert!(v.is_empty(), "{v:?}"),
        other => panic!("{other:?}"),
    }
    mgr.stop().await;
}
