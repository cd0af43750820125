//! Incidents in SQLite: one row per incident holding its whole record (status, groups,
//! timeline, figures' inputs) as JSON, written before the change is acknowledged, with the
//! status and opening time beside it for listing. Every save of a batch is one transaction:
//! after a crash each incident is as it was before or after the change, never half.

use std::path::Path;

use crate::IncidentStore;
use std::sync::{Mutex, MutexGuard};

use medic_alert::incident::Incident;
use rusqlite::{params, Connection};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents (status, opened_at);
CREATE TABLE IF NOT EXISTS incident_reports (
    id INTEGER PRIMARY KEY,
    generated_at INTEGER NOT NULL,
    markdown TEXT NOT NULL,
    html TEXT NOT NULL
);
";

/// Why the incident store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IncidentStoreError {
    #[error("incident store {path}: {message}")]
    Storage { path: String, message: String },
    #[error(
        "incident store {path}: incident {id} cannot be read ({message}); the row is left as it is"
    )]
    Damaged {
        path: String,
        id: i64,
        message: String,
    },
}

/// A post-incident report as generated, both renderings.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub id: u64,
    pub generated_at: i64,
    pub markdown: String,
    pub html: String,
}

/// The incident table (in `incidents.db`, or any database file).
pub struct SqliteIncidents {
    conn: Mutex<Connection>,
    path: String,
}

impl SqliteIncidents {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, IncidentStoreError> {
        let shown = path.display().to_string();
        // Acknowledged means on disk, as for the heal journal.
        let conn = crate::open_sqlite(path, SCHEMA, true).map_err(|message| {
            IncidentStoreError::Storage {
                path: shown.clone(),
                message,
            }
        })?;
        Ok(SqliteIncidents {
            conn: Mutex::new(conn),
            path: shown,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn storage(&self, e: impl std::fmt::Display) -> IncidentStoreError {
        IncidentStoreError::Storage {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

impl IncidentStore for SqliteIncidents {
    /// Writes `incidents` (new or changed) in one transaction.
    fn save(&self, incidents: &[&Incident]) -> Result<(), IncidentStoreError> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(|e| self.storage(e))?;
        for i in incidents {
            let record = serde_json::to_string(i).map_err(|e| self.storage(e))?;
            tx.execute(
                "INSERT INTO incidents (id, status, opened_at, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, record = excluded.record",
                params![i.id as i64, i.status.to_string(), i.opened_at, record],
            )
            .map_err(|e| self.storage(e))?;
        }
        tx.commit().map_err(|e| self.storage(e))
    }

    /// Deletes incidents (and their reports) in one transaction.
    fn delete(&self, ids: &[u64]) -> Result<(), IncidentStoreError> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(|e| self.storage(e))?;
        for id in ids {
            for table in ["incidents", "incident_reports"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE id = ?1"),
                    params![*id as i64],
                )
                .map_err(|e| self.storage(e))?;
            }
        }
        tx.commit().map_err(|e| self.storage(e))
    }

    /// Stores incident `id`'s report (replacing the one before).
    fn save_report(&self, r: &StoredReport) -> Result<(), IncidentStoreError> {
        self.conn()
            .execute(
                "INSERT INTO incident_reports (id, generated_at, markdown, html) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET generated_at = excluded.generated_at,
                   markdown = excluded.markdown, html = excluded.html",
                params![r.id as i64, r.generated_at, r.markdown, r.html],
            )
            .map(|_| ())
            .map_err(|e| self.storage(e))
    }

    /// Incident `id`'s stored report, if one was generated.
    fn report(&self, id: u64) -> Result<Option<StoredReport>, IncidentStoreError> {
        let c = self.conn();
        let mut st = c
            .prepare("SELECT generated_at, markdown, html FROM incident_reports WHERE id = ?1")
            .map_err(|e| self.storage(e))?;
        let mut rows = st
            .query_map(params![id as i64], |r| {
                Ok(StoredReport {
                    id,
                    generated_at: r.get(0)?,
                    markdown: r.get(1)?,
                    html: r.get(2)?,
                })
            })
            .map_err(|e| self.storage(e))?;
        rows.next().transpose().map_err(|e| self.storage(e))
    }

    /// Every incident, oldest first. A row that does not decode is an error naming it (it is
    /// not dropped: the store is left for a person to look at).
    fn load_all(&self) -> Result<Vec<Incident>, IncidentStoreError> {
        let c = self.conn();
        let mut st = c
            .prepare("SELECT id, record FROM incidents ORDER BY id")
            .map_err(|e| self.storage(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.storage(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, record) = row.map_err(|e| self.storage(e))?;
            let inc: Incident =
                serde_json::from_str(&record).map_err(|e| IncidentStoreError::Damaged {
                    path: self.path.clone(),
                    id,
                    message: e.to_string(),
                })?;
            out.push(inc);
        }
        Ok(out)
    }
}
