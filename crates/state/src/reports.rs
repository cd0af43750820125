//! Scheduled and on-demand reports in SQLite (`reports.db`): each generated report with its
//! figures (JSON), Markdown and HTML; and, per configured report, the scheduled time last
//! handled, so a restart neither repeats a run nor forgets one it missed.

use std::path::Path;

use crate::ReportStore;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    period TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    generated_at INTEGER NOT NULL,
    figures TEXT NOT NULL,
    markdown TEXT NOT NULL,
    html TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_name ON reports (name, generated_at);
CREATE TABLE IF NOT EXISTS report_runs (
    name TEXT PRIMARY KEY,
    scheduled_at INTEGER NOT NULL
);
";

/// A report as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub id: i64,
    pub name: String,
    pub period: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub generated_at: i64,
    /// The figures as JSON text.
    #[serde(skip)]
    pub figures: String,
    #[serde(skip)]
    pub markdown: String,
    #[serde(skip)]
    pub html: String,
}

/// Why the report store failed.
#[derive(Debug, thiserror::Error)]
#[error("report store {path}: {message}")]
pub struct ReportStoreError {
    pub path: String,
    pub message: String,
}

/// The report tables.
pub struct SqliteReports {
    conn: Mutex<Connection>,
    path: String,
}

impl SqliteReports {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, ReportStoreError> {
        let shown = path.display().to_string();
        let conn = crate::open_sqlite(path, SCHEMA, false).map_err(|message| ReportStoreError {
            path: shown.clone(),
            message,
        })?;
        Ok(SqliteReports {
            conn: Mutex::new(conn),
            path: shown,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: impl std::fmt::Display) -> ReportStoreError {
        ReportStoreError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

impl ReportStore for SqliteReports {
    /// Stores a report; its id.
    fn save(&self, r: &Report) -> Result<i64, ReportStoreError> {
        let c = self.conn();
        c.execute(
            "INSERT INTO reports (name, period, start_ms, end_ms, generated_at, figures, markdown, html)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.name,
                r.period,
                r.start_ms,
                r.end_ms,
                r.generated_at,
                r.figures,
                r.markdown,
                r.html
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(c.last_insert_rowid())
    }

    /// The newest reports first, without their bodies.
    fn list(&self, limit: usize) -> Result<Vec<Report>, ReportStoreError> {
        let c = self.conn();
        let mut st = c
            .prepare(
                "SELECT id, name, period, start_ms, end_ms, generated_at FROM reports
                 ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![limit.min(i64::MAX as usize) as i64], |r| {
                Ok(Report {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    period: r.get(2)?,
                    start_ms: r.get(3)?,
                    end_ms: r.get(4)?,
                    generated_at: r.get(5)?,
                    figures: String::new(),
                    markdown: String::new(),
                    html: String::new(),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// One report with its bodies.
    fn get(&self, id: i64) -> Result<Option<Report>, ReportStoreError> {
        self.conn()
            .query_row(
                "SELECT id, name, period, start_ms, end_ms, generated_at, figures, markdown, html
                 FROM reports WHERE id = ?1",
                params![id],
                |r| {
                    Ok(Report {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        period: r.get(2)?,
                        start_ms: r.get(3)?,
                        end_ms: r.get(4)?,
                        generated_at: r.get(5)?,
                        figures: r.get(6)?,
                        markdown: r.get(7)?,
                        html: r.get(8)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The scheduled time last handled for report `name`.
    fn last_run(&self, name: &str) -> Result<Option<i64>, ReportStoreError> {
        self.conn()
            .query_row(
                "SELECT scheduled_at FROM report_runs WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records that the run scheduled at `at` for `name` was handled.
    fn set_last_run(&self, name: &str, at: i64) -> Result<(), ReportStoreError> {
        self.conn()
            .execute(
                "INSERT INTO report_runs (name, scheduled_at) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET scheduled_at = excluded.scheduled_at",
                params![name, at],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
