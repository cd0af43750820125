//! The audit log in PostgreSQL: the SQLite log's hash chain, with appends from every replica
//! serialised by a row lock on the chain's head, so the chain stays one line.

use std::sync::atomic::{AtomicU64, Ordering};

use medic_model::{AuditEntry, AuditSink};
use postgres::Transaction;

use super::PgConn;
use crate::audit::{hash, Chain, ChainRow, GENESIS};
use crate::{AuditError, AuditQuery, AuditRow, AuditStore, Verdict};

const MIGRATIONS: &[&str] = &["
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    result TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
-- One row: the chain's start (after pruning) and head; appends lock it.
CREATE TABLE audit_chain (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    start_seq BIGINT NOT NULL,
    start_prev TEXT NOT NULL,
    head_seq BIGINT,
    head_hash TEXT
);
INSERT INTO audit_chain (start_seq, start_prev) VALUES (1, '0000000000000000000000000000000000000000000000000000000000000000');
"];

/// The audit log in PostgreSQL.
pub struct PgAudit {
    conn: PgConn,
    failures: AtomicU64,
}

impl PgAudit {
    pub fn open(url: &str) -> Result<PgAudit, AuditError> {
        debug_assert!(MIGRATIONS[0].contains(GENESIS));
        let conn = PgConn::open(url, "audit", MIGRATIONS).map_err(AuditError)?;
        Ok(PgAudit {
            conn,
            failures: AtomicU64::new(0),
        })
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, AuditError> {
        self.conn.run(f).map_err(AuditError)
    }
}

/// The chain row, locked for the rest of the transaction.
fn lock_chain(
    tx: &mut Transaction,
) -> Result<(i64, String, Option<i64>, Option<String>), postgres::Error> {
    let r = tx.query_one(
        "SELECT start_seq, start_prev, head_seq, head_hash FROM audit_chain FOR UPDATE",
        &[],
    )?;
    Ok((r.get(0), r.get(1), r.get(2), r.get(3)))
}

impl AuditStore for PgAudit {
    fn append(&self, e: &AuditEntry) -> Result<i64, AuditError> {
        let e = e.clone();
        self.run(move |c| {
            let mut tx = c.transaction()?;
            let (start_seq, start_prev, head_seq, head_hash) = lock_chain(&mut tx)?;
            let (seq, prev) = match (head_seq, head_hash) {
                (Some(s), Some(h)) if s >= start_seq => (s + 1, h),
                _ => (start_seq, start_prev),
            };
            let h = hash(&prev, seq, &e);
            tx.execute(
                "INSERT INTO audit (seq, at, actor, source, action, target, detail, result, prev, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[&seq, &e.at, &e.actor, &e.source, &e.action, &e.target, &e.detail, &e.result, &prev, &h],
            )?;
            tx.execute(
                "UPDATE audit_chain SET head_seq = $1, head_hash = $2",
                &[&seq, &h],
            )?;
            tx.commit()?;
            Ok(seq)
        })
    }

    fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, AuditError> {
        let q = q.clone();
        let limit = if q.limit == 0 {
            1000
        } else {
            q.limit.min(100_000)
        } as i64;
        self.run(move |c| {
            Ok(c.query(
                "SELECT seq, at, actor, source, action, target, detail, result, hash FROM audit
                 WHERE ($1::TEXT IS NULL OR actor = $1)
                   AND ($2::TEXT IS NULL OR starts_with(action, $2))
                   AND ($3::TEXT IS NULL OR strpos(target, $3) > 0)
                   AND ($4::BIGINT IS NULL OR at >= $4)
                   AND ($5::BIGINT IS NULL OR at <= $5)
                 ORDER BY seq DESC LIMIT $6",
                &[&q.actor, &q.action, &q.target, &q.since, &q.until, &limit],
            )?
            .iter()
            .map(|r| AuditRow {
                seq: r.get(0),
                entry: AuditEntry {
                    at: r.get(1),
                    actor: r.get(2),
                    source: r.get(3),
                    action: r.get(4),
                    target: r.get(5),
                    detail: r.get(6),
                    result: r.get(7),
                },
                hash: r.get(8),
            })
            .collect())
        })
    }

    fn verify(&self) -> Result<Verdict, AuditError> {
        self.run(|c| {
            // One snapshot for the chain row and every audit row.
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let r = tx.query_one(
                "SELECT start_seq, start_prev, head_seq, head_hash FROM audit_chain",
                &[],
            )?;
            let (head_seq, head_hash): (Option<i64>, Option<String>) = (r.get(2), r.get(3));
            let mut chain = Chain::new(r.get(0), r.get(1));
            let portal = tx.bind(
                "SELECT seq, at, actor, source, action, target, detail, result, prev, hash
                 FROM audit ORDER BY seq",
                &[],
            )?;
            loop {
                let rows = tx.query_portal(&portal, 10_000)?;
                if rows.is_empty() {
                    break;
                }
                for r in rows {
                    let row = ChainRow {
                        seq: r.get(0),
                        entry: AuditEntry {
                            at: r.get(1),
                            actor: r.get(2),
                            source: r.get(3),
                            action: r.get(4),
                            target: r.get(5),
                            detail: r.get(6),
                            result: r.get(7),
                        },
                        prev: r.get(8),
                        hash: r.get(9),
                    };
                    if let Some(broken) = chain.next(row) {
                        return Ok(broken);
                    }
                }
            }
            Ok(chain.end(head_seq, head_hash.as_deref()))
        })
    }

    fn prune(&self, before: i64) -> Result<usize, AuditError> {
        self.run(move |c| {
            let mut tx = c.transaction()?;
            lock_chain(&mut tx)?;
            // The newest row is kept whatever its age, so the chain always has a head.
            let cut = tx.query_opt(
                "SELECT seq, hash FROM audit WHERE at < $1
                   AND seq < (SELECT max(seq) FROM audit)
                 ORDER BY seq DESC LIMIT 1",
                &[&before],
            )?;
            let Some(cut) = cut else {
                return Ok(0);
            };
            let (seq, h): (i64, String) = (cut.get(0), cut.get(1));
            let n = tx.execute("DELETE FROM audit WHERE seq <= $1", &[&seq])?;
            tx.execute(
                "UPDATE audit_chain SET start_seq = $1, start_prev = $2",
                &[&(seq + 1), &h],
            )?;
            tx.commit()?;
            Ok(n as usize)
        })
    }

    fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

impl AuditSink for PgAudit {
    fn record(&self, entry: AuditEntry) {
        if let Err(e) = self.append(&entry) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, action = %entry.action, "cannot write the audit log");
        }
    }
}
