//! The alert manager's state: what is written survives a reopen, in full; history filters;
//! concurrent queued writes all commit; the newest write of an alert wins.

use std::sync::Arc;

use medic_alert::ack::Ack;
use medic_alert::nflog;
use medic_alert::silence::Silence;
use medic_alert::state::{Event, EventKind, HistoryQuery};
use medic_alert::{Alert, Annotations, Fingerprint};
use medic_model::Labels;

use crate::backends::{on_postgres, on_sqlite, Case, Place};

const CASES: &[Case] = &[
    ("everything_survives_a_reopen", everything_survives_a_reopen),
    ("history_filters_and_prunes", history_filters_and_prunes),
    (
        "concurrent_queued_writes_all_commit",
        concurrent_queued_writes_all_commit,
    ),
    (
        "the_newest_write_of_an_alert_wins",
        the_newest_write_of_an_alert_wins,
    ),
    (
        "a_second_store_on_the_same_place_sees_the_writes",
        a_second_store_sees_the_writes,
    ),
];

#[test]
fn alert_state_on_sqlite() {
    on_sqlite(CASES);
}

#[test]
fn alert_state_on_postgresql() {
    on_postgres(CASES);
}

fn alert(name: &str, quote: &str) -> Alert {
    let mut ann = Annotations::new();
    ann.insert("summary".into(), format!("it's {quote}"));
    Alert {
        labels: Labels::from_pairs([("alertname", name), ("evil", quote)]),
        annotations: ann,
        starts_at: 1,
        ends_at: 2,
        generator_url: "http://x".into(),
        updated_at: 3,
        timeout: true,
        value: Some(1.5),
        source: Default::default(),
    }
}

const INJECTION: &str = "x'); DROP TABLE alerts; --";

fn silence() -> Silence {
    Silence {
        id: "s1".into(),
        matchers: medic_alert::matchers::parse_matchers(r#"a=~"x|y", b!="2""#).unwrap(),
        starts_at: 10,
        ends_at: 20,
        updated_at: 11,
        created_by: "me".into(),
        comment: INJECTION.into(),
        expire_on_resolve: true,
    }
}

fn everything_survives_a_reopen(place: &Place) {
    {
        let s = place.alerts();
        s.queue_alerts(
            vec![
                Arc::new(alert("A", INJECTION)),
                Arc::new(alert("B", "\"q\"")),
            ],
            vec![],
        )
        .wait()
        .unwrap();
        s.delete_alerts(&[alert("B", "\"q\"").fingerprint()])
            .unwrap();
        s.save_silences(&[silence()]).unwrap();
        s.save_nflog(&nflog::Entry {
            key: "k".into(),
            group_key: "g".into(),
            receiver: "r".into(),
            integration: "webhook[0]".into(),
            firing: vec![Fingerprint(u64::MAX), Fingerprint(1)],
            resolved: vec![],
            timestamp: 5,
            expires_at: 6,
        })
        .unwrap();
        s.save_ack(&Ack {
            group_key: "g".into(),
            author: "alice".into(),
            comment: "mine".into(),
            at: 1,
            expires_at: 9,
            firing: vec![Fingerprint(7)],
        })
        .unwrap();
    }
    let s = place.alerts();
    assert_eq!(s.load_alerts().unwrap(), vec![alert("A", INJECTION)]);
    let sil = s.load_silences().unwrap();
    assert_eq!(sil.len(), 1);
    assert_eq!(sil[0].comment, INJECTION);
    assert_eq!(
        medic_alert::matchers::format_matchers(&sil[0].matchers),
        r#"{a=~"x|y",b!="2"}"#
    );
    assert!(sil[0].expire_on_resolve);
    let n = s.load_nflog().unwrap();
    assert_eq!(n[0].firing, vec![Fingerprint(u64::MAX), Fingerprint(1)]);
    assert_eq!(s.load_acks().unwrap()[0].firing, vec![Fingerprint(7)]);
    // Deletions stick.
    s.delete_silences(&["s1".into()]).unwrap();
    s.delete_nflog(&["k".into()]).unwrap();
    s.delete_acks(&["g".into()]).unwrap();
    let s = place.alerts();
    assert!(s.load_silences().unwrap().is_empty());
    assert!(s.load_nflog().unwrap().is_empty());
    assert!(s.load_acks().unwrap().is_empty());
}

fn history_filters_and_prunes(place: &Place) {
    let s = place.alerts();
    let ev = |at: i64, kind: EventKind, name: &str, group: &str| Event {
        at,
        kind,
        fingerprint: Some(Fingerprint::of(&Labels::from_pairs([("alertname", name)]))),
        labels: Labels::from_pairs([("alertname", name)]),
        group_key: group.into(),
        receiver: String::new(),
        detail: String::new(),
        author: String::new(),
    };
    s.record(&[
        ev(1, EventKind::Firing, "A", ""),
        ev(2, EventKind::Notified, "A", "g1"),
        ev(3, EventKind::Firing, "B", ""),
        ev(4, EventKind::Resolved, "A", ""),
    ])
    .unwrap();
    let q = HistoryQuery {
        matchers: medic_alert::matchers::parse_matchers("alertname=A").unwrap(),
        ..Default::default()
    };
    let got: Vec<i64> = s.history(&q).unwrap().iter().map(|e| e.at).collect();
    assert_eq!(got, vec![4, 2, 1]);
    let q = HistoryQuery {
        group_key: Some("g1".into()),
        ..Default::default()
    };
    assert_eq!(s.history(&q).unwrap()[0].kind, EventKind::Notified);
    let q = HistoryQuery {
        fingerprint: Some(Fingerprint::of(&Labels::from_pairs([("alertname", "B")]))),
        ..Default::default()
    };
    assert_eq!(s.history(&q).unwrap().len(), 1);
    let q = HistoryQuery {
        since: Some(2),
        until: Some(3),
        ..Default::default()
    };
    assert_eq!(s.history(&q).unwrap().len(), 2);
    let q = HistoryQuery {
        since: Some(2),
        kinds: vec![EventKind::Firing],
        limit: 5,
        ..Default::default()
    };
    assert_eq!(s.history(&q).unwrap().len(), 1);
    let q = HistoryQuery {
        limit: 2,
        ..Default::default()
    };
    assert_eq!(s.history(&q).unwrap().len(), 2, "the limit holds");
    assert_eq!(s.prune_history(3).unwrap(), 2);
    assert_eq!(s.history(&HistoryQuery::default()).unwrap().len(), 2);
}

fn concurrent_queued_writes_all_commit(place: &Place) {
    let s = place.alerts();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let a = alert(&format!("T{t}-{i}"), "v");
                    let ev = Event {
                        at: i,
                        kind: EventKind::Firing,
                        fingerprint: Some(a.fingerprint()),
                        labels: a.labels.clone(),
                        group_key: String::new(),
                        receiver: String::new(),
                        detail: String::new(),
                        author: String::new(),
                    };
                    s.queue_alerts(vec![Arc::new(a)], vec![ev]).wait().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.load_alerts().unwrap().len(), 400);
    let q = HistoryQuery {
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(s.history(&q).unwrap().len(), 400);
}

fn the_newest_write_of_an_alert_wins(place: &Place) {
    let s = place.alerts();
    let mut a = alert("A", "v");
    // Queued without waiting in between: the order of queueing is the order of writing.
    let tickets: Vec<_> = (0..300)
        .map(|i| {
            a.ends_at = i;
            s.queue_alerts(vec![Arc::new(a.clone())], vec![])
        })
        .collect();
    for t in tickets {
        t.wait().unwrap();
    }
    assert_eq!(s.load_alerts().unwrap(), vec![a.clone()]);
    s.prune_history(0).unwrap();
    assert_eq!(place.alerts().load_alerts().unwrap(), vec![a]);
}

/// Two replicas on one PostgreSQL database (or two handles on one SQLite file) see each
/// other's writes.
fn a_second_store_sees_the_writes(place: &Place) {
    let (one, two) = (place.alerts(), place.alerts());
    one.save_silences(&[silence()]).unwrap();
    assert_eq!(two.load_silences().unwrap(), vec![silence()]);
    two.queue_alerts(vec![Arc::new(alert("A", "v"))], vec![])
        .wait()
        .unwrap();
    assert_eq!(one.load_alerts().unwrap(), vec![alert("A", "v")]);
}
