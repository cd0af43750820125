//! Where a case's stores live: a fresh SQLite file, or a fresh database on a PostgreSQL
//! cluster the test started. `open` twice gives a reopened store on the same state.

use std::path::PathBuf;
use std::sync::Arc;

use medic_alert::state::StateStore;
use medic_heal::journal::HealStore;
use medic_state::pg::{PgHealStore, PgState};
use medic_state::{SqliteHealStore, SqliteState};
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
