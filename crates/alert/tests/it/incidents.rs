//! The incident core on a simulated clock: groups open and join incidents by the policy's
//! levels and correlation labels, people and repairs move them through their lifecycle,
//! escalations come once each when the targets pass, and the figures (time to acknowledge,
//! mitigate, resolve, time in each state) are what the timeline says.

use medic_alert::incident::{
    Action, Book, Effect, Feed, GroupRef, GroupSnapshot, IncidentError, Level, Policy, PolicySpec,
    RepairRef, Status,
};
use medic_model::Labels;

const S: i64 = 1000;
const M: i64 = 60 * S;
const T0: i64 = 1_700_000_000_000;

fn book() -> Book {
    Book::new(Policy::new(&PolicySpec::default()).unwrap())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn fire(b: &mut Book, at: i64, key: &str, l: &Labels) -> Vec<Effect> {
    b.group_firing(
        T0 + at,
        &GroupRef {
            key,
            labels: l,
            summary: key,
            since: T0 + at,
        },
    )
}

fn repair<'a>(labels: &'a Labels, step: &'a str, verified: bool) -> RepairRef<'a> {
    RepairRef {
        at: i64::MAX,
        execution: "ex-1",
        labels,
        groups: &[],
        step,
        verified,
    }
}

#[test]
fn groups_open_and_join_incidents_by_level_and_service() {
    let mut b = book();
    let checkout_crit = labels(&[("service", "checkout"), ("severity", "critical")]);
    let checkout_warn = labels(&[("service", "checkout"), ("severity", "warning")]);
    let search_crit = labels(&[("service", "search"), ("severity", "critical")]);
    assert_eq!(
        fire(&mut b, 0, "g-crit", &checkout_crit),
        vec![Effect::Opened {
            id: 1,
            level: Level::P1
        }]
    );
    // Same service within the window: joins, and a lower severity does not lower the level.
    assert_eq!(
        fire(&mut b, 2 * M, "g-warn", &checkout_warn),
        vec![Effect::Joined {
            id: 1,
            group: "g-warn".into()
        }]
    );
    assert_eq!(b.get(1).unwrap().level, Level::P1);
    // Firing again changes nothing.
    assert_eq!(fire(&mut b, 3 * M, "g-warn", &checkout_warn), vec![]);
    // Another service: its own incident.
    assert_eq!(
        fire(&mut b, 3 * M, "g-search", &search_crit),
        vec![Effect::Opened {
            id: 2,
            level: Level::P1
        }]
    );
    // Info opens nothing; a group without the correlation label opens its own incident.
    let info = labels(&[("service", "batch"), ("severity", "info")]);
    assert_eq!(fire(&mut b, 4 * M, "g-info", &info), vec![]);
    let bare = labels(&[("severity", "critical")]);
    assert!(matches!(
        fire(&mut b, 4 * M, "g-bare1", &bare)[..],
        [Effect::Opened { id: 3, .. }]
    ));
    assert!(matches!(
        fire(&mut b, 4 * M, "g-bare2", &bare)[..],
        [Effect::Opened { id: 4, .. }]
    ));
    // Past the window (30m after the last activity), the same service opens a new incident.
    assert!(matches!(
        fire(&mut b, 34 * M, "g-warn2", &checkout_warn)[..],
        [Effect::Opened {
            id: 5,
            level: Level::P2
        }]
    ));
    // A critical group joining a P2 incident raises it, with P1's targets.
    let effects = fire(&mut b, 35 * M, "g-crit2", &checkout_crit);
    assert!(effects.contains(&Effect::LevelRaised {
        id: 5,
        from: Level::P2,
        to: Level::P1
    }));
    assert_eq!(b.get(5).unwrap().respond_within_ms, 5 * M);
}

#[test]
fn escalations_come_once_each_when_the_targets_pass() {
    let mut b = book();
    let crit = labels(&[("service", "checkout"), ("severity", "critical")]);
    fire(&mut b, 0, "g", &crit);
    let mut seen = Vec::new();
    for at in (0..=20 * M).step_by(30 * S as usize) {
        for e in b.tick(T0 + at) {
            seen.push((at, e));
        }
    }
    assert_eq!(
        seen,
        vec![
            (
                5 * M,
                Effect::Escalated {
                    id: 1,
                    why: "ack_overdue"
                }
            ),
            (
                15 * M,
                Effect::Escalated {
                    id: 1,
                    why: "unresolved"
                }
            ),
        ]
    );
    // Acknowledged in time, a warning incident escalates only when unresolved (2 h).
    let warn = labels(&[("service", "search"), ("severity", "warning")]);
    fire(&mut b, 0, "w", &warn);
    b.act(T0 + 10 * M, 2, "alice", Action::Acknowledge).unwrap();
    let mut seen = Vec::new();
    for at in (0..=3 * 60 * M).step_by(M as usize) {
        seen.extend(b.tick(T0 + at).into_iter().map(|e| (at, e)));
    }
    assert_eq!(
        seen,
        vec![(
            120 * M,
            Effect::Escalated {
                id: 2,
                why: "unresolved"
            }
        )]
    );
}

#[test]
fn a_repair_verified_before_anyone_acknowledged_marks_it_auto_mitigated() {
    let mut b = book();
    let crit = labels(&[
        ("service", "checkout"),
        ("severity", "critical"),
        ("instance", "web-1"),
    ]);
    fire(&mut b, 0, "g", &crit);
    let affected = labels(&[("service", "checkout"), ("instance", "web-1")]);
    assert_eq!(
        b.repair(
            T0 + M,
            &repair(&affected, "restart: argv [systemctl restart web]", false)
        ),
        vec![]
    );
    assert_eq!(
        b.repair(
            T0 + 2 * M,
            &repair(&affected, "verified: error rate 0.1% < 1%", true)
        ),
        vec![Effect::StatusChanged {
            id: 1,
            from: Status::Triggered,
            to: Status::Mitigated
        }]
    );
    assert_eq!(
        b.group_resolved(T0 + 4 * M, "g"),
        vec![Effect::StatusChanged {
            id: 1,
            from: Status::Mitigated,
            to: Status::Resolved
        }]
    );
    let inc = b.get(1).unwrap();
    assert!(inc.auto_mitigated);
    let f = inc.figures(T0 + 10 * M);
    assert_eq!(f.time_to_acknowledge, None);
    assert_eq!(f.time_to_mitigate, Some(2 * M));
    assert_eq!(f.time_to_resolve, Some(4 * M));
    assert_eq!(f.time_in[&Status::Triggered], 2 * M);
    assert_eq!(f.time_in[&Status::Mitigated], 2 * M);
    assert_eq!(f.time_in[&Status::Resolved], 6 * M);
    let kinds: Vec<&str> = inc.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "opened",
            "alert_firing",
            "repair",
            "repair",
            "mitigated",
            "alert_resolved",
            "resolved"
        ]
    );
    // No escalation for a mitigated incident.
    assert_eq!(b.tick(T0 + 30 * M), vec![]);

    // Acknowledged first, the same repair mitigates it but not automatically.
    let mut b = book();
    fire(&mut b, 0, "g", &crit);
    b.act(T0 + M, 1, "alice", Action::Acknowledge).unwrap();
    b.repair(T0 + 3 * M, &repair(&affected, "verified", true));
    let inc = b.get(1).unwrap();
    assert_eq!(inc.status, Status::Mitigated);
    assert!(!inc.auto_mitigated);
    assert_eq!(inc.figures(T0 + 3 * M).time_to_acknowledge, Some(M));
}

#[test]
fn people_move_it_through_its_lifecycle_and_wrong_moves_are_refused() {
    let mut b = book();
    let crit = labels(&[("service", "checkout"), ("severity", "critical")]);
    fire(&mut b, 0, "g", &crit);
    let err = b.act(T0 + M, 1, "bob", Action::Close).unwrap_err();
    assert_eq!(
        err.to_string(),
        "incident 1 is triggered: cannot close it; resolve it first"
    );
    assert_eq!(
        b.act(T0, 9, "bob", Action::Acknowledge),
        Err(IncidentError::Unknown(9))
    );
    b.act(T0 + M, 1, "bob", Action::Assign("alice".into()))
        .unwrap();
    b.act(
        T0 + M,
        1,
        "alice",
        Action::Comment("db failover in progress".into()),
    )
    .unwrap();
    assert!(b
        .act(T0 + M, 1, "alice", Action::Comment("  ".into()))
        .is_err());
    b.act(T0 + 2 * M, 1, "alice", Action::Acknowledge).unwrap();
    let err = b
        .act(T0 + 2 * M, 1, "alice", Action::Acknowledge)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is acknowledged: cannot acknowledge"),
        "{err}"
    );
    b.act(T0 + 5 * M, 1, "alice", Action::Resolve).unwrap();
    // Firing again before it is closed reopens it.
    let effects = fire(&mut b, 6 * M, "g", &crit);
    assert_eq!(
        effects,
        vec![Effect::StatusChanged {
            id: 1,
            from: Status::Resolved,
            to: Status::Triggered
        }]
    );
    assert_eq!(b.get(1).unwrap().resolved_at, None);
    b.group_resolved(T0 + 7 * M, "g");
    b.act(T0 + 8 * M, 1, "alice", Action::Close).unwrap();
    let err = b
        .act(T0 + 9 * M, 1, "alice", Action::Comment("late".into()))
        .unwrap_err();
    assert!(err.to_string().contains("is closed"), "{err}");
    // After it is closed, the same group opens a new incident.
    assert!(matches!(
        fire(&mut b, 10 * M, "g", &crit)[..],
        [Effect::Opened { id: 2, .. }]
    ));
    let inc = b.get(1).unwrap();
    assert_eq!(inc.assignee.as_deref(), Some("alice"));
    let who: Vec<(&str, &str)> = inc
        .timeline
        .iter()
        .map(|e| (e.kind.as_str(), e.who.as_str()))
        .collect();
    assert!(
        who.contains(&("comment", "alice")) && who.contains(&("closed", "alice")),
        "{who:?}"
    );
    assert_eq!(inc.figures(T0 + 20 * M).time_in[&Status::Resolved], 2 * M);
    assert!(!inc
        .figures(T0 + 20 * M)
        .time_in
        .contains_key(&Status::Closed));
}

#[test]
fn a_bad_policy_is_refused_naming_the_field() {
    let spec: PolicySpec = serde_norway::from_str(
        "open_on:\n  - matchers: ['severity=~\"(\"']\n    level: P1\n    respond_within: 5m\n    escalate_after: 15m\n",
    )
    .unwrap();
    let e = Policy::new(&spec).unwrap_err();
    assert!(e.starts_with("open_on[0].matchers[0]:"), "{e}");
    let spec: PolicySpec = serde_norway::from_str(
        "open_on:\n  - matchers: ['severity=\"critical\"']\n    level: P1\n    respond_within: 30m\n    escalate_after: 15m\n",
    )
    .unwrap();
    assert!(Policy::new(&spec)
        .unwrap_err()
        .contains("escalate_after (15m) is shorter than respond_within (30m)"));
    let bad: Result<PolicySpec, _> = serde_norway::from_str("open_on:\n  - matchers: []\n    level: P7\n    respond_within: 5m\n    escalate_after: 5m\n");
    assert!(bad.is_err());
}

fn snap(key: &str, l: &Labels) -> GroupSnapshot {
    GroupSnapshot {
        key: key.into(),
        labels: l.clone(),
        summary: key.into(),
        fingerprints: vec![format!("fp-{key}")],
        suppressed: false,
        silenced_by: vec![],
        acked_by: None,
        since: i64::MAX,
    }
}

#[test]
fn the_feed_turns_snapshots_of_groups_into_firing_resolving_acks_and_silences() {
    let mut b = book();
    let mut feed = Feed::default();
    let crit = labels(&[("service", "checkout"), ("severity", "critical")]);
    let g = snap("g", &crit);
    assert!(matches!(
        feed.sync(&mut b, T0, std::slice::from_ref(&g))[..],
        [Effect::Opened { id: 1, .. }]
    ));
    // Still firing: nothing new, and an incident resolved by hand meanwhile stays resolved.
    b.act(T0 + M, 1, "alice", Action::Resolve).unwrap();
    assert_eq!(
        feed.sync(&mut b, T0 + 2 * M, std::slice::from_ref(&g)),
        vec![]
    );
    assert_eq!(b.get(1).unwrap().status, Status::Resolved);
    b.act(T0 + 2 * M, 1, "alice", Action::Close).unwrap();
    // Gone from the alert manager: resolved; back: a new incident (the old one is closed).
    assert_eq!(feed.sync(&mut b, T0 + 3 * M, &[]), vec![]);
    assert!(matches!(
        feed.sync(&mut b, T0 + 4 * M, std::slice::from_ref(&g))[..],
        [Effect::Opened { id: 2, .. }]
    ));
    assert_eq!(feed.groups_of("fp-g"), vec!["g".to_string()]);
    // An ack of the group in the alert manager acknowledges the incident, once.
    let mut acked = g.clone();
    acked.acked_by = Some("bob".into());
    acked.silenced_by = vec!["s-1".into()];
    assert_eq!(
        feed.sync(&mut b, T0 + 5 * M, std::slice::from_ref(&acked)),
        vec![Effect::StatusChanged {
            id: 2,
            from: Status::Triggered,
            to: Status::Acknowledged
        }]
    );
    assert_eq!(
        feed.sync(&mut b, T0 + 6 * M, std::slice::from_ref(&acked)),
        vec![]
    );
    let inc = b.get(2).unwrap();
    assert_eq!(inc.acknowledged_at, Some(T0 + 5 * M));
    let lines: Vec<(&str, &str)> = inc
        .timeline
        .iter()
        .map(|e| (e.kind.as_str(), e.who.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("opened", "medic"),
            ("alert_firing", "medic"),
            ("alert_acknowledged", "bob"),
            ("acknowledged", "bob"),
            ("silenced", "medic"),
        ]
    );
    // Resolved in the alert manager: the incident resolves.
    assert_eq!(
        feed.sync(&mut b, T0 + 7 * M, &[]),
        vec![Effect::StatusChanged {
            id: 2,
            from: Status::Acknowledged,
            to: Status::Resolved
        }]
    );
}

#[test]
fn a_muted_group_opens_nothing_and_a_restarted_feed_resolves_what_ended_meanwhile() {
    let mut b = book();
    let crit = labels(&[("service", "checkout"), ("severity", "critical")]);
    let mut muted = snap("m", &crit);
    muted.suppressed = true;
    let mut feed = Feed::default();
    assert_eq!(feed.sync(&mut b, T0, std::slice::from_ref(&muted)), vec![]);
    assert_eq!(b.all().count(), 0);
    feed.sync(&mut b, T0, &[snap("g", &crit)]);
    assert_eq!(b.take_dirty().len(), 1);
    assert!(b.take_dirty().is_empty());
    // medic restarts: the book is loaded, the feed believes it, and the group is gone.
    let saved: Vec<_> = b.all().cloned().collect();
    let mut b = Book::with_incidents(Policy::new(&PolicySpec::default()).unwrap(), saved);
    let mut feed = Feed::from_book(&b);
    assert_eq!(
        feed.sync(&mut b, T0 + M, &[]),
        vec![Effect::StatusChanged {
            id: 1,
            from: Status::Triggered,
            to: Status::Resolved
        }]
    );
    // A repair of an alert in a group the incident holds, without the correlation label.
    let mut b2 = book();
    let bare = labels(&[("severity", "critical")]);
    fire(&mut b2, 0, "g-bare", &bare);
    let groups = vec!["g-bare".to_string()];
    let fx = b2.repair(
        T0 + M,
        &RepairRef {
            at: T0 + M,
            execution: "ex-9",
            labels: &labels(&[("instance", "db-1")]),
            groups: &groups,
            step: "verified",
            verified: true,
        },
    );
    assert_eq!(fx.len(), 1);
    assert_eq!(b2.get(1).unwrap().executions, vec!["ex-9".to_string()]);
}

#[test]
fn a_fix_verified_after_its_alerts_resolved_still_counts_and_lines_keep_time_order() {
    let mut b = book();
    let crit = labels(&[("service", "shop"), ("severity", "critical")]);
    fire(&mut b, 0, "g", &crit);
    // The rollback ended at 1m, the alert resolved at 2m, the verification ended at 3m; the
    // shell reads the steps only at 4m.
    b.group_resolved(T0 + 2 * M, "g");
    let shop = labels(&[("service", "shop")]);
    let step = |at, text, verified| RepairRef {
        at,
        execution: "ex-1",
        labels: &shop,
        groups: &[],
        step: text,
        verified,
    };
    assert_eq!(
        b.repair(
            T0 + 4 * M,
            &step(T0 + M, "action rollback succeeded", false)
        ),
        vec![]
    );
    assert_eq!(
        b.repair(T0 + 4 * M, &step(T0 + 3 * M, "verify succeeded", true)),
        vec![]
    );
    let inc = b.get(1).unwrap();
    assert_eq!(inc.status, Status::Resolved);
    assert!(inc.auto_mitigated);
    assert_eq!(
        inc.mitigated_at,
        Some(T0 + 2 * M),
        "no later than the resolution"
    );
    let lines: Vec<(i64, &str)> = inc
        .timeline
        .iter()
        .map(|e| ((e.at - T0) / M, e.kind.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (0, "opened"),
            (0, "alert_firing"),
            (1, "repair"),
            (2, "alert_resolved"),
            (2, "resolved"),
            (3, "repair"),
            (3, "mitigated"),
        ]
    );
    // Acknowledged first, the same story is not automatic; a closed incident takes no lines.
    let mut b = book();
    fire(&mut b, 0, "g", &crit);
    b.act(T0 + M, 1, "alice", Action::Acknowledge).unwrap();
    b.group_resolved(T0 + 2 * M, "g");
    b.repair(T0 + 4 * M, &step(T0 + 3 * M, "verify succeeded", true));
    assert!(!b.get(1).unwrap().auto_mitigated);
    b.act(T0 + 5 * M, 1, "alice", Action::Close).unwrap();
    let before = b.get(1).unwrap().timeline.len();
    b.repair(T0 + 6 * M, &step(T0 + 6 * M, "late", false));
    assert_eq!(b.get(1).unwrap().timeline.len(), before);
}

#[test]
fn a_flapping_group_cannot_grow_a_timeline_without_bound() {
    let mut b = book();
    let crit = labels(&[("service", "shop"), ("severity", "critical")]);
    fire(&mut b, 0, "g", &crit);
    b.act(T0 + 1, 1, "alice", Action::Acknowledge).unwrap();
    for k in 0..3000 {
        let at = T0 + 2 + k * 10;
        fire(&mut b, at, "g", &crit);
        b.group_resolved(at + 5, "g");
    }
    let inc = b.get(1).unwrap();
    assert_eq!(inc.timeline.len(), medic_alert::incident::MAX_TIMELINE);
    assert_eq!(inc.timeline[0].kind, "opened", "the opening stays");
    assert!(inc.timeline_dropped > 0);
    assert_eq!(
        inc.timeline.len() as u64 + inc.timeline_dropped,
        2 + 3000 * 4 - 1,
        "every line is kept or counted"
    );
    // The newest lines are the ones kept.
    assert_eq!(inc.timeline.last().unwrap().at, T0 + 2 + 2999 * 10 + 5);
    // Closed, it is kept until the retention passes, then forgotten.
    b.act(T0 + 40_000, 1, "alice", Action::Close).unwrap();
    assert_eq!(b.prune(T0 + 40_000), Vec::<u64>::new());
    assert_eq!(b.prune(T0 + 40_001), vec![1]);
    assert!(b.get(1).is_none());
}
