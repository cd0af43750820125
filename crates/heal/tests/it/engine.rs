use std::time::Duration;

use medic_heal::journal::{Phase, StepState};
use medic_heal::{AlertInput, HealStore, MemStore, Options, Status};

use crate::support::*;

/// A playbook whose action appends its argument to `$DIR/ran` (one line per run) and whose
/// verification checks that `$DIR/ok` exists.
fn basic(name: &str, extra: &str) -> String {
    format!(
        r#"
name: {name}
trigger:
  alert: '{{alertname="Down"}}'
target: '{{{{ $labels.instance }}}}'
collect:
  - name: restarts
    query: 'app_restarts{{instance="{{{{ $labels.instance }}}}"}}'
diagnose:
  - cause: crash_loop
    when: 'restarts.value >= 3.0'
    actions: [restart]
  - cause: down
    when: 'true'
    actions: [restart]
actions:
  restart:
    exec:
      command: [python3, -c, 'import sys; open(sys.argv[1], "a").write(sys.argv[2] + "\n")', '$DIR/ran', '{{{{ $labels.instance }}}}']
verify:
  exec:
    command: [test, -f, '$DIR/ok']
  within: 300ms
  interval: 50ms
notify:
  receivers: [ops]
  escalate: [oncall]
{extra}
"#
    )
}

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn repairs_with_evidence_diagnosis_and_verification() {
    let rig = Rig::new(&[&basic("svc", "")], Options::default());
    std::fs::write(rig.path("ok"), "").unwrap();
    rig.prom.set(r#"app_restarts{instance="a"}"#, 5.0);
    let e = rig
        .trigger("svc", &[("alertname", "Down"), ("instance", "a")])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    let d = e.diagnosis.as_ref().unwrap();
    assert_eq!(d.cause, "crash_loop");
    assert_eq!(d.support["restarts"]["value"], 5.0);
    assert_eq!(lines(&rig.path("ran")), ["a"]);
    let kinds: Vec<&str> = e.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["guard", "collect", "diagnose", "action", "verify"]);
    assert!(e.action_started_at.unwrap() >= e.trigger.received_at);
    // The alert carried a repair note while it ran, and not after.
    let notes = rig.hooks.notes.lock().unwrap().clone();
    assert!(
        notes.iter().any(|n| n
            .as_deref()
            .is_some_and(|n| n.starts_with("medic is repairing: svc, step"))),
        "{notes:?}"
    );
    assert_eq!(notes.last().unwrap(), &None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = rig.hooks.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].event, "success");
    assert_eq!(sent[0].receivers, ["ops"]);
    assert!(
        sent[0]
            .text
            .contains("Concluded: crash_loop because restarts.value >= 3.0"),
        "{}",
        sent[0].text
    );
    assert!(sent[0].text.contains("Verified: fixed"), "{}", sent[0].text);
}

#[tokio::test]
async fn a_label_value_is_one_literal_argument() {
    let rig = Rig::new(&[&basic("svc", "")], Options::default());
    std::fs::write(rig.path("ok"), "").unwrap();
    let canary = rig.path("canary");
    std::fs::write(&canary, "alive").unwrap();
    let evil = format!(
        "x; rm -rf {canary} $(touch {0}/pwned) `touch {0}/pwned2`",
        rig.dir.path().display()
    );
    let e = rig
        .trigger("svc", &[("alertname", "Down"), ("instance", &evil)])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    assert_eq!(lines(&rig.path("ran")), [evil]);
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "alive");
    assert!(!rig.dir.path().join("pwned").exists() && !rig.dir.path().join("pwned2").exists());
}

#[tokio::test]
async fn failed_verification_rolls_back_tries_the_next_action_then_escalates() {
    let yaml = basic("svc", "").replace(
        "    actions: [restart]\n  - cause: down",
        "    actions: [restart, other]\n  - cause: down",
    ) + r#"
"#;
    let yaml = yaml.replace(
        "actions:\n  restart:\n",
        "actions:\n  other:\n    exec:\n      command: [python3, -c, 'import sys; open(sys.argv[1], \"a\").write(\"other\\n\")', '$DIR/ran']\n  restart:\n    rollback:\n      exec:\n        command: [python3, -c, 'import sys; open(sys.argv[1], \"a\").write(\"rollback\\n\")', '$DIR/ran']\n",
    );
    let rig = Rig::new(&[&yaml], Options::default());
    rig.prom.set(r#"app_restarts{instance="a"}"#, 5.0);
    let e = rig
        .trigger("svc", &[("alertname", "Down"), ("instance", "a")])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Failed, "{e:#?}");
    assert_eq!(lines(&rig.path("ran")), ["a", "rollback", "other"]);
    let steps: Vec<(String, String, StepState)> = e
        .steps
        .iter()
        .map(|s| (s.kind.to_string(), s.name.clone(), s.state))
        .collect();
    let want = [
        ("action", "restart", StepState::Succeeded),
        ("verify", "restart", StepState::Failed),
        ("rollback", "restart", StepState::Succeeded),
        ("action", "other", StepState::Succeeded),
        ("verify", "other", StepState::Failed),
        ("escalate", "people", StepState::Succeeded),
    ];
    let got: Vec<_> = steps
        .iter()
        .filter(|s| s.0 != "guard" && s.0 != "collect" && s.0 != "diagnose")
        .map(|(k, n, s)| (k.as_str(), n.as_str(), *s))
        .collect();
    assert_eq!(got, want);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = rig.hooks.sent.lock().unwrap().clone();
    let failure = sent
        .iter()
        .find(|n| n.event == "failure")
        .expect("failure sent");
    assert_eq!(failure.receivers, ["oncall"]);
    assert!(failure.text.contains("restarts = 5"), "{}", failure.text);
}

#[tokio::test]
async fn no_repair_for_an_alert_that_resolved() {
    let rig = Rig::new(&[&basic("svc", "")], Options::default());
    rig.hooks
        .resolved
        .lock()
        .unwrap()
        .insert("Down".into(), true);
    rig.engine.on_alerts(&[AlertInput {
        fingerprint: "f1".into(),
        origin: medic_heal::engine::AlertOrigin::Rules,
        labels: labels(&[("alertname", "Down"), ("instance", "a")]),
        annotations: Default::default(),
        starts_at: 1,
        ends_at: 0,
    }]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = rig.store.executions(&Default::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, Status::Vetoed);
    assert_eq!(all[0].veto.as_ref().unwrap().guard, "resolved");
    assert!(lines(&rig.path("ran")).is_empty());
}

#[tokio::test]
async fn a_re_sent_alert_starts_one_execution() {
    let rig = Rig::new(&[&basic("svc", "")], Options::default());
    std::fs::write(rig.path("ok"), "").unwrap();
    let a = AlertInput {
        fingerprint: "f1".into(),
        origin: medic_heal::engine::AlertOrigin::Rules,
        labels: labels(&[("alertname", "Down"), ("instance", "a")]),
        annotations: Default::default(),
        starts_at: 1,
        ends_at: 0,
    };
    for _ in 0..5 {
        rig.engine.on_alerts(std::slice::from_ref(&a));
    }
    // Another alert name does not match.
    let mut other = a.clone();
    other.labels.insert("alertname".into(), "Other".into());
    rig.engine.on_alerts(&[other]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = rig.store.executions(&Default::default()).unwrap();
    assert_eq!(all.len(), 1);
    // Wait for it to end (a loaded machine may take longer than the pause above to run it).
    rig.settle(&all[0].id).await;
    assert_eq!(rig.store.executions(&Default::default()).unwrap().len(), 1);
    assert_eq!(lines(&rig.path("ran")), ["a"]);
}

#[tokio::test]
async fn approval_approve_reject_and_timeout() {
    let yaml = basic("svc", "guards:\n  approval_timeout: 400ms").replace(
        "  restart:\n    exec:",
        "  restart:\n    approval: always\n    exec:",
    );
    let rig = Rig::new(&[&yaml], Options::default());
    std::fs::write(rig.path("ok"), "").unwrap();
    // Approved: runs.
    let e = rig
        .trigger("svc", &[("alertname", "Down"), ("instance", "a")])
        .await;
    let w = rig.wait_for(&e.id, Status::AwaitingApproval).await;
    assert!(matches!(w.phase, Phase::AwaitApproval { .. }));
    assert!(
        lines(&rig.path("ran")).is_empty(),
        "nothing runs before approval"
    );
    rig.engine.decide(&e.id, true, "alice", "go").unwrap();
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Succeeded);
    assert_eq!(e.decision.as_ref().unwrap().by, "alice");
    assert_eq!(lines(&rig.path("ran")), ["a"]);
    // Rejected: nothing runs.
    let e = rig
        .trigger("svc", &[("alertname", "Down"), ("instance", "b")])
        .await;
    rig.wait_for(&e.id, Status::AwaitingApproval).await;
    rig.engine.decide(&e.id, false, "bob", "not now").unwrap();
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Rejected);
    assert_eq!(lines(&rig.path("ran")), ["a"]);
    // Deciding again is refused.
    assert!(rig
        .engine
        .decide(&e.id, true, "bob", "")
        .unwrap_err()
        .to_string()
        .contains("not awaiting approval"));
    // Nobody decides: escalated.
    let e = rig
        .trigger("svc", &[("alertname", "Down"), ("instance", "c")])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Failed);
    assert!(
        e.summary.contains("not approved within 400ms"),
        "{}",
        e.summary
    );
    assert_eq!(lines(&rig.path("ran")), ["a"]);
    let sent = rig.hooks.sent.lock().unwrap().clone();
    assert!(sent.iter().filter(|n| n.event == "approval").count() >= 3);
}

#[tokio::test]
async fn dry_run_records_everything_and_runs_nothing() {
    let rig = Rig::new(
        &[&basic("svc", "")],
        Options {
            dry_run: true,
            ..Default::default()
        },
    );
    rig.prom.set(r#"app_restarts{instance="a"}"#, 1.0);
    let e = rig
        .trigger("svc", &[("alertname", "Down"), ("instance", "a")])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::DryRun, "{e:#?}");
    assert_eq!(e.diagnosis.as_ref().unwrap().cause, "down");
    let act = e.steps.iter().find(|s| s.kind == "action").unwrap();
    assert_eq!(act.state, StepState::Skipped);
    assert_eq!(act.detail["exec"]["argv"][4], "a");
    assert!(lines(&rig.path("ran")).is_empty());
}

/// An execution journaled as "action started", as a crash leaves it.
fn crashed(rig_dir: &str, unknown_policy_playbook: &str) -> (std::sync::Arc<MemStore>, String) {
    let _ = rig_dir;
    let store = std::sync::Arc::new(MemStore::new());
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let mut e = medic_heal::Execution {
        id: "01crashed".into(),
        playbook: unknown_policy_playbook.into(),
        target: "a".into(),
        group: unknown_policy_playbook.into(),
        trigger: medic_heal::journal::TriggerInfo {
            kind: medic_heal::kinds::TriggerKind::Manual,
            fingerprint: None,
            labels: labels(&[("alertname", "Down"), ("instance", "a")]),
            annotations: Default::default(),
            starts_at: now,
            received_at: now,
            by: Some("test".into()),
        },
        params: Default::default(),
        status: Status::Running,
        phase: Phase::Act {
            action: "restart".into(),
            approved: false,
        },
        dry_run: false,
        created_at: now,
        updated_at: now,
        finished_at: None,
        veto: None,
        evidence: Default::default(),
        diagnosis: Some(medic_heal::journal::Diagnosis {
            cause: "down".into(),
            description: String::new(),
            when: "true".into(),
            support: Default::default(),
            rejected: vec![],
        }),
        candidates: vec!["restart".into()],
        attempt: 0,
        actions_run: vec![],
        decision: None,
        action_started_at: Some(now),
        summary: String::new(),
        steps: vec![],
    };
    e.begin(medic_heal::kinds::StepKind::Action, "restart", now);
    store.put_execution(&e).unwrap();
    (store, e.id)
}

#[tokio::test]
async fn an_action_of_unknown_outcome_is_verified_not_rerun() {
    // Fixed meanwhile: verified, succeeded, not run again.
    let (store, id) = crashed("", "svc");
    let rig = Rig::with_store(&[&basic("svc", "")], Options::default(), store);
    std::fs::write(rig.path("ok"), "").unwrap();
    assert_eq!(rig.engine.resume().unwrap(), 1);
    let e = rig.settle(&id).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    assert_eq!(e.steps[0].state, StepState::Unknown);
    assert!(
        lines(&rig.path("ran")).is_empty(),
        "the action was run again"
    );

    // Not fixed: escalated (the default policy), still not run again.
    let (store, id) = crashed("", "svc");
    let rig = Rig::with_store(&[&basic("svc", "")], Options::default(), store);
    rig.engine.resume().unwrap();
    let e = rig.settle(&id).await;
    assert_eq!(e.status, Status::Failed);
    assert!(e.summary.contains("unknown outcome"), "{}", e.summary);
    assert!(lines(&rig.path("ran")).is_empty());

    // `on_unknown_outcome: retry`: verified first, then run once more.
    let (store, id) = crashed("", "svc");
    let rig = Rig::with_store(
        &[&basic("svc", "on_unknown_outcome: retry")],
        Options::default(),
        store,
    );
    rig.engine.resume().unwrap();
    let e = rig.settle(&id).await;
    assert_eq!(lines(&rig.path("ran")), ["a"]);
    let kinds: Vec<&str> = e.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        &kinds[..4],
        ["action", "resume", "resume", "verify"],
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_storm_of_alerts_produces_no_more_actions_than_the_guards_allow() {
    let rig = Rig::new(
        &[&basic("svc", "guards:\n  rate_limit: {max: 5, per: 1h}")],
        Options::default(),
    );
    std::fs::write(rig.path("ok"), "").unwrap();
    let alerts: Vec<AlertInput> = (0..10_000)
        .map(|i| AlertInput {
            fingerprint: format!("f{i}"),
            origin: medic_heal::engine::AlertOrigin::Rules,
            labels: labels(&[("alertname", "Down"), ("instance", &format!("host-{i}"))]),
            annotations: Default::default(),
            starts_at: 1,
            ends_at: 0,
        })
        .collect();
    let t0 = std::time::Instant::now();
    rig.engine.on_alerts(&alerts);
    let mut all = Vec::new();
    for _ in 0..600 {
        all = rig.store.executions(&Default::default()).unwrap();
        if all.len() == 10_000 && all.iter().all(|e| e.status.is_final()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("10000 alerts judged in {:?}", t0.elapsed());
    assert_eq!(all.len(), 10_000);
    let ran = all.iter().filter(|e| e.status != Status::Vetoed).count();
    assert_eq!(ran, 5);
    assert_eq!(lines(&rig.path("ran")).len(), 5);
    assert!(all.iter().filter(|e| e.status == Status::Vetoed).all(|e| e
        .veto
        .as_ref()
        .unwrap()
        .guard
        == "rate_limit"));
}

#[tokio::test]
async fn condition_triggers_start_a_playbook_per_series() {
    let yaml = r#"
name: disk
trigger:
  condition:
    query: 'disk_used_ratio > 0.9'
    for: 0s
target: '{{ $labels.mount }}'
actions:
  clean:
    exec:
      command: [python3, -c, 'import sys; open(sys.argv[1], "a").write(sys.argv[2] + "\n")', '$DIR/ran', '{{ $labels.mount }}']
verify:
  exec:
    command: ['true']
  within: 1s
"#;
    let rig = Rig::new(
        &[yaml],
        Options {
            condition_interval: 100,
            ..Default::default()
        },
    );
    rig.prom.set(r#"disk_used_ratio{mount="/data"}"#, 0.95);
    rig.prom.set(r#"disk_used_ratio{mount="/home"}"#, 0.5);
    let run = tokio::spawn(rig.engine.clone().run(std::future::pending()));
    for _ in 0..100 {
        if lines(&rig.path("ran")).len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.abort();
    assert_eq!(
        lines(&rig.path("ran")),
        ["/data"],
        "one execution for the one series over the threshold, once"
    );
    let all = rig.store.executions(&Default::default()).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].trigger.kind, "condition");
}

/// A two-step repair (renew, then reload): each step journaled, verified once at the end; a
/// step that fails, or a verification that fails, rolls back the steps done so far in reverse.
fn two_steps(fail_second: bool) -> String {
    let second = if fail_second { "false" } else { "true" };
    format!(
        r#"
name: cert
trigger:
  alert: '{{alertname="CertExpiring"}}'
target: '{{{{ $labels.instance }}}}'
actions:
  renew_and_reload:
    steps:
      - name: renew
        exec:
          command: [python3, -c, 'import sys; open(sys.argv[1], "a").write("renew\n")', '$DIR/ran']
        rollback:
          exec:
            command: [python3, -c, 'import sys; open(sys.argv[1], "a").write("undo-renew\n")', '$DIR/ran']
      - name: reload
        exec:
          command: [sh, -c, 'echo reload >> $DIR/ran; {second}']
        rollback:
          exec:
            command: [python3, -c, 'import sys; open(sys.argv[1], "a").write("undo-reload\n")', '$DIR/ran']
verify:
  exec:
    command: [test, -f, '$DIR/ok']
  within: 300ms
  interval: 50ms
notify:
  receivers: [ops]
"#
    )
}

#[tokio::test]
async fn a_repair_in_steps_runs_them_in_order_and_rolls_back_in_reverse() {
    // Both steps run, then one verification.
    let rig = Rig::new(&[&two_steps(false)], Options::default());
    std::fs::write(rig.path("ok"), "").unwrap();
    let e = rig
        .trigger(
            "cert",
            &[("alertname", "CertExpiring"), ("instance", "web")],
        )
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    assert_eq!(lines(&rig.path("ran")), ["renew", "reload"]);
    let names: Vec<(&str, &str)> = e
        .steps
        .iter()
        .filter(|s| s.kind == "action" || s.kind == "verify")
        .map(|s| (s.kind.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("action", "renew_and_reload"),
            ("action", "renew_and_reload/renew"),
            ("action", "renew_and_reload/reload"),
            ("verify", "renew_and_reload"),
        ]
    );

    // The second step fails: the first is rolled back, nothing is verified.
    let rig = Rig::new(&[&two_steps(true)], Options::default());
    let e = rig
        .trigger(
            "cert",
            &[("alertname", "CertExpiring"), ("instance", "web")],
        )
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Failed, "{e:#?}");
    assert_eq!(lines(&rig.path("ran")), ["renew", "reload", "undo-renew"]);
    assert!(e.steps.iter().all(|s| s.kind != "verify"), "{:#?}", e.steps);

    // Both steps succeed but the fix does not hold: both are rolled back, last first.
    let rig = Rig::new(&[&two_steps(false)], Options::default());
    let e = rig
        .trigger(
            "cert",
            &[("alertname", "CertExpiring"), ("instance", "web")],
        )
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Failed, "{e:#?}");
    assert_eq!(
        lines(&rig.path("ran")),
        ["renew", "reload", "undo-reload", "undo-renew"]
    );
}

#[test]
fn a_sequence_is_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let bad = two_steps(false).replace("- name: reload", "- name: renew");
    let path = dir.path().join("pb.yml");
    std::fs::write(&path, bad).unwrap();
    let e = medic_heal::Playbook::load(&path).unwrap_err().to_string();
    assert!(e.contains("steps[1].name") && e.contains("unique"), "{e}");
}
