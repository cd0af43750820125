//! The audit log: an intact chain verifies; a changed, rewritten or removed row is found;
//! pruning keeps the chain verifiable; queries filter newest first.

use medic_model::AuditEntry;
use medic_state::{audit_chain_hash, AuditQuery, AuditStore, Verdict};

use crate::backends::{on_postgres, on_sqlite, Case, Place};

const CASES: &[Case] = &[
    (
        "an_intact_log_verifies_and_survives_reopening",
        an_intact_log_verifies,
    ),
    ("a_changed_row_is_found", a_changed_row_is_found),
    (
        "a_rewritten_row_breaks_the_next_link",
        a_rewritten_row_breaks_the_next_link,
    ),
    (
        "a_removed_row_is_found_in_the_middle",
        a_removed_row_is_found_in_the_middle,
    ),
    (
        "a_removed_row_is_found_at_the_end",
        a_removed_row_is_found_at_the_end,
    ),
    (
        "pruning_by_age_keeps_the_chain_verifiable",
        pruning_keeps_the_chain_verifiable,
    ),
    ("queries_filter_newest_first", queries_filter_newest_first),
    (
        "concurrent_appends_keep_one_chain",
        concurrent_appends_keep_one_chain,
    ),
];

#[test]
fn audit_log_on_sqlite() {
    on_sqlite(CASES);
}

#[test]
fn audit_log_on_postgresql() {
    on_postgres(CASES);
}

fn entry(i: i64) -> AuditEntry {
    AuditEntry {
        at: 1_000 * i,
        actor: "alice".into(),
        source: "127.0.0.1:5000".into(),
        action: "POST /api/v2/silences".into(),
        target: format!("silence-{i}"),
        detail: format!("{{\"comment\":\"n{i}'\"}}"),
        result: "200".into(),
    }
}

fn log(place: &Place, n: i64) -> Box<dyn AuditStore> {
    let a = place.audit();
    for i in 1..=n {
        assert_eq!(a.append(&entry(i)).unwrap(), i);
    }
    a
}

fn an_intact_log_verifies(place: &Place) {
    let a = log(place, 5);
    let Verdict::Intact { rows, head } = a.verify().unwrap() else {
        panic!("broken")
    };
    assert_eq!(rows, 5);
    drop(a);
    let a = place.audit();
    a.append(&entry(6)).unwrap();
    let Verdict::Intact { rows, head: h2 } = a.verify().unwrap() else {
        panic!("broken after reopening")
    };
    assert_eq!(rows, 6);
    assert_ne!(head, h2);
}

fn a_changed_row_is_found(place: &Place) {
    let a = log(place, 5);
    place.tamper("audit.db", "UPDATE audit SET result = '403' WHERE seq = 3");
    let v = a.verify().unwrap();
    assert!(matches!(v, Verdict::Broken { seq: 3, .. }), "{v:?}");
}

fn a_rewritten_row_breaks_the_next_link(place: &Place) {
    let a = log(place, 5);
    let prev = a
        .query(&AuditQuery {
            target: Some("silence-1".into()),
            ..Default::default()
        })
        .unwrap()[0]
        .hash
        .clone();
    let mut e = entry(2);
    e.actor = "mallory".into();
    let h = audit_chain_hash(&prev, 2, &e);
    place.tamper(
        "audit.db",
        &format!("UPDATE audit SET actor = 'mallory', hash = '{h}' WHERE seq = 2"),
    );
    let v = a.verify().unwrap();
    assert!(matches!(v, Verdict::Broken { seq: 3, .. }), "{v:?}");
}

fn a_removed_row_is_found_in_the_middle(place: &Place) {
    let a = log(place, 5);
    place.tamper("audit.db", "DELETE FROM audit WHERE seq = 2");
    let v = a.verify().unwrap();
    assert!(
        matches!(&v, Verdict::Broken { seq: 2, reason } if reason.contains("missing")),
        "{v:?}"
    );
}

fn a_removed_row_is_found_at_the_end(place: &Place) {
    let a = log(place, 5);
    place.tamper("audit.db", "DELETE FROM audit WHERE seq = 5");
    let v = a.verify().unwrap();
    assert!(
        matches!(&v, Verdict::Broken { reason, .. } if reason.contains("removed from its end")),
        "{v:?}"
    );
}

fn pruning_keeps_the_chain_verifiable(place: &Place) {
    let a = log(place, 10);
    assert_eq!(a.prune(4_500).unwrap(), 4);
    let v = a.verify().unwrap();
    assert!(matches!(v, Verdict::Intact { rows: 6, .. }), "{v:?}");
    a.append(&entry(11)).unwrap();
    let v = a.verify().unwrap();
    assert!(matches!(v, Verdict::Intact { rows: 7, .. }), "{v:?}");
    // Everything old: the newest row stays as the chain's head.
    assert_eq!(a.prune(i64::MAX).unwrap(), 6);
    let v = a.verify().unwrap();
    assert!(matches!(v, Verdict::Intact { rows: 1, .. }), "{v:?}");
}

fn queries_filter_newest_first(place: &Place) {
    let a = log(place, 5);
    let rows = a
        .query(&AuditQuery {
            target: Some("silence-".into()),
            since: Some(2_000),
            until: Some(4_000),
            ..Default::default()
        })
        .unwrap();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [4, 3, 2]);
    let rows = a
        .query(&AuditQuery {
            action: Some("POST".into()),
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 4]);
    assert_eq!(rows[0].entry, entry(5));
    assert!(a
        .query(&AuditQuery {
            actor: Some("bob".into()),
            ..Default::default()
        })
        .unwrap()
        .is_empty());
}

/// Several writers at once (on PostgreSQL: several replicas) still make one chain.
fn concurrent_appends_keep_one_chain(place: &Place) {
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                let a = place.audit();
                for i in 0..25 {
                    a.append(&entry(t * 100 + i)).unwrap();
                }
            });
        }
    });
    let v = place.audit().verify().unwrap();
    assert!(matches!(v, Verdict::Intact { rows: 100, .. }), "{v:?}");
}
