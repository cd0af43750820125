//! The heal journal in PostgreSQL ([`HealStore`]): the SQLite store's tables, executions as
//! JSON documents with their searchable fields in columns. Each write is committed (and so
//! durable, with the server's default `synchronous_commit`) before the call returns.

use std::sync::Arc;

use medic_heal::journal::{
    Execution, ExecutionQuery, HealStore, Outcome, Pause, StoreError, TrustChange,
};
use postgres::Client;

use super::PgConn;

const MIGRATIONS: &[&str] = &["
CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    playbook TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    final BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX executions_created ON executions(created_at);
CREATE INDEX executions_open ON executions(final) WHERE NOT final;
CREATE TABLE pauses (scope TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE outcomes (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE trust_changes (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, doc TEXT NOT NULL);
"];

/// The heal journal in PostgreSQL.
pub struct PgHealStore {
    conn: PgConn,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn docs<T: serde::de::DeserializeOwned>(rows: Vec<String>) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|d| serde_json::from_str(d).map_err(err))
        .collect()
}

impl PgHealStore {
    /// Connects to `url` and brings the schema up to date.
    pub fn open(url: &str) -> Result<Arc<Self>, StoreError> {
        let conn = PgConn::open(url, "heal", MIGRATIONS).map_err(StoreError)?;
        Ok(Arc::new(PgHealStore { conn }))
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.conn.run(f).map_err(StoreError)
    }

    /// The `doc` column of every row `sql` returns, in its order.
    fn docs(&self, sql: &'static str) -> Result<Vec<String>, StoreError> {
        self.run(move |c| {
            Ok(c.query(sql, &[])?
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect())
        })
    }
}

impl HealStore for PgHealStore {
    fn put_execution(&self, e: &Execution) -> Result<(), StoreError> {
        let doc = serde_json::to_string(e).map_err(err)?;
        let (id, playbook, target) = (e.id.clone(), e.playbook.clone(), e.target.clone());
        let (status, fin, created) = (e.status.as_str(), e.status.is_final(), e.created_at);
        self.run(move |c| {
            c.execute(
                "INSERT INTO executions (id, playbook, target, status, final, created_at, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET playbook = EXCLUDED.playbook,
                     target = EXCLUDED.target, status = EXCLUDED.status, final = EXCLUDED.final,
                     created_at = EXCLUDED.created_at, doc = EXCLUDED.doc",
                &[&id, &playbook, &target, &status, &fin, &created, &doc],
            )
            .map(|_| ())
        })
    }

    fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        let id = id.to_string();
        let doc = self.run(move |c| {
            Ok(
                c.query_opt("SELECT doc FROM executions WHERE id = $1", &[&id])?
                    .map(|r| r.get::<_, String>(0)),
            )
        })?;
        doc.map(|d| serde_json::from_str(&d).map_err(err))
            .transpose()
    }

    fn executions(&self, q: &ExecutionQuery) -> Result<Vec<Execution>, StoreError> {
        let (playbook, target) = (q.playbook.clone(), q.target.clone());
        let status = q.status.map(|s| s.as_str().to_string());
        let (since, until) = (q.since, q.until);
        // LIMIT NULL is no limit.
        let limit = (q.limit != 0).then_some(q.limit as i64);
        let rows = self.run(move |c| {
            Ok(c.query(
                "SELECT doc FROM executions
                 WHERE ($1::TEXT IS NULL OR playbook = $1) AND ($2::TEXT IS NULL OR target = $2)
                   AND ($3::TEXT IS NULL OR status = $3) AND ($4::BIGINT IS NULL OR created_at >= $4)
                   AND ($5::BIGINT IS NULL OR created_at <= $5)
                 ORDER BY created_at DESC, id DESC LIMIT $6",
                &[&playbook, &target, &status, &since, &until, &limit],
            )?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect())
        })?;
        docs(rows)
    }

    fn unfinished(&self) -> Result<Vec<Execution>, StoreError> {
        docs(self.docs("SELECT doc FROM executions WHERE NOT final ORDER BY id")?)
    }

    fn put_pause(&self, p: &Pause) -> Result<(), StoreError> {
        let doc = serde_json::to_string(p).map_err(err)?;
        let scope = p.scope.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO pauses (scope, doc) VALUES ($1, $2)
                 ON CONFLICT (scope) DO UPDATE SET doc = EXCLUDED.doc",
                &[&scope, &doc],
            )
            .map(|_| ())
        })
    }

    fn delete_pause(&self, scope: &str) -> Result<(), StoreError> {
        let scope = scope.to_string();
        self.run(move |c| {
            c.execute("DELETE FROM pauses WHERE scope = $1", &[&scope])
                .map(|_| ())
        })
    }

    fn pauses(&self) -> Result<Vec<Pause>, StoreError> {
        docs(self.docs("SELECT doc FROM pauses ORDER BY scope")?)
    }

    fn put_outcome(&self, o: &Outcome) -> Result<(), StoreError> {
        let doc = serde_json::to_string(o).map_err(err)?;
        let at = o.at;
        self.run(move |c| {
            c.execute(
                "INSERT INTO outcomes (at, doc) VALUES ($1, $2)",
                &[&at, &doc],
            )
            .map(|_| ())
        })
    }

    fn outcomes(&self) -> Result<Vec<Outcome>, StoreError> {
        docs(self.docs("SELECT doc FROM outcomes ORDER BY id")?)
    }

    fn put_trust_change(&self, ch: &TrustChange) -> Result<(), StoreError> {
        let doc = serde_json::to_string(ch).map_err(err)?;
        let at = ch.at;
        self.run(move |c| {
            c.execute(
                "INSERT INTO trust_changes (at, doc) VALUES ($1, $2)",
                &[&at, &doc],
            )
            .map(|_| ())
        })
    }

    fn trust_changes(&self) -> Result<Vec<TrustChange>, StoreError> {
        docs(self.docs("SELECT doc FROM trust_changes ORDER BY id")?)
    }

    fn prune(&self, before: i64) -> Result<usize, StoreError> {
        self.run(move |c| {
            let mut tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM executions WHERE final AND created_at < $1",
                &[&before],
            )?;
            tx.execute("DELETE FROM outcomes WHERE at < $1", &[&before])?;
            tx.commit()?;
            Ok(n as usize)
        })
    }
}
