//! What only the PostgreSQL stores do: versioned migrations shared by replicas, a schema from
//! a newer medic refused, and connection errors that say where without the password.

use medic_alert::state::StateStore;
use medic_state::pg::{PgHealStore, PgState};
use medic_testkit::Postgres;

#[test]
fn migrations_run_once_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path(), 40);
    let url = pg.database("m");
    // Replicas starting together: each migration applies once (the advisory lock), and
    // every opener ends up on the same schema.
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                PgState::open(&url).map(drop).unwrap();
                PgHealStore::open(&url).map(drop).unwrap();
            })
        })
        .collect();
    for o in openers {
        o.join().unwrap();
    }
    let versions = pg
        .psql_on(
            "m",
            "postgres",
            "SELECT component || '=' || version FROM medic_schema ORDER BY component",
        )
        .unwrap();
    assert_eq!(versions, "alerts=1\nheal=1");
    pg.psql_on(
        "m",
        "postgres",
        "UPDATE medic_schema SET version = 7 WHERE component = 'heal'",
    )
    .unwrap();
    let e = PgHealStore::open(&url).err().unwrap().to_string();
    assert!(
        e.contains("the heal schema is at version 7, newer than this medic understands (1)"),
        "{e}"
    );
    assert!(
        PgState::open(&url).is_ok(),
        "the other component is unaffected"
    );
}

#[test]
fn connection_errors_name_the_server_but_never_the_password() {
    let port = medic_testkit::free_port();
    let url = format!("postgres://medic:s3cret-pw@127.0.0.1:{port}/state?connect_timeout=2");
    let e = PgState::open(&url).err().unwrap().to_string();
    assert!(
        e.contains(&format!("postgresql://medic@127.0.0.1:{port}/state")),
        "{e}"
    );
    assert!(e.contains("cannot connect"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    let e = PgState::open("postgres://medic:s3cret-pw@[bad")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("postgresql connection URL"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn a_store_reconnects_after_the_server_restarts_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path(), 40);
    let url = pg.database("r");
    let s = PgState::open(&url).unwrap();
    assert!(s.load_silences().unwrap().is_empty());
    // Every medic connection cut, as a failover of the database or an idle timeout would.
    pg.psql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'medic'",
    )
    .unwrap();
    // The call that finds the connection dead fails; the next reconnects.
    let first = s.load_silences();
    let second = s.load_silences();
    assert!(second.is_ok(), "first: {first:?}, second: {second:?}");
}

#[test]
fn the_lease_goes_to_one_holder_and_a_new_holder_gets_a_higher_token() {
    use medic_state::pg::PgLease;
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path(), 40);
    let url = pg.database("lease");
    let (a, b) = (PgLease::open(&url).unwrap(), PgLease::open(&url).unwrap());
    let t1 = a
        .acquire("leader", "a", "http://a:9099", 1_000)
        .unwrap()
        .expect("free: a takes it");
    assert_eq!(
        b.acquire("leader", "b", "http://b:9099", 1_000).unwrap(),
        None,
        "a holds it"
    );
    assert_eq!(
        a.acquire("leader", "a", "http://a:9099", 1_000).unwrap(),
        Some(t1),
        "renewing keeps the token"
    );
    assert!(a.check("leader", "a", t1).unwrap());
    // a stops renewing; once the lease expires b takes it, with a higher token, and a's
    // token no longer passes the fence.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let t2 = b
        .acquire("leader", "b", "http://b:9099", 1_000)
        .unwrap()
        .expect("expired: b takes it");
    assert!(t2 > t1);
    assert!(!a.check("leader", "a", t1).unwrap());
    assert!(b.check("leader", "b", t2).unwrap());
    assert_eq!(
        a.acquire("leader", "a", "http://a:9099", 1_000).unwrap(),
        None
    );
    // A clean hand-over: b releases, a takes it at once.
    b.release("leader", "b", t2).unwrap();
    let t3 = a
        .acquire("leader", "a", "http://a:9099", 1_000)
        .unwrap()
        .expect("released");
    assert!(t3 > t2);
    let h = a.holder("leader").unwrap().expect("a holder");
    assert_eq!(
        (h.replica.as_str(), h.token, h.url.as_str()),
        ("a", t3, "http://a:9099")
    );
    assert!(h.live);
    a.release("leader", "a", t3).unwrap();
    assert!(
        !b.holder("leader").unwrap().unwrap().live,
        "released: expired"
    );
}

#[test]
fn tls_to_postgresql_follows_libpqs_sslmode_and_sslrootcert() {
    use medic_state::pg::PgLease;
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    medic_testkit::make_certs(&certs);
    let pg = Postgres::start(&dir.path().join("server"), 40);
    pg.require_tls(&certs.join("server.crt"), &certs.join("server.key"));
    let url = pg.database("tls");
    let (ca, other) = (certs.join("ca.crt"), certs.join("other-ca.crt"));
    let open = |q: String| PgLease::open(&format!("{url}?{q}")).map(|_| ());
    // The server takes TLS only: without it medic is refused; libpq's default (prefer),
    // `require` and a checked chain and name get in.
    let e = open("sslmode=disable".into()).unwrap_err();
    assert!(e.contains("no pg_hba.conf entry"), "{e}");
    open(String::new()).unwrap();
    open("sslmode=require".into()).unwrap();
    open(format!("sslmode=verify-full&sslrootcert={}", ca.display())).unwrap();
    // A CA that did not sign the server's certificate: refused once the chain is checked.
    let e = open(format!("sslmode=verify-ca&sslrootcert={}", other.display())).unwrap_err();
    assert!(e.contains("certificate"), "{e}");
    assert!(!e.contains("password"), "{e}");
    let e = open(format!("sslmode=require&sslrootcert={}", other.display())).unwrap_err();
    assert!(
        e.contains("certificate"),
        "require checks the chain when given a root: {e}"
    );
    let e = open("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem".into()).unwrap_err();
    assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
    // A certificate for another name: verify-full refuses it, verify-ca takes it.
    pg.require_tls(&certs.join("elsewhere.crt"), &certs.join("elsewhere.key"));
    let e = open(format!("sslmode=verify-full&sslrootcert={}", ca.display())).unwrap_err();
    assert!(e.contains("certificate"), "{e}");
    open(format!("sslmode=verify-ca&sslrootcert={}", ca.display())).unwrap();
}
