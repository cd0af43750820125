//! Where a case's stores live: a fresh SQLite file, or a fresh database on a PostgreSQL
//! cluster the test started. `open` twice gives a reopened store on the same state.

use std::path::PathBuf;
use std::sync::Arc;

use medic_alert::state::StateStore;
use medic_heal::journal::HealStore;
use medic_state::pg::{PgAudit, PgHealStore, PgIncidents, PgReports, PgState, PgTokens};
use medic_state::{
    AuditStore, IncidentStore, ReportStore, SqliteAudit, SqliteHealStore, SqliteIncidents,
    SqliteReports, SqliteState, SqliteTokens, TokenStore,
};
use medic_testkit::Postgres;

pub enum Place {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Place {
    pub fn alerts(&self) -> Arc<dyn StateStore> {
        match self {
            Place::Sqlite(dir) => SqliteState::open(&dir.join("alerts.db")).unwrap(),
            Place::Postgres(url) => PgState::open(url).unwrap(),
        }
    }

    pub fn heal(&self) -> Arc<dyn HealStore> {
        match self {
            Place::Sqlite(dir) => SqliteHealStore::open(&dir.join("heal.db")).unwrap(),
            Place::Postgres(url) => PgHealStore::open(url).unwrap(),
        }
    }

    pub fn audit(&self) -> Box<dyn AuditStore> {
        match self {
            Place::Sqlite(dir) => Box::new(SqliteAudit::open(&dir.join("audit.db")).unwrap()),
            Place::Postgres(url) => Box::new(PgAudit::open(url).unwrap()),
        }
    }

    pub fn tokens(&self) -> Box<dyn TokenStore> {
        match self {
            Place::Sqlite(dir) => Box::new(SqliteTokens::open(&dir.join("auth.db")).unwrap()),
            Place::Postgres(url) => Box::new(PgTokens::open(url).unwrap()),
        }
    }

    pub fn reports(&self) -> Box<dyn ReportStore> {
        match self {
            Place::Sqlite(dir) => Box::new(SqliteReports::open(&dir.join("reports.db")).unwrap()),
            Place::Postgres(url) => Box::new(PgReports::open(url).unwrap()),
        }
    }

    pub fn incidents(&self) -> Box<dyn IncidentStore> {
        match self {
            Place::Sqlite(dir) => {
                Box::new(SqliteIncidents::open(&dir.join("incidents.db")).unwrap())
            }
            Place::Postgres(url) => Box::new(PgIncidents::open(url).unwrap()),
        }
    }

    /// Runs `sql` directly on the database behind the store whose SQLite file is `file`, as
    /// someone with access to the database (not through medic) would.
    pub fn tamper(&self, file: &str, sql: &str) {
        match self {
            Place::Sqlite(dir) => {
                rusqlite::Connection::open(dir.join(file))
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            Place::Postgres(url) => {
                postgres::Client::connect(url, postgres::NoTls)
                    .unwrap()
                    .batch_execute(sql)
                    .unwrap();
            }
        }
    }
}

/// A suite's cases, by name.
pub type Case = (&'static str, fn(&Place));

/// Runs every case on a fresh SQLite directory each.
pub fn on_sqlite(cases: &[Case]) {
    for (name, case) in cases {
        let dir = tempfile::tempdir().unwrap();
        eprintln!("sqlite: {name}");
        case(&Place::Sqlite(dir.path().to_path_buf()));
    }
}

/// Runs every case on a fresh database each, on one PostgreSQL cluster.
pub fn on_postgres(cases: &[Case]) {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path(), 40);
    for (i, (name, case)) in cases.iter().enumerate() {
        eprintln!("postgresql: {name}");
        case(&Place::Postgres(pg.database(&format!("case{i}"))));
    }
}
