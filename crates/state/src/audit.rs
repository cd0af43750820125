//! The audit log in SQLite: append-only, each row chained to the one before by a SHA-256 hash
//! over the previous hash and the row's fields, so a row edited or deleted in the database is
//! found by [`SqliteAudit::verify`]. The hash of the newest row is kept in `meta` too (a row
//! removed from the end is found), and pruning by age records the hash the remaining chain
//! starts from. Someone who can rewrite the whole file can rewrite the chain: for that, keep the
//! head hash `medic audit verify` prints somewhere else and compare.

use std::path::Path;
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
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why the audit log could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("audit log: {0}")]
pub struct AuditError(String);

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

fn hash(prev: &str, seq: i64, e: &AuditEntry) -> String {
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

impl SqliteAudit {
    /// Opens (creating) the log at `path`.
    pub fn open(path: &Path) -> Result<SqliteAudit, AuditError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let c = Connection::open(path).map_err(err)?;
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(err)?;
        c.execute_batch(SCHEMA).map_err(err)?;
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

    /// Appends an entry, chained to the newest row; returns its sequence number.
    pub fn append(&self, e: &AuditEntry) -> Result<i64, AuditError> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(err)?;
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
    pub fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, AuditError> {
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
    pub fn verify(&self) -> Result<Verdict, AuditError> {
        let c = self.conn();
        let mut expect_seq: i64 = Self::meta(&c, "start_seq")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut prev = Self::meta(&c, "start_prev")?.unwrap_or_else(|| GENESIS.into());
        let mut st = c
            .prepare(
                "SELECT seq, at, actor, source, action, target, detail, result, prev, hash
                 FROM audit ORDER BY seq",
            )
            .map_err(err)?;
        let mut rows = st.query([]).map_err(err)?;
        let mut n = 0u64;
        while let Some(r) = rows.next().map_err(err)? {
            let seq: i64 = r.get(0).map_err(err)?;
            let e = AuditEntry {
                at: r.get(1).map_err(err)?,
                actor: r.get(2).map_err(err)?,
                source: r.get(3).map_err(err)?,
                action: r.get(4).map_err(err)?,
                target: r.get(5).map_err(err)?,
                detail: r.get(6).map_err(err)?,
                result: r.get(7).map_err(err)?,
            };
            let stored_prev: String = r.get(8).map_err(err)?;
            let stored: String = r.get(9).map_err(err)?;
            if seq != expect_seq {
                return Ok(Verdict::Broken {
                    seq: expect_seq,
                    reason: format!("row {expect_seq} is missing (the next row is {seq})"),
                });
            }
            if stored_prev != prev || hash(&prev, seq, &e) != stored {
                return Ok(Verdict::Broken {
                    seq,
                    reason: format!("row {seq} was changed: its hash does not match its contents and the row before"),
                });
            }
            prev = stored;
            expect_seq += 1;
            n += 1;
        }
        let head_seq: Option<i64> = Self::meta(&c, "head_seq")?.and_then(|v| v.parse().ok());
        if let Some(h) = head_seq {
            if h != expect_seq - 1 {
                return Ok(Verdict::Broken {
                    seq: h,
                    reason: format!(
                        "the log ends at row {} but row {h} was written: rows were removed from its end",
                        expect_seq - 1
                    ),
                });
            }
            if Self::meta(&c, "head_hash")?.as_deref() != Some(prev.as_str()) {
                return Ok(Verdict::Broken {
                    seq: h,
                    reason: format!("row {h} is not the row that was written last"),
                });
            }
        }
        Ok(Verdict::Intact {
            rows: n,
            head: prev,
        })
    }

    /// Deletes rows older than `before` (ms), keeping the chain verifiable: the hash the
    /// remaining rows start from is recorded. Returns how many rows went.
    pub fn prune(&self, before: i64) -> Result<usize, AuditError> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(err)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64) -> AuditEntry {
        AuditEntry {
            at: 1_000 * i,
            actor: "alice".into(),
            source: "127.0.0.1:5000".into(),
            action: "POST /api/v2/silences".into(),
            target: format!("silence-{i}"),
            detail: format!("{{\"comment\":\"n{i}\"}}"),
            result: "200".into(),
        }
    }

    fn log(n: i64) -> (tempfile::TempDir, SqliteAudit) {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteAudit::open(&dir.path().join("audit.db")).unwrap();
        for i in 1..=n {
            assert_eq!(a.append(&entry(i)).unwrap(), i);
        }
        (dir, a)
    }

    fn raw(dir: &tempfile::TempDir) -> Connection {
        Connection::open(dir.path().join("audit.db")).unwrap()
    }

    #[test]
    fn an_intact_log_verifies_and_survives_reopening() {
        let (dir, a) = log(5);
        let Verdict::Intact { rows, head } = a.verify().unwrap() else {
            panic!("broken")
        };
        assert_eq!(rows, 5);
        drop(a);
        let a = SqliteAudit::open(&dir.path().join("audit.db")).unwrap();
        a.append(&entry(6)).unwrap();
        let Verdict::Intact { rows, head: h2 } = a.verify().unwrap() else {
            panic!("broken after reopening")
        };
        assert_eq!(rows, 6);
        assert_ne!(head, h2);
    }

    #[test]
    fn a_changed_row_is_found() {
        let (dir, a) = log(5);
        raw(&dir)
            .execute("UPDATE audit SET result = '403' WHERE seq = 3", [])
            .unwrap();
        assert!(matches!(
            a.verify().unwrap(),
            Verdict::Broken { seq: 3, .. }
        ));
    }

    #[test]
    fn a_row_changed_with_its_hash_recomputed_breaks_the_next_link() {
        let (dir, a) = log(5);
        let c = raw(&dir);
        let prev: String = c
            .query_row("SELECT prev FROM audit WHERE seq = 2", [], |r| r.get(0))
            .unwrap();
        let mut e = entry(2);
        e.actor = "mallory".into();
        c.execute(
            "UPDATE audit SET actor = 'mallory', hash = ?1 WHERE seq = 2",
            params![hash(&prev, 2, &e)],
        )
        .unwrap();
        assert!(matches!(
            a.verify().unwrap(),
            Verdict::Broken { seq: 3, .. }
        ));
    }

    #[test]
    fn removed_rows_are_found_in_the_middle_and_at_the_end() {
        let (dir, a) = log(5);
        raw(&dir)
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        let v = a.verify().unwrap();
        assert!(
            matches!(&v, Verdict::Broken { seq: 2, reason } if reason.contains("missing")),
            "{v:?}"
        );
        let (dir, a) = log(5);
        raw(&dir)
            .execute("DELETE FROM audit WHERE seq = 5", [])
            .unwrap();
        let v = a.verify().unwrap();
        assert!(
            matches!(&v, Verdict::Broken { reason, .. } if reason.contains("removed from its end")),
            "{v:?}"
        );
    }

    #[test]
    fn pruning_by_age_keeps_the_chain_verifiable() {
        let (_dir, a) = log(10);
        assert_eq!(a.prune(4_500).unwrap(), 4);
        assert!(matches!(
            a.verify().unwrap(),
            Verdict::Intact { rows: 6, .. }
        ));
        a.append(&entry(11)).unwrap();
        assert!(matches!(
            a.verify().unwrap(),
            Verdict::Intact { rows: 7, .. }
        ));
        // Everything old: the newest row stays as the chain's head.
        assert_eq!(a.prune(i64::MAX).unwrap(), 6);
        assert!(matches!(
            a.verify().unwrap(),
            Verdict::Intact { rows: 1, .. }
        ));
    }

    #[test]
    fn queries_filter_newest_first() {
        let (_dir, a) = log(5);
        let rows = a
            .query(&AuditQuery {
                target: Some("silence-".into()),
                since: Some(2_000),
                until: Some(4_000),
                ..Default::default()
            })
            .unwrap();
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [4, 3, 2]);
        assert!(a
            .query(&AuditQuery {
                actor: Some("bob".into()),
                ..Default::default()
            })
            .unwrap()
            .is_empty());
    }
}
