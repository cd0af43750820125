//! The audit log in SQLite: append-only, each row chained to the one before by a SHA-256 hash
//! over the previous hash and the row's fields, so a row edited or deleted in the database is
//! found by [`SqliteAudit::verify`]. The hash of the newest row is kept in `meta` too (a row
//! removed from the end is found), and pruning by age records the hash the remaining chain
//! starts from. Someone who can rewrite the whole file can rewrite the chain: for that, keep the
//! head hash `medic audit verify` prints somewhere else and compare.

use std::path::Path;

use crate::AuditStore;
use std::sync::{Mutex, MutexGuard};

use medic_model::{AuditEntry, AuditSink};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    result TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// The hash the first row chains to.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why the audit log could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("audit log: {0}")]
pub struct AuditError(pub(crate) String);

fn err(e: impl std::fmt::Display) -> AuditError {
    AuditError(e.to_string())
}

/// A row as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRow {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub hash: String,
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// A prefix of the action (`POST`, `heal.`).
    pub action: Option<String>,
    /// A substring of the target.
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Newest first, at most this many (0: 1000).
    pub limit: usize,
}

/// What [`SqliteAudit::verify`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every row is intact; `rows` checked, the newest hash.
    Intact { rows: u64, head: String },
    /// The first place the chain breaks, said for people.
    Broken { seq: i64, reason: String },
}

/// The audit log.
pub struct SqliteAudit {
    conn: Mutex<Connection>,
    /// Entries that could not be written (a full disk): counted, never failing the caller.
    pub failures: std::sync::atomic::AtomicU64,
}

/// The chain hash of row `seq` with fields `e` after a row whose hash is `prev`; public so
/// that tools outside medic can check an exported chain.
pub fn hash(prev: &str, seq: i64, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    // Each field length-prefixed, so no two different rows hash alike.
    for part in [
        prev,
        &seq.to_string(),
        &e.at.to_string(),
        &e.actor,
        &e.source,
        &e.action,
        &e.target,
        &e.detail,
        &e.result,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored row as the chain walk reads it.
pub(crate) struct ChainRow {
    pub seq: i64,
    pub entry: AuditEntry,
    pub prev: String,
    pub hash: String,
}

/// The walk of [`crate::AuditStore::verify`], the same for every store: rows are fed in
/// sequence order; the first break found is the verdict.
pub(crate) struct Chain {
    expect_seq: i64,
    prev: String,
    rows: u64,
}

impl Chain {
    /// A walk from the first sequence number and the hash it chains to (after pruning, the
    /// ones recorded by the prune; else 1 and the genesis hash).
    pub fn new(start_seq: i64, start_prev: String) -> Chain {
        Chain {
            expect_seq: start_seq,
            prev: start_prev,
            rows: 0,
        }
    }

    /// Checks the next row; `Some` is the break.
    pub fn next(&mut self, r: ChainRow) -> Option<Verdict> {
        let expect = self.expect_seq;
        if r.seq != expect {
            return Some(Verdict::Broken {
                seq: expect,
                reason: format!("row {expect} is missing (the next row is {})", r.seq),
            });
        }
        if r.prev != self.prev || hash(&self.prev, r.seq, &r.entry) != r.hash {
            return Some(Verdict::Broken {
                seq: r.seq,
                reason: format!(
                    "row {} was changed: its hash does not match its contents and the row before",
                    r.seq
                ),
            });
        }
        self.prev = r.hash;
        self.expect_seq += 1;
        self.rows += 1;
        None
    }

    /// The verdict after the last row, given the head remembered as written last.
    pub fn end(self, head_seq: Option<i64>, head_hash: Option<&str>) -> Verdict {
        if let Some(h) = head_seq {
            if h != self.expect_seq - 1 {
                return Verdict::Broken {
                    seq: h,
                    reason: format!(
                        "the log ends at row {} but row {h} was written: rows were removed from its end",
                        self.expect_seq - 1
                    ),
                };
            }
            if head_hash != Some(self.prev.as_str()) {
                return Verdict::Broken {
                    seq: h,
                    reason: format!("row {h} is not the row that was written last"),
                };
            }
        }
        Verdict::Intact {
            rows: self.rows,
            head: self.prev,
        }
    }
}

impl SqliteAudit {
    /// Opens (creating) the log at `path`.
    pub fn open(path: &Path) -> Result<SqliteAudit, AuditError> {
        // With a busy timeout: `medic audit verify` or a second handle may hold the file.
        let c = crate::open_sqlite(path, SCHEMA, false).map_err(err)?;
        Ok(SqliteAudit {
            conn: Mutex::new(c),
            failures: Default::default(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn meta(c: &Connection, key: &str) -> Result<Option<String>, AuditError> {
        c.query_row(
            "SELECT value FROM audit_meta WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()
        .map_err(err)
    }
}

impl AuditStore for SqliteAudit {
    /// Appends an entry, chained to the newest row; returns its sequence number.
    fn append(&self, e: &AuditEntry) -> Result<i64, AuditError> {
        let mut c = self.conn();
        // Immediate: the head read and the write are one step for every writer of the file.
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let (seq, prev) = match last {
            Some((s, h)) => (s + 1, h),
            None => {
                let start: i64 = Self::meta(&tx, "start_seq")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let prev = Self::meta(&tx, "start_prev")?.unwrap_or_else(|| GENESIS.into());
                (start, prev)
            }
        };
        let h = hash(&prev, seq, e);
        tx.execute(
            "INSERT INTO audit (seq, at, actor, source, action, target, detail, result, prev, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![seq, e.at, e.actor, e.source, e.action, e.target, e.detail, e.result, prev, h],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO audit_meta (key, value) VALUES ('head_seq', ?1), ('head_hash', ?2)",
            params![seq.to_string(), h],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(seq)
    }

    /// Rows matching `q`, newest first.
    fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, AuditError> {
        let c = self.conn();
        let limit = if q.limit == 0 {
            1000
        } else {
            q.limit.min(100_000)
        };
        let mut st = c
            .prepare(
                "SELECT seq, at, actor, source, action, target, detail, result, hash FROM audit
                 WHERE (?1 IS NULL OR actor = ?1)
                   AND (?2 IS NULL OR substr(action, 1, length(?2)) = ?2)
                   AND (?3 IS NULL OR instr(target, ?3) > 0)
                   AND (?4 IS NULL OR at >= ?4)
                   AND (?5 IS NULL OR at <= ?5)
                 ORDER BY seq DESC LIMIT ?6",
            )
            .map_err(err)?;
        let rows = st
            .query_map(
                params![q.actor, q.action, q.target, q.since, q.until, limit as i64],
                |r| {
                    Ok(AuditRow {
                        seq: r.get(0)?,
                        entry: AuditEntry {
                            at: r.get(1)?,
                            actor: r.get(2)?,
                            source: r.get(3)?,
                            action: r.get(4)?,
                            target: r.get(5)?,
                            detail: r.get(6)?,
                            result: r.get(7)?,
                        },
                        hash: r.get(8)?,
                    })
                },
            )
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Walks the whole chain: every row's hash recomputed from its fields and the row before,
    /// no sequence number missing, the newest row the one `meta` remembers.
    fn verify(&self) -> Result<Verdict, AuditError> {
        let c = self.conn();
        let start_seq: i64 = Self::meta(&c, "start_seq")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let start_prev = Self::meta(&c, "start_prev")?.unwrap_or_else(|| GENESIS.into());
        let head_seq: Option<i64> = Self::meta(&c, "head_seq")?.and_then(|v| v.parse().ok());
        let head_hash = Self::meta(&c, "head_hash")?;
        let mut st = c
            .prepare(
                "SELECT seq, at, actor, source, action, target, detail, result, prev, hash
                 FROM audit ORDER BY seq",
            )
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        let mut chain = Chain::new(start_seq, start_prev);
        while let Some(r) = rows.next().map_err(err)? {
            let row = ChainRow {
                seq: r.get(0).map_err(err)?,
                entry: AuditEntry {
                    at: r.get(1).map_err(err)?,
                    actor: r.get(2).map_err(err)?,
                    source: r.get(3).map_err(err)?,
                    action: r.get(4).map_err(err)?,
                    target: r.get(5).map_err(err)?,
                    detail: r.get(6).map_err(err)?,
                    result: r.get(7).map_err(err)?,
                },
                prev: r.get(8).map_err(err)?,
                hash: r.get(9).map_err(err)?,
            };
            if let Some(broken) = chain.next(row) {
                return Ok(broken);
            }
        }
        Ok(chain.end(head_seq, head_hash.as_deref()))
    }

    fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn prune(&self, before: i64) -> Result<usize, AuditError> {
        let mut c = self.conn();
        // Immediate: the head read and the write are one step for every writer of the file.
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        // The newest row is kept whatever its age, so the chain always has a head.
        let cut: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit WHERE at < ?1
                   AND seq < (SELECT max(seq) FROM audit)
                 ORDER BY seq DESC LIMIT 1",
                params![before],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let Some((seq, h)) = cut else {
            return Ok(0);
        };
        let n = tx
            .execute("DELETE FROM audit WHERE seq <= ?1", params![seq])
            .map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO audit_meta (key, value) VALUES ('start_seq', ?1), ('start_prev', ?2)",
            params![(seq + 1).to_string(), h],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n)
    }
}

impl AuditSink for SqliteAudit {
    fn record(&self, entry: AuditEntry) {
        if let Err(e) = self.append(&entry) {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(error = %e, action = %entry.action, "cannot write the audit log");
        }
    }
}
