//! API tokens made at run time (`medic token create`, `POST /api/v1/medic/tokens`), in SQLite:
//! only the SHA-256 of each token is stored, with its role, scope, expiry and who made it. A
//! revoked token keeps its row (so the list shows when and by whom) but never authenticates.

use std::path::Path;

use crate::TokenStore;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    revoked_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
";

/// Why the token store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token named {0:?} exists already; revoke it first or choose another name")]
    NameTaken(String),
    #[error("no token {0:?}")]
    NotFound(String),
    #[error("token store: {0}")]
    Storage(String),
}

fn err(e: impl std::fmt::Display) -> TokenError {
    TokenError::Storage(e.to_string())
}

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredToken {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub sha256: String,
    pub role: String,
    /// Matchers, `{service="checkout"}`; empty: all.
    pub scope: String,
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

impl StoredToken {
    /// Whether it authenticates at `now` (ms).
    pub fn live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// The token table.
pub struct SqliteTokens {
    conn: Mutex<Connection>,
}

impl SqliteTokens {
    /// Opens (creating if needed) the database at `path`; the table may share a file.
    pub fn open(path: &Path) -> Result<Self, TokenError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| err(format!("{}: {e}", path.display())))?;
        Ok(SqliteTokens {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TokenStore for SqliteTokens {
    /// Stores a new token; fails if a live token has the name.
    fn insert(&self, t: &StoredToken) -> Result<(), TokenError> {
        let r = self.conn().execute(
            "INSERT INTO api_tokens (id, name, sha256, role, scope, created_by, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                t.id,
                t.name,
                t.sha256,
                t.role,
                t.scope,
                t.created_by,
                t.created_at,
                t.expires_at
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(TokenError::NameTaken(t.name.clone()))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// Every token, revoked ones too, oldest first.
    fn list(&self) -> Result<Vec<StoredToken>, TokenError> {
        let c = self.conn();
        let mut st = c
            .prepare(
                "SELECT id, name, sha256, role, scope, created_by, created_at, expires_at, revoked_at, revoked_by
                 FROM api_tokens ORDER BY created_at, id",
            )
            .map_err(err)?;
        let rows = st
            .query_map([], |r| {
                Ok(StoredToken {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    sha256: r.get(2)?,
                    role: r.get(3)?,
                    scope: r.get(4)?,
                    created_by: r.get(5)?,
                    created_at: r.get(6)?,
                    expires_at: r.get(7)?,
                    revoked_at: r.get(8)?,
                    revoked_by: r.get(9)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Revokes the live token with this id or name; the revoked token.
    fn revoke(&self, id_or_name: &str, by: &str, now: i64) -> Result<StoredToken, TokenError> {
        let c = self.conn();
        let id: Option<String> = c
            .query_row(
                "SELECT id FROM api_tokens WHERE revoked_at IS NULL AND (id = ?1 OR name = ?1)",
                params![id_or_name],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let Some(id) = id else {
            return Err(TokenError::NotFound(id_or_name.to_string()));
        };
        c.execute(
            "UPDATE api_tokens SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1",
            params![id, now, by],
        )
        .map_err(err)?;
        drop(c);
        self.list()?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or(TokenError::NotFound(id))
    }
}
