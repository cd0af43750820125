//! Tokens, reports and incidents: what is saved comes back, names stay unique among live
//! tokens, a damaged incident row is named rather than dropped.

use medic_alert::incident::{Action, Book, GroupRef, Incident, Level, Policy, PolicySpec};
use medic_model::Labels;
use medic_state::{Report, StoredReport, StoredToken, TokenError};

use crate::backends::{on_postgres, on_sqlite, Case, Place};

const CASES: &[Case] = &[
    (
        "token_names_are_unique_among_live_tokens",
        token_names_are_unique,
    ),
    ("reports_and_runs_round_trip", reports_and_runs_round_trip),
    (
        "incidents_come_back_as_they_were_saved",
        incidents_come_back,
    ),
    (
        "a_damaged_incident_row_is_named_not_dropped",
        a_damaged_incident_is_named,
    ),
];

#[test]
fn records_on_sqlite() {
    on_sqlite(CASES);
}

#[test]
fn records_on_postgresql() {
    on_postgres(CASES);
}

fn token(name: &str, sha: &str) -> StoredToken {
    StoredToken {
        id: format!("id-{name}-{sha}"),
        name: name.into(),
        sha256: sha.into(),
        role: "ingest".into(),
        scope: String::new(),
        created_by: "alice".into(),
        created_at: 1,
        expires_at: Some(100),
        revoked_at: None,
        revoked_by: None,
    }
}

fn token_names_are_unique(place: &Place) {
    let s = place.tokens();
    s.insert(&token("prom", "aa")).unwrap();
    assert!(matches!(
        s.insert(&token("prom", "bb")),
        Err(TokenError::NameTaken(_))
    ));
    let r = s.revoke("prom", "bob", 50).unwrap();
    assert_eq!(r.revoked_by.as_deref(), Some("bob"));
    assert_eq!(r.revoked_at, Some(50));
    assert!(!r.live(10));
    assert!(matches!(
        s.revoke("prom", "bob", 51),
        Err(TokenError::NotFound(_))
    ));
    s.insert(&token("prom", "bb")).unwrap();
    drop(s);
    let s = place.tokens();
    let all = s.list().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].sha256, "aa");
    assert!(all[1].live(99));
    assert!(!all[1].live(100), "expired at expires_at");
    assert_eq!(s.revoke("id-prom-bb", "carol", 60).unwrap().name, "prom");
}

fn reports_and_runs_round_trip(place: &Place) {
    let s = place.reports();
    let r = Report {
        id: 0,
        name: "monthly".into(),
        period: "2026-11".into(),
        start_ms: 1,
        end_ms: 2,
        generated_at: 3,
        figures: "{}".into(),
        markdown: "# m".into(),
        html: "<h1>m</h1>".into(),
    };
    let a = s.save(&r).unwrap();
    let b = s.save(&r).unwrap();
    assert!(b > a);
    let listed = s.list(10).unwrap();
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), [b, a]);
    assert!(listed[0].html.is_empty(), "bodies are not listed");
    assert_eq!(s.list(1).unwrap().len(), 1);
    assert_eq!(s.get(a).unwrap().unwrap().html, "<h1>m</h1>");
    assert_eq!(s.get(99).unwrap(), None);
    assert_eq!(s.last_run("monthly").unwrap(), None);
    s.set_last_run("monthly", 10).unwrap();
    s.set_last_run("monthly", 20).unwrap();
    assert_eq!(place.reports().last_run("monthly").unwrap(), Some(20));
}

fn book_with_history() -> Book {
    let mut b = Book::new(Policy::new(&PolicySpec::default()).unwrap());
    let l = Labels::from_pairs([("service", "checkout"), ("severity", "critical")]);
    let g = GroupRef {
        key: "{}:{alertname=\"ErrorRate\"}",
        labels: &l,
        summary: "ErrorRate",
        since: 1_000,
    };
    b.group_firing(1_000, &g);
    b.act(
        2_000,
        1,
        "alice",
        Action::Comment("looking — \"quotes\" and ü; DROP TABLE incidents".into()),
    )
    .unwrap();
    b.act(3_000, 1, "alice", Action::Acknowledge).unwrap();
    b.tick(10_000_000);
    b
}

fn incidents_come_back(place: &Place) {
    let b = book_with_history();
    let all: Vec<&Incident> = b.all().collect();
    {
        let s = place.incidents();
        s.save(&all).unwrap();
        // Saved again after a change: one row, the new record.
        s.save(&all).unwrap();
    }
    let s = place.incidents();
    let back = s.load_all().unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(&back[0], all[0]);
    // A book rebuilt from the store goes on numbering after the highest id.
    let mut b = Book::with_incidents(Policy::new(&PolicySpec::default()).unwrap(), back);
    let (id, _) = b
        .open_by_hand(
            20_000_000,
            "bob",
            "payments slow",
            Level::P2,
            vec![("service".into(), "payments".into())],
        )
        .unwrap();
    assert_eq!(id, 2);
    // Reports are stored beside it and replaced when made again.
    let r = |at, md: &str| StoredReport {
        id: 2,
        generated_at: at,
        markdown: md.into(),
        html: format!("<p>{md}</p>"),
    };
    assert_eq!(s.report(2).unwrap(), None);
    s.save_report(&r(1, "first")).unwrap();
    s.save_report(&r(2, "second")).unwrap();
    assert_eq!(s.report(2).unwrap(), Some(r(2, "second")));
    s.delete(&[2]).unwrap();
    assert_eq!(s.report(2).unwrap(), None);
    assert_eq!(s.load_all().unwrap().len(), 1);
}

fn a_damaged_incident_is_named(place: &Place) {
    let s = place.incidents();
    place.tamper(
        "incidents.db",
        "INSERT INTO incidents (id, status, opened_at, record) VALUES (7, 'triggered', 0, '{not json')",
    );
    let e = s.load_all().unwrap_err().to_string();
    assert!(e.contains("incident 7 cannot be read"), "{e}");
}
