//! The heal engine's journal in SQLite ([`medic_heal::HealStore`]): executions as JSON
//! documents with their searchable fields in columns, pauses, outcomes and trust changes. Its
//! own file (`heal.db`), so repair journaling never waits on alert writes.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use medic_heal::journal::{
    Execution, ExecutionQuery, HealStore, Outcome, Pause, StoreError, TrustChange,
};
use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    playbook TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    final INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_created ON executions(created_at);
CREATE INDEX IF NOT EXISTS executions_open ON executions(final) WHERE final = 0;
CREATE TABLE IF NOT EXISTS pauses (scope TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trust_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, doc TEXT NOT NULL);
";

/// The journal in SQLite.
pub struct SqliteHealStore {
    conn: Mutex<Connection>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn from_doc<T: serde::de::DeserializeOwned>(doc: String) -> rusqlite::Result<T> {
    serde_json::from_str(&doc).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl SqliteHealStore {
    /// Opens (creating) the journal at `path`.
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        }
        let conn =
            Connection::open(path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        // A step written is a step a restarted medic will see, even after a power cut.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        Ok(Arc::new(SqliteHealStore {
            conn: Mutex::new(conn),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HealStore for SqliteHealStore {
    fn put_execution(&self, e: &Execution) -> Result<(), StoreError> {
        let doc = serde_json::to_string(e).map_err(err)?;
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO executions (id, playbook, target, status, final, created_at, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.id, e.playbook, e.target, e.status.as_str(), e.status.is_final(), e.created_at, doc],
            )
            .map_err(err)?;
        Ok(())
    }

    fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        let doc: Option<String> = self
            .lock()
            .query_row(
                "SELECT doc FROM executions WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        doc.map(|d| serde_json::from_str(&d).map_err(err))
            .transpose()
    }

    fn executions(&self, q: &ExecutionQuery) -> Result<Vec<Execution>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT doc FROM executions
                 WHERE (?1 IS NULL OR playbook = ?1) AND (?2 IS NULL OR target = ?2)
                   AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR created_at >= ?4)
                   AND (?5 IS NULL OR created_at <= ?5)
                 ORDER BY created_at DESC, id DESC LIMIT ?6",
            )
            .map_err(err)?;
        let limit = if q.limit == 0 { -1 } else { q.limit as i64 };
        let rows = stmt
            .query_map(
                params![
                    q.playbook,
                    q.target,
                    q.status.map(|s| s.as_str()),
                    q.since,
                    q.until,
                    limit
                ],
                |r| from_doc::<Execution>(r.get(0)?),
            )
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn unfinished(&self) -> Result<Vec<Execution>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT doc FROM executions WHERE final = 0 ORDER BY id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| from_doc::<Execution>(r.get(0)?))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn put_pause(&self, p: &Pause) -> Result<(), StoreError> {
        let doc = serde_json::to_string(p).map_err(err)?;
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO pauses (scope, doc) VALUES (?1, ?2)",
                params![p.scope, doc],
            )
            .map_err(err)?;
        Ok(())
    }

    fn delete_pause(&self, scope: &str) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM pauses WHERE scope = ?1", params![scope])
            .map_err(err)?;
        Ok(())
    }

    fn pauses(&self) -> Result<Vec<Pause>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT doc FROM pauses ORDER BY scope")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| from_doc::<Pause>(r.get(0)?))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn put_outcome(&self, o: &Outcome) -> Result<(), StoreError> {
        let doc = serde_json::to_string(o).map_err(err)?;
        self.lock()
            .execute(
                "INSERT INTO outcomes (at, doc) VALUES (?1, ?2)",
                params![o.at, doc],
            )
            .map_err(err)?;
        Ok(())
    }

    fn outcomes(&self) -> Result<Vec<Outcome>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT doc FROM outcomes ORDER BY id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| from_doc::<Outcome>(r.get(0)?))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn put_trust_change(&self, c: &TrustChange) -> Result<(), StoreError> {
        let doc = serde_json::to_string(c).map_err(err)?;
        self.lock()
            .execute(
                "INSERT INTO trust_changes (at, doc) VALUES (?1, ?2)",
                params![c.at, doc],
            )
            .map_err(err)?;
        Ok(())
    }

    fn trust_changes(&self) -> Result<Vec<TrustChange>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT doc FROM trust_changes ORDER BY id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| from_doc::<TrustChange>(r.get(0)?))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn prune(&self, before: i64) -> Result<usize, StoreError> {
        let conn = self.lock();
        let n = conn
            .execute(
                "DELETE FROM executions WHERE final = 1 AND created_at < ?1",
                params![before],
            )
            .map_err(err)?;
        conn.execute("DELETE FROM outcomes WHERE at < ?1", params![before])
            .map_err(err)?;
        Ok(n)
    }
}
