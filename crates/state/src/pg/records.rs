//! Tokens, reports and incidents in PostgreSQL: the SQLite stores' tables and behaviour.

use medic_alert::incident::Incident;
use postgres::error::SqlState;
use postgres::Row;

use super::{describe, PgConn};
use crate::{
    IncidentStore, IncidentStoreError, Report, ReportStore, ReportStoreError, StoredReport,
    StoredToken, TokenError, TokenStore,
};

const TOKENS: &[&str] = &["
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    revoked_by TEXT
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
"];

const REPORTS: &[&str] = &["
CREATE TABLE reports (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    period TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    generated_at BIGINT NOT NULL,
    figures TEXT NOT NULL,
    markdown TEXT NOT NULL,
    html TEXT NOT NULL
);
CREATE INDEX reports_name ON reports (name, generated_at);
CREATE TABLE report_runs (name TEXT PRIMARY KEY, scheduled_at BIGINT NOT NULL);
"];

const INCIDENTS: &[&str] = &["
CREATE TABLE incidents (
    id BIGINT PRIMARY KEY,
    status TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, opened_at);
CREATE TABLE incident_reports (
    id BIGINT PRIMARY KEY,
    generated_at BIGINT NOT NULL,
    markdown TEXT NOT NULL,
    html TEXT NOT NULL
);
"];

/// API tokens in PostgreSQL.
pub struct PgTokens {
    conn: PgConn,
}

impl PgTokens {
    pub fn open(url: &str) -> Result<Self, TokenError> {
        let conn = PgConn::open(url, "tokens", TOKENS).map_err(TokenError::Storage)?;
        Ok(PgTokens { conn })
    }
}

const TOKEN_COLUMNS: &str =
    "id, name, sha256, role, scope, created_by, created_at, expires_at, revoked_at, revoked_by";

fn token_from(r: &Row) -> StoredToken {
    StoredToken {
        id: r.get(0),
        name: r.get(1),
        sha256: r.get(2),
        role: r.get(3),
        scope: r.get(4),
        created_by: r.get(5),
        created_at: r.get(6),
        expires_at: r.get(7),
        revoked_at: r.get(8),
        revoked_by: r.get(9),
    }
}

impl TokenStore for PgTokens {
    fn insert(&self, t: &StoredToken) -> Result<(), TokenError> {
        let t = t.clone();
        let name = t.name.clone();
        let r = self.conn.run_raw(move |c| {
            match c.execute(
                "INSERT INTO api_tokens (id, name, sha256, role, scope, created_by, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&t.id, &t.name, &t.sha256, &t.role, &t.scope, &t.created_by, &t.created_at, &t.expires_at],
            ) {
                Ok(_) => Ok(true),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
                Err(e) => Err(describe(&e)),
            }
        });
        match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(TokenError::NameTaken(name)),
            Err(e) => Err(TokenError::Storage(e)),
        }
    }

    fn list(&self) -> Result<Vec<StoredToken>, TokenError> {
        self.conn
            .run(|c| {
                Ok(c.query(
                    &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"),
                    &[],
                )?
                .iter()
                .map(token_from)
                .collect())
            })
            .map_err(TokenError::Storage)
    }

    fn revoke(&self, id_or_name: &str, by: &str, now: i64) -> Result<StoredToken, TokenError> {
        let (key, by) = (id_or_name.to_string(), by.to_string());
        let row = self
            .conn
            .run(move |c| {
                Ok(c.query_opt(
                    &format!(
                        "UPDATE api_tokens SET revoked_at = $2, revoked_by = $3
                         WHERE id = (SELECT id FROM api_tokens WHERE revoked_at IS NULL AND (id = $1 OR name = $1) LIMIT 1)
                         RETURNING {TOKEN_COLUMNS}"
                    ),
                    &[&key, &now, &by],
                )?
                .map(|r| token_from(&r)))
            })
            .map_err(TokenError::Storage)?;
        row.ok_or_else(|| TokenError::NotFound(id_or_name.to_string()))
    }
}

/// Reports in PostgreSQL.
pub struct PgReports {
    conn: PgConn,
}

impl PgReports {
    pub fn open(url: &str) -> Result<Self, ReportStoreError> {
        let conn = PgConn::open(url, "reports", REPORTS).map_err(|message| ReportStoreError {
            path: "postgresql".into(),
            message,
        })?;
        Ok(PgReports { conn })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, ReportStoreError> {
        self.conn.run(f).map_err(|message| ReportStoreError {
            path: "postgresql".into(),
            message,
        })
    }
}

fn report_from(r: &Row, bodies: bool) -> Report {
    Report {
        id: r.get(0),
        name: r.get(1),
        period: r.get(2),
        start_ms: r.get(3),
        end_ms: r.get(4),
        generated_at: r.get(5),
        figures: if bodies { r.get(6) } else { String::new() },
        markdown: if bodies { r.get(7) } else { String::new() },
        html: if bodies { r.get(8) } else { String::new() },
    }
}

impl ReportStore for PgReports {
    fn save(&self, r: &Report) -> Result<i64, ReportStoreError> {
        let r = r.clone();
        self.run(move |c| {
            Ok(c.query_one(
                "INSERT INTO reports (name, period, start_ms, end_ms, generated_at, figures, markdown, html)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[&r.name, &r.period, &r.start_ms, &r.end_ms, &r.generated_at, &r.figures, &r.markdown, &r.html],
            )?
            .get(0))
        })
    }

    fn list(&self, limit: usize) -> Result<Vec<Report>, ReportStoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        self.run(move |c| {
            Ok(c.query(
                "SELECT id, name, period, start_ms, end_ms, generated_at FROM reports
                 ORDER BY id DESC LIMIT $1",
                &[&limit],
            )?
            .iter()
            .map(|r| report_from(r, false))
            .collect())
        })
    }

    fn get(&self, id: i64) -> Result<Option<Report>, ReportStoreError> {
        self.run(move |c| {
            Ok(c.query_opt(
                "SELECT id, name, period, start_ms, end_ms, generated_at, figures, markdown, html
                 FROM reports WHERE id = $1",
                &[&id],
            )?
            .map(|r| report_from(&r, true)))
        })
    }

    fn last_run(&self, name: &str) -> Result<Option<i64>, ReportStoreError> {
        let name = name.to_string();
        self.run(move |c| {
            Ok(c.query_opt(
                "SELECT scheduled_at FROM report_runs WHERE name = $1",
                &[&name],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn set_last_run(&self, name: &str, at: i64) -> Result<(), ReportStoreError> {
        let name = name.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO report_runs (name, scheduled_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET scheduled_at = EXCLUDED.scheduled_at",
                &[&name, &at],
            )
            .map(|_| ())
        })
    }
}

/// Incidents in PostgreSQL.
pub struct PgIncidents {
    conn: PgConn,
}

fn storage(message: String) -> IncidentStoreError {
    IncidentStoreError::Storage {
        path: "postgresql".into(),
        message,
    }
}

impl PgIncidents {
    pub fn open(url: &str) -> Result<Self, IncidentStoreError> {
        let conn = PgConn::open(url, "incidents", INCIDENTS).map_err(storage)?;
        Ok(PgIncidents { conn })
    }
}

impl IncidentStore for PgIncidents {
    fn save(&self, incidents: &[&Incident]) -> Result<(), IncidentStoreError> {
        let mut rows = Vec::with_capacity(incidents.len());
        for i in incidents {
            let record = serde_json::to_string(i).map_err(|e| storage(e.to_string()))?;
            rows.push((i.id as i64, i.status.to_string(), i.opened_at, record));
        }
        self.conn
            .run(move |c| {
                let mut tx = c.transaction()?;
                let st = tx.prepare(
                    "INSERT INTO incidents (id, status, opened_at, record) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, record = EXCLUDED.record",
                )?;
                for (id, status, opened_at, record) in &rows {
                    tx.execute(&st, &[id, status, opened_at, record])?;
                }
                tx.commit()
            })
            .map_err(storage)
    }

    fn delete(&self, ids: &[u64]) -> Result<(), IncidentStoreError> {
        let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        self.conn
            .run(move |c| {
                let mut tx = c.transaction()?;
                tx.execute("DELETE FROM incidents WHERE id = ANY($1)", &[&ids])?;
                tx.execute("DELETE FROM incident_reports WHERE id = ANY($1)", &[&ids])?;
                tx.commit()
            })
            .map_err(storage)
    }

    fn save_report(&self, r: &StoredReport) -> Result<(), IncidentStoreError> {
        let r = r.clone();
        self.conn
            .run(move |c| {
                c.execute(
                    "INSERT INTO incident_reports (id, generated_at, markdown, html) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET generated_at = EXCLUDED.generated_at,
                       markdown = EXCLUDED.markdown, html = EXCLUDED.html",
                    &[&(r.id as i64), &r.generated_at, &r.markdown, &r.html],
                )
                .map(|_| ())
            })
            .map_err(storage)
    }

    fn report(&self, id: u64) -> Result<Option<StoredReport>, IncidentStoreError> {
        self.conn
            .run(move |c| {
                Ok(c.query_opt(
                    "SELECT generated_at, markdown, html FROM incident_reports WHERE id = $1",
                    &[&(id as i64)],
                )?
                .map(|r| StoredReport {
                    id,
                    generated_at: r.get(0),
                    markdown: r.get(1),
                    html: r.get(2),
                }))
            })
            .map_err(storage)
    }

    fn load_all(&self) -> Result<Vec<Incident>, IncidentStoreError> {
        let rows: Vec<(i64, String)> = self
            .conn
            .run(|c| {
                Ok(
                    c.query("SELECT id, record FROM incidents ORDER BY id", &[])?
                        .iter()
                        .map(|r| (r.get(0), r.get(1)))
                        .collect(),
                )
            })
            .map_err(storage)?;
        rows.into_iter()
            .map(|(id, record)| {
                serde_json::from_str(&record).map_err(|e| IncidentStoreError::Damaged {
                    path: "postgresql".into(),
                    id,
                    message: e.to_string(),
                })
            })
            .collect()
    }
}
