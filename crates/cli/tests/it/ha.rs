//! medic with its state on a real PostgreSQL (started by the test): alerts, silences, heal
//! pauses, history and the audit log written by one medic survive its `kill -9` and are there
//! for a second medic, with its own data directory, on the same database. The password in the
//! URL is never shown.

use serde_json::{json, Value};

use crate::support::*;

const AM: &str = "route:\n  receiver: none\nreceivers:\n- name: none\n";

fn medic_on(pg_url_file: &std::path::Path, dir: &std::path::Path, name: &str) -> Medic {
    std::fs::write(dir.join("alertmanager.yml"), AM).unwrap();
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs: []\nalerting:\n  config_file: alertmanager.yml\nstate:\n  backend: postgresql\n  postgresql:\n    url_file: {}\n",
            pg_url_file.display()
        ),
    )
    .unwrap();
    Medic::start(&dir.join(name), Some(&cfg), &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn state_on_postgresql_survives_kill_9_and_a_second_medic_shares_it() {
    let dir = tempfile::tempdir().unwrap();
    let pg = medic_testkit::Postgres::start(dir.path(), 40);
    let db = pg.database("medic");
    // Trust authentication ignores the password; it is there to be kept secret.
    let url = db.replace("postgres@", "postgres:pg-s3cret@");
    let url_file = dir.path().join("pg-url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();
    let c = client();

    let one = medic_on(&url_file, dir.path(), "one");
    let now = now_ms();
    let r = c
        .post(one.url("/api/v2/alerts"))
        .json(
            &json!([{"labels": {"alertname": "DiskFull", "instance": "db-1"},
                        "annotations": {"summary": "it's full"}}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(one.url("/api/v2/silences"))
        .json(&json!({
            "matchers": [{"name": "instance", "value": "db-1", "isRegex": false}],
            "startsAt": medic_model::format_rfc3339(now),
            "endsAt": medic_model::format_rfc3339(now + 3_600_000),
            "createdBy": "ops", "comment": "maintenance",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(one.url("/api/v1/medic/heal/pause"))
        .json(&json!({"scope": "target:db-1", "reason": "migration", "by": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let shown = get_json(&c, &one.url("/api/v1/status/config")).await;
    assert!(
        !shown.to_string().contains("pg-s3cret"),
        "the config API masks nothing it should: {shown}"
    );
    let log = one.stderr();
    one.kill9();
    assert!(!log.contains("pg-s3cret"), "{log}");

    // A second medic, its own data directory, the same database.
    let two = medic_on(&url_file, dir.path(), "two");
    let alerts = get_json(&c, &two.url("/api/v2/alerts")).await;
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["alertname"], "DiskFull");
    assert_eq!(alerts[0]["annotations"]["summary"], "it's full");
    assert_eq!(alerts[0]["status"]["state"], "suppressed", "{alerts:?}");
    let silences: Value = get_json(&c, &two.url("/api/v2/silences")).await;
    assert_eq!(silences[0]["comment"], "maintenance");
    let pauses = get_json(&c, &two.url("/api/v1/medic/heal/pauses")).await;
    assert_eq!(pauses["data"][0]["scope"], "target:db-1", "{pauses}");
    // The tables are PostgreSQL's, under medic's versioned schema.
    let versions = pg
        .psql_on(
            "medic",
            "postgres",
            "SELECT component || '=' || version FROM medic_schema ORDER BY 1",
        )
        .unwrap();
    assert_eq!(
        versions,
        "alerts=1\naudit=1\nheal=1\nincidents=1\nreports=1\ntokens=1"
    );
    let history = get_json(&c, &two.url("/api/v1/medic/alerts/history")).await;
    assert!(
        history.to_string().contains("DiskFull"),
        "history is shared: {history}"
    );
    // The audit log too: the first medic's writes, one intact chain.
    let audit = get_json(&c, &two.url("/api/v1/medic/audit?action=POST")).await;
    assert!(
        audit.to_string().contains("/api/v2/silences"),
        "the first medic's writes are audited where the second reads: {audit}"
    );
    let verify = get_json(&c, &two.url("/api/v1/medic/audit/verify")).await;
    assert_eq!(verify["data"]["intact"], true, "{verify}");
    // Nothing of the state is left in the data directories.
    for name in ["one", "two"] {
        let dbs: Vec<String> = std::fs::read_dir(dir.path().join(name))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".db"))
            .collect();
        assert!(dbs.is_empty(), "{name}: {dbs:?}");
    }
}

#[test]
fn a_postgresql_backend_without_a_database_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, "state:\n  backend: postgresql\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("state.postgresql is missing"), "{err}");
}
