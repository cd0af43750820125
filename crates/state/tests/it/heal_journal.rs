//! The heal journal: executions survive a reopen and filter; pauses, outcomes and trust
//! changes round-trip in order; pruning keeps what is unfinished.

use medic_heal::journal::{
    Execution, ExecutionQuery, Outcome, Pause, Phase, Status, TriggerInfo, TrustChange,
};

use crate::backends::{on_postgres, on_sqlite, Case, Place};

const CASES: &[Case] = &[
    (
        "executions_survive_reopening_and_filter",
        executions_survive_reopening_and_filter,
    ),
    (
        "pauses_outcomes_and_trust_round_trip",
        pauses_outcomes_and_trust_round_trip,
    ),
];

#[test]
fn heal_journal_on_sqlite() {
    on_sqlite(CASES);
}

#[test]
fn heal_journal_on_postgresql() {
    on_postgres(CASES);
}

fn exec(id: &str, status: Status, at: i64) -> Execution {
    Execution {
        id: id.into(),
        playbook: "pb".into(),
        target: "t1".into(),
        group: "g".into(),
        trigger: TriggerInfo {
            kind: medic_heal::kinds::TriggerKind::Manual,
            fingerprint: None,
            labels: Default::default(),
            annotations: Default::default(),
            starts_at: at,
            received_at: at,
            by: Some("me'; DROP TABLE executions; --".into()),
        },
        params: Default::default(),
        status,
        phase: Phase::Collect,
        dry_run: false,
        created_at: at,
        updated_at: at,
        finished_at: None,
        veto: None,
        evidence: Default::default(),
        diagnosis: None,
        candidates: vec![],
        attempt: 0,
        actions_run: vec![],
        decision: None,
        action_started_at: None,
        summary: String::new(),
        steps: vec![],
    }
}

fn executions_survive_reopening_and_filter(place: &Place) {
    {
        let s = place.heal();
        s.put_execution(&exec("a", Status::Succeeded, 1000))
            .unwrap();
        s.put_execution(&exec("b", Status::AwaitingApproval, 2000))
            .unwrap();
        s.put_execution(&exec("c", Status::Vetoed, 3000)).unwrap();
        // A rewrite replaces the record.
        s.put_execution(&exec("b", Status::Running, 2000)).unwrap();
    }
    let s = place.heal();
    let ids = |v: Vec<Execution>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(s.unfinished().unwrap()), ["b"]);
    assert_eq!(s.execution("b").unwrap().unwrap().status, Status::Running);
    assert_eq!(
        ids(s.executions(&ExecutionQuery::default()).unwrap()),
        ["c", "b", "a"]
    );
    let q = ExecutionQuery {
        status: Some(Status::Vetoed),
        ..Default::default()
    };
    assert_eq!(ids(s.executions(&q).unwrap()), ["c"]);
    let q = ExecutionQuery {
        since: Some(1500),
        limit: 1,
        ..Default::default()
    };
    assert_eq!(ids(s.executions(&q).unwrap()), ["c"]);
    let q = ExecutionQuery {
        until: Some(2500),
        playbook: Some("pb".into()),
        target: Some("t1".into()),
        ..Default::default()
    };
    assert_eq!(ids(s.executions(&q).unwrap()), ["b", "a"]);
    assert_eq!(
        s.prune(2500).unwrap(),
        1,
        "only the final one before the cut"
    );
    assert!(s.execution("a").unwrap().is_none());
    assert!(s.execution("b").unwrap().is_some());
    assert_eq!(
        s.execution("b").unwrap().unwrap().trigger.by.as_deref(),
        Some("me'; DROP TABLE executions; --")
    );
}

fn pauses_outcomes_and_trust_round_trip(place: &Place) {
    let s = place.heal();
    let pause = |scope: &str| Pause {
        scope: scope.into(),
        reason: "maintenance".into(),
        by: "alice".into(),
        at: 5,
        until: None,
    };
    s.put_pause(&pause("playbook:b")).unwrap();
    s.put_pause(&pause("all")).unwrap();
    s.put_pause(&pause("all")).unwrap();
    let outcome = |at: i64| Outcome {
        playbook: "pb".into(),
        cause: "c".into(),
        action: "restart".into(),
        success: at % 20 == 0,
        at,
        execution: format!("e{at}"),
    };
    for at in [30, 10, 20] {
        s.put_outcome(&outcome(at)).unwrap();
    }
    let change = TrustChange {
        playbook: "pb".into(),
        cause: "c".into(),
        action: "restart".into(),
        from: "approval".into(),
        to: "auto".into(),
        reason: "10 successes".into(),
        at: 40,
    };
    s.put_trust_change(&change).unwrap();
    let s = place.heal();
    let scopes: Vec<String> = s.pauses().unwrap().into_iter().map(|p| p.scope).collect();
    assert_eq!(scopes, ["all", "playbook:b"]);
    s.delete_pause("all").unwrap();
    assert_eq!(s.pauses().unwrap().len(), 1);
    let ats: Vec<i64> = s.outcomes().unwrap().iter().map(|o| o.at).collect();
    assert_eq!(ats, [30, 10, 20], "in the order written");
    assert_eq!(s.trust_changes().unwrap(), vec![change]);
    s.prune(25).unwrap();
    let ats: Vec<i64> = s.outcomes().unwrap().iter().map(|o| o.at).collect();
    assert_eq!(ats, [30]);
}
