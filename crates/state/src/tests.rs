//! The SQLite state store: what is written survives a reopen, in full.

use super::*;
use medic_alert::Annotations;

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

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let injection = "x'); DROP TABLE alerts; --";
    {
        let s = SqliteState::open(&path).unwrap();
        s.queue_alerts(
            vec![
                Arc::new(alert("A", injection)),
                Arc::new(alert("B", "\"q\"")),
            ],
            vec![],
        )
        .wait()
        .unwrap();
        s.delete_alerts(&[alert("B", "\"q\"").fingerprint()])
            .unwrap();
        s.save_silences(&[Silence {
            id: "s1".into(),
            matchers: medic_alert::matchers::parse_matchers(r#"a=~"x|y", b!="2""#).unwrap(),
            starts_at: 10,
            ends_at: 20,
            updated_at: 11,
            created_by: "me".into(),
            comment: injection.into(),
            expire_on_resolve: true,
        }])
        .unwrap();
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
    let s = SqliteState::open(&path).unwrap();
    assert_eq!(s.load_alerts().unwrap(), vec![alert("A", injection)]);
    let sil = s.load_silences().unwrap();
    assert_eq!(sil.len(), 1);
    assert_eq!(sil[0].comment, injection);
    assert_eq!(
        medic_alert::matchers::format_matchers(&sil[0].matchers),
        r#"{a=~"x|y",b!="2"}"#
    );
    assert!(sil[0].expire_on_resolve);
    let n = s.load_nflog().unwrap();
    assert_eq!(n[0].firing, vec![Fingerprint(u64::MAX), Fingerprint(1)]);
    assert_eq!(s.load_acks().unwrap()[0].firing, vec![Fingerprint(7)]);
}

#[test]
fn history_filters_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteState::open(&dir.path().join("h.db")).unwrap();
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
        since: Some(2),
        kinds: vec![EventKind::Firing],
        limit: 5,
        ..Default::default()
    };
    assert_eq!(s.history(&q).unwrap().len(), 1);
    assert_eq!(s.prune_history(3).unwrap(), 2);
    assert_eq!(s.history(&HistoryQuery::default()).unwrap().len(), 2);
}

#[test]
fn concurrent_queued_writes_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteState::open(&dir.path().join("g.db")).unwrap();
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

#[test]
fn the_alert_log_keeps_the_newest_row_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let s = SqliteState::open(&path).unwrap();
    let mut a = alert("A", "v");
    for i in 0..1500 {
        a.ends_at = i;
        s.queue_alerts(
            vec![Arc::new(a.clone()), Arc::new(alert("Gone", "v"))],
            vec![],
        )
        .wait()
        .unwrap();
    }
    s.delete_alerts(&[alert("Gone", "v").fingerprint()])
        .unwrap();
    assert_eq!(s.load_alerts().unwrap(), vec![a.clone()]);
    s.prune_history(0).unwrap();
    let rows: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM alert_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "superseded and deleted rows are compacted away");
    drop(s);
    assert_eq!(
        SqliteState::open(&path).unwrap().load_alerts().unwrap(),
        vec![a]
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteState::open(&path).unwrap());
    let c = Connection::open(&path).unwrap();
    c.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(c);
    let e = SqliteState::open(&path).err().unwrap().to_string();
    assert!(e.contains("newer"), "{e}");
}
