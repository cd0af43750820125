//! Every guard vetoes when it must, through the engine, with its reason on the record.

use std::time::Duration;

use medic_heal::guard::MaintenanceWindow;
use medic_heal::journal::Outcome;
use medic_heal::playbook::{Approval, RateLimit};
use medic_heal::trust::{Level, Trust, TrustConfig};
use medic_heal::{Execution, Options, Status};

use crate::support::*;

/// A playbook whose action takes `secs` and whose verification passes, with `guards`.
fn slow(name: &str, secs: f64, guards: &str) -> String {
    format!(
        r#"
name: {name}
trigger:
  alert: '{{alertname="Down"}}'
target: '{{{{ $labels.instance }}}}'
group: '{{{{ $labels.job }}}}'
actions:
  fix:
    exec:
      command: [python3, -c, 'import sys, time; time.sleep(float(sys.argv[1]))', '{secs}']
verify:
  exec:
    command: [test, -f, '$DIR/ok']
  within: 200ms
  interval: 50ms
{guards}
"#
    )
}

fn veto(e: &Execution) -> (String, String) {
    assert_eq!(e.status, Status::Vetoed, "{e:#?}");
    let v = e.veto.clone().unwrap();
    (v.guard.to_string(), v.reason)
}

async fn run(rig: &Rig, pb: &str, instance: &str) -> Execution {
    let e = rig
        .trigger(
            pb,
            &[
                ("alertname", "Down"),
                ("instance", instance),
                ("job", "web"),
            ],
        )
        .await;
    if e.status.is_final() {
        e
    } else {
        rig.settle(&e.id).await
    }
}

#[tokio::test]
async fn cooldown_per_playbook_and_target() {
    let rig = Rig::new(
        &[&slow("p", 0.0, "guards:\n  cooldown: 1h")],
        Options::default(),
    );
    std::fs::write(rig.path("ok"), "").unwrap();
    assert_eq!(run(&rig, "p", "a").await.status, Status::Succeeded);
    let (g, reason) = veto(&run(&rig, "p", "a").await);
    assert_eq!(g, "cooldown");
    assert!(reason.contains("cooldown 1h"), "{reason}");
    // Another target is not cooling down.
    assert_eq!(run(&rig, "p", "b").await.status, Status::Succeeded);
}

#[tokio::test]
async fn one_execution_per_target_at_a_time() {
    let rig = Rig::new(
        &[&slow("p1", 1.0, ""), &slow("p2", 0.0, "")],
        Options::default(),
    );
    std::fs::write(rig.path("ok"), "").unwrap();
    let first = rig
        .trigger("p1", &[("alertname", "Down"), ("instance", "a")])
        .await;
    let (g, reason) = veto(
        &rig.trigger("p2", &[("alertname", "Down"), ("instance", "a")])
            .await,
    );
    assert_eq!(g, "lock");
    assert!(reason.contains(&first.id), "{reason}");
    assert_eq!(rig.settle(&first.id).await.status, Status::Succeeded);
    // Released when it ended.
    assert_eq!(run(&rig, "p2", "a").await.status, Status::Succeeded);
}

#[tokio::test]
async fn rate_limits_per_playbook_and_global() {
    let rig = Rig::new(
        &[
            &slow("p", 0.0, "guards:\n  rate_limit: {max: 2, per: 1h}"),
            &slow("q", 0.0, ""),
        ],
        Options {
            rate_limit: Some(RateLimit {
                max: 3,
                per: medic_heal::playbook::Dur(3_600_000),
            }),
            ..Default::default()
        },
    );
    std::fs::write(rig.path("ok"), "").unwrap();
    assert_eq!(run(&rig, "p", "a").await.status, Status::Succeeded);
    assert_eq!(run(&rig, "p", "b").await.status, Status::Succeeded);
    let (g, reason) = veto(&run(&rig, "p", "c").await);
    assert_eq!(
        (g.as_str(), reason.contains("limit 2")),
        ("rate_limit", true),
        "{reason}"
    );
    assert_eq!(run(&rig, "q", "d").await.status, Status::Succeeded);
    let (g, _) = veto(&run(&rig, "q", "e").await);
    assert_eq!(g, "global_rate_limit");
}

#[tokio::test]
async fn blast_radius_by_count_and_by_share_of_the_group() {
    let rig = Rig::new(
        &[&slow("p", 1.0, "guards:\n  blast_radius: {max: 1}")],
        Options::default(),
    );
    std::fs::write(rig.path("ok"), "").unwrap();
    let first = rig
        .trigger(
            "p",
            &[("alertname", "Down"), ("instance", "a"), ("job", "web")],
        )
        .await;
    let (g, reason) = veto(
        &rig.trigger(
            "p",
            &[("alertname", "Down"), ("instance", "b"), ("job", "web")],
        )
        .await,
    );
    assert_eq!(g, "blast_radius");
    assert!(
        reason.contains("1 of group web already under repair"),
        "{reason}"
    );
    // Another group is not affected.
    let other = rig
        .trigger(
            "p",
            &[("alertname", "Down"), ("instance", "c"), ("job", "db")],
        )
        .await;
    assert_eq!(other.status, Status::Running);
    rig.settle(&first.id).await;
    rig.settle(&other.id).await;

    // 50 % of a group of 4 (from PromQL): 2 at once.
    let g = "guards:\n  blast_radius: {max_percent: 50, group_size: 'count(up{job=\"{{ $labels.job }}\"})'}";
    let rig = Rig::new(&[&slow("p", 1.0, g)], Options::default());
    std::fs::write(rig.path("ok"), "").unwrap();
    for i in 0..4 {
        rig.prom
            .set(&format!(r#"up{{job="web", instance="i{i}"}}"#), 1.0);
    }
    let a = rig
        .trigger(
            "p",
            &[("alertname", "Down"), ("instance", "i0"), ("job", "web")],
        )
        .await;
    let b = rig
        .trigger(
            "p",
            &[("alertname", "Down"), ("instance", "i1"), ("job", "web")],
        )
        .await;
    assert_eq!((a.status, b.status), (Status::Running, Status::Running));
    let (g, _) = veto(
        &rig.trigger(
            "p",
            &[("alertname", "Down"), ("instance", "i2"), ("job", "web")],
        )
        .await,
    );
    assert_eq!(g, "blast_radius");
    // Unknown group size: fail safe.
    let (g, reason) = veto(
        &rig.trigger(
            "p",
            &[("alertname", "Down"), ("instance", "x"), ("job", "nojob")],
        )
        .await,
    );
    assert_eq!(g, "blast_radius");
    assert!(reason.contains("cannot tell the group's size"), "{reason}");
    rig.settle(&a.id).await;
    rig.settle(&b.id).await;
}

#[tokio::test]
async fn pauses_of_a_playbook_a_target_and_everything() {
    let rig = Rig::new(&[&slow("p", 0.0, "")], Options::default());
    std::fs::write(rig.path("ok"), "").unwrap();
    rig.engine
        .pause("playbook:p", "deploying", "alice", None)
        .unwrap();
    let (g, reason) = veto(&run(&rig, "p", "a").await);
    assert_eq!(g, "paused");
    assert!(
        reason.contains("paused by alice") && reason.contains("deploying"),
        "{reason}"
    );
    rig.engine.resume_scope("playbook:p").unwrap();
    assert_eq!(run(&rig, "p", "a").await.status, Status::Succeeded);

    rig.engine
        .pause("target:b", "hands off", "bob", None)
        .unwrap();
    assert_eq!(veto(&run(&rig, "p", "b").await).0, "paused");
    assert_eq!(run(&rig, "p", "c").await.status, Status::Succeeded);

    // A pause with an end lifts by itself.
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    rig.engine
        .pause("all", "incident", "carol", Some(now + 300))
        .unwrap();
    assert_eq!(veto(&run(&rig, "p", "d").await).0, "paused");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(run(&rig, "p", "d").await.status, Status::Succeeded);

    assert!(rig.engine.pause("nonsense", "", "x", None).is_err());
    assert!(rig.engine.pause("playbook:nope", "", "x", None).is_err());
}

#[tokio::test]
async fn maintenance_windows_and_disabled() {
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock);
    let rig = Rig::new(
        &[
            &slow("p", 0.0, ""),
            &slow("off", 0.0, "").replace("trigger:", "enabled: false\ntrigger:"),
        ],
        Options {
            maintenance: vec![MaintenanceWindow {
                name: "db-upgrade".into(),
                starts_at: now - 1000,
                ends_at: now + 3_600_000,
                matchers: medic_model::parse_selector(r#"{job="db"}"#).unwrap(),
            }],
            ..Default::default()
        },
    );
    std::fs::write(rig.path("ok"), "").unwrap();
    let e = rig
        .trigger(
            "p",
            &[("alertname", "Down"), ("instance", "a"), ("job", "db")],
        )
        .await;
    let (g, reason) = veto(&e);
    assert_eq!(g, "maintenance");
    assert!(reason.contains("db-upgrade"), "{reason}");
    assert_eq!(
        run(&rig, "p", "a").await.status,
        Status::Succeeded,
        "job=web is outside the window"
    );
    assert_eq!(veto(&run(&rig, "off", "z").await).0, "enabled");

    let rig = Rig::new(
        &[&slow("p", 0.0, "")],
        Options {
            enabled: false,
            ..Default::default()
        },
    );
    assert_eq!(veto(&run(&rig, "p", "a").await).0, "enabled");
}

#[tokio::test]
async fn the_circuit_breaker_pauses_the_playbook_and_escalates() {
    let rig = Rig::new(
        &[&slow(
            "p",
            0.0,
            "guards:\n  circuit_breaker: {failures: 2, within: 1h}\nnotify:\n  receivers: [ops]",
        )],
        Options::default(),
    );
    // No `ok` file: every verification fails.
    assert_eq!(run(&rig, "p", "a").await.status, Status::Failed);
    assert_eq!(run(&rig, "p", "b").await.status, Status::Failed);
    let (g, reason) = veto(&run(&rig, "p", "c").await);
    assert_eq!(g, "circuit_breaker");
    assert!(
        reason.contains("2 failed verifications within 1h"),
        "{reason}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rig
        .hooks
        .sent
        .lock()
        .unwrap()
        .iter()
        .any(|n| n.event == "circuit_breaker"));
    // Resuming closes it.
    rig.engine.resume_scope("playbook:p").unwrap();
    std::fs::write(rig.path("ok"), "").unwrap();
    assert_eq!(run(&rig, "p", "c").await.status, Status::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repairs_that_do_not_hold_open_the_circuit_breaker() {
    let rig = Rig::new(
        &[&slow(
            "p",
            0.0,
            "guards:\n  circuit_breaker: {failures: 2, within: 1h, recurrence: 1h}\nnotify:\n  receivers: [ops]",
        )],
        Options::default(),
    );
    std::fs::write(rig.path("ok"), "").unwrap();
    // Every repair verifies, but the fault keeps coming back to the same target.
    let first = run(&rig, "p", "a").await;
    assert_eq!(first.status, Status::Succeeded);
    assert!(!first.steps.iter().any(|s| s.name == "recurrence"));
    // Another target is not a recurrence.
    let other = run(&rig, "p", "b").await;
    assert!(!other.steps.iter().any(|s| s.name == "recurrence"));
    let second = run(&rig, "p", "a").await;
    assert_eq!(second.status, Status::Succeeded);
    assert!(second.steps.iter().any(|s| s.name == "recurrence"));
    let (g, reason) = veto(&run(&rig, "p", "a").await);
    assert_eq!(g, "circuit_breaker");
    assert!(reason.contains("2 repairs that did not hold"), "{reason}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rig
        .hooks
        .sent
        .lock()
        .unwrap()
        .iter()
        .any(|n| n.event == "circuit_breaker"));
}

fn outcome(success: bool, at: i64) -> Outcome {
    Outcome {
        playbook: "p".into(),
        cause: "c".into(),
        action: "a".into(),
        success,
        at,
        execution: String::new(),
    }
}

#[test]
fn the_trust_ladder_demotes_disables_and_promotes() {
    let cfg = TrustConfig {
        min_attempts: 4,
        window: 10,
        demote_below: 0.5,
        disable_below: 0.2,
        promote_at: 0.75,
    };
    let mut t = Trust::default();
    assert_eq!(t.level("p", "c", "a", Approval::Never), Level::Auto);
    // 1 of 4: demoted to approval.
    let mut changes = Vec::new();
    for s in [true, false, false, false] {
        changes.extend(t.record(&cfg, &outcome(s, 0), Approval::Never));
    }
    assert_eq!(t.level("p", "c", "a", Approval::Never), Level::Approval);
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].from.as_str(), changes[0].to.as_str()),
        ("auto", "approval")
    );
    assert!(
        changes[0].reason.contains("1 of the last 4"),
        "{}",
        changes[0].reason
    );
    // 1 of 6: disabled.
    for _ in 0..2 {
        changes.extend(t.record(&cfg, &outcome(false, 0), Approval::Never));
    }
    assert_eq!(t.level("p", "c", "a", Approval::Never), Level::Disabled);
    // An untrusted action proves itself and is promoted; an always-approval one never is.
    let mut u = Trust::default();
    assert_eq!(u.level("p", "c", "a", Approval::Untrusted), Level::Approval);
    for _ in 0..4 {
        u.record(&cfg, &outcome(true, 0), Approval::Untrusted);
    }
    assert_eq!(u.level("p", "c", "a", Approval::Untrusted), Level::Auto);
    let mut w = Trust::default();
    for _ in 0..4 {
        assert!(w
            .record(&cfg, &outcome(true, 0), Approval::Always)
            .is_none());
    }
    assert_eq!(w.level("p", "c", "a", Approval::Always), Level::Approval);
    // History rebuilds the same state.
    let rebuilt = Trust::from_history(&cfg, &[], &changes);
    assert_eq!(
        rebuilt.level("p", "c", "a", Approval::Never),
        Level::Disabled
    );
}

#[test]
fn candidates_are_ranked_by_verified_success() {
    let cfg = TrustConfig::default();
    let mut t = Trust::default();
    let acts = vec![
        ("a".to_string(), Approval::Never),
        ("b".to_string(), Approval::Never),
        ("new".to_string(), Approval::Never),
    ];
    assert_eq!(
        t.rank("p", "c", &acts),
        ["a", "b", "new"],
        "the author's order without a record"
    );
    for _ in 0..3 {
        t.record(
            &cfg,
            &Outcome {
                action: "a".into(),
                ..outcome(false, 0)
            },
            Approval::Never,
        );
        t.record(
            &cfg,
            &Outcome {
                action: "b".into(),
                ..outcome(true, 0)
            },
            Approval::Never,
        );
    }
    assert_eq!(t.rank("p", "c", &acts), ["b", "new", "a"]);
}
