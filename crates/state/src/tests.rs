//! What only the SQLite state store does: its append-only alert log and its schema check.
//! The cases every store passes are in `tests/it`, on SQLite and PostgreSQL.

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
