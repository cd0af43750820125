//! medic's durable state in embedded SQLite: the alert manager's alerts, silences,
//! notification log, acknowledgements and history ([`medic_alert::state::StateStore`]); the
//! heal journal ([`SqliteHealStore`]); the hash-chained audit log ([`SqliteAudit`]). One
//! file, WAL journal, every change one transaction; all values are bound parameters, never
//! spliced into SQL. The alert state and the heal journal can live in PostgreSQL instead
//! ([`pg`]), for replicas that share it.

mod audit;
mod heal;
mod incidents;
pub mod lease;
pub mod pg;
mod reports;
mod stores;
mod tokens;

pub use audit::{hash as audit_chain_hash, AuditError, AuditQuery, AuditRow, SqliteAudit, Verdict};
pub use heal::SqliteHealStore;
pub use incidents::{IncidentStoreError, SqliteIncidents, StoredReport};
pub use reports::{Report, ReportStoreError, SqliteReports};
pub use stores::{AuditStore, IncidentStore, ReportStore, TokenStore};
pub use tokens::{SqliteTokens, StoredToken, TokenError};

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use medic_alert::ack::Ack;
use medic_alert::nflog;
use medic_alert::silence::Silence;
use medic_alert::state::{Event, EventKind, HistoryQuery, StateError, StateStore, Ticket};
use medic_alert::{Alert, Fingerprint};
use medic_model::{Labels, MatchType, Matcher};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value as Json};

/// The schema version this build writes; older files are migrated on open.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Alerts as an append-only log: every write appends, the newest row per fingerprint wins and
-- a `deleted` row removes the alert. Appends touch only the table's last pages, whatever the
-- fingerprints; superseded rows are compacted away now and then.
CREATE TABLE IF NOT EXISTS alert_log (
    seq INTEGER PRIMARY KEY,
    fingerprint INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    timeout INTEGER NOT NULL,
    generator_url TEXT NOT NULL,
    value REAL
);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    expire_on_resolve INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nflog (
    key TEXT PRIMARY KEY,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    integration TEXT NOT NULL,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    group_key TEXT PRIMARY KEY,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    firing TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    fingerprint INTEGER,
    labels TEXT NOT NULL,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    detail TEXT NOT NULL,
    author TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_at ON history(at);
-- CREATE INDEX IF NOT EXISTS history_fingerprint ON history(fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX IF NOT EXISTS history_group ON history(group_key) WHERE group_key != '';
";

/// SQLite-backed state.
pub struct SqliteState {
    conn: Arc<Mutex<Connection>>,
    commits: Arc<GroupCommit>,
}

/// Group commit of queued alert writes: callers queue in order; whoever waits first becomes
/// the leader and commits everything queued so far in one transaction, the others wait for it.
/// Under load this writes each touched page once per batch rather than once per request.
#[derive(Default)]
struct GroupCommit {
    state: Mutex<CommitState>,
    done: std::sync::Condvar,
}

/// One queued write: its ticket number, the alerts and the history events.
type Queued = (u64, Vec<Arc<Alert>>, Vec<Event>);

#[derive(Default)]
struct CommitState {
    queue: Vec<Queued>,
    next: u64,
    /// Every ticket up to this one is committed (or failed, see `failed`).
    committed: u64,
    leader: bool,
    /// Tickets whose batch failed, with the reason.
    failed: std::collections::HashMap<u64, String>,
}

/// Opens (creating it and its directory if needed) a SQLite database in WAL mode with a 5 s
/// busy timeout and `schema` applied; `synchronous=FULL` when `durable` (an answered change is
/// on disk). Errors are the reason, to be wrapped with the path by the caller.
pub(crate) fn open_sqlite(
    path: &std::path::Path,
    schema: &str,
    durable: bool,
) -> Result<Connection, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| e.to_string())?;
    if durable {
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| e.to_string())?;
    }
    conn.execute_batch(schema).map_err(|e| e.to_string())?;
    Ok(conn)
}

fn err(e: impl std::fmt::Display) -> StateError {
    StateError(e.to_string())
}

/// Reads every row of `sql` as the tuple `R` (its columns in order) and converts each with
/// `convert`: the one loader behind the `load_*` methods.
fn load_rows<R, T>(
    c: &Connection,
    sql: &str,
    mut convert: impl FnMut(R) -> Result<T, StateError>,
) -> Result<Vec<T>, StateError>
where
    R: for<'a> TryFrom<&'a rusqlite::Row<'a>, Error = rusqlite::Error>,
{
    let mut st = c.prepare(sql).map_err(err)?;
    let rows = st.query_map([], |r| R::try_from(r)).map_err(err)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(convert(row.map_err(err)?)?);
    }
    Ok(out)
}

fn labels_json(l: &Labels) -> String {
    let m: serde_json::Map<String, Json> = l
        .iter()
        .map(|l| (l.name.to_string(), json!(&*l.value)))
        .collect();
    Json::Object(m).to_string()
}

fn labels_from(s: &str) -> Result<Labels, StateError> {
    let m: serde_json::Map<String, Json> = serde_json::from_str(s).map_err(err)?;
    Ok(Labels::from_pairs(
        m.iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))),
    ))
}

fn fps_json(f: &[Fingerprint]) -> String {
    Json::Array(f.iter().map(|x| json!(x.to_string())).collect()).to_string()
}

fn fps_from(s: &str) -> Result<Vec<Fingerprint>, StateError> {
    let v: Vec<String> = serde_json::from_str(s).map_err(err)?;
    v.iter()
        .map(|x| Fingerprint::parse(x).ok_or_else(|| StateError(format!("bad fingerprint {x:?}"))))
        .collect()
}

fn matchers_json(ms: &[Matcher]) -> String {
    Json::Array(
        ms.iter()
            .map(|m| json!({"name": m.name, "value": m.value, "type": m.kind.as_str()}))
            .collect(),
    )
    .to_string()
}

fn matchers_from(s: &str) -> Result<Vec<Matcher>, StateError> {
    let v: Vec<serde_json::Map<String, Json>> = serde_json::from_str(s).map_err(err)?;
    v.iter()
        .map(|m| {
            let get = |k: &str| m.get(k).and_then(Json::as_str).unwrap_or("");
            let kind = match get("type") {
                "=" => MatchType::Equal,
                "!=" => MatchType::NotEqual,
                "=~" => MatchType::Regexp,
                "!~" => MatchType::NotRegexp,
                t => return Err(StateError(format!("bad matcher type {t:?}"))),
            };
            Matcher::new(kind, get("name"), get("value")).map_err(err)
        })
        .collect()
}

impl SqliteState {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Arc<Self>, StateError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StateError(format!("{}: {e}", dir.display())))?;
        }
        let conn =
            Connection::open(path).map_err(|e| StateError(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| StateError(format!("{}: {e}", path.display())))?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        match version.as_deref().map(str::parse::<i64>) {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(err)?;
            }
            Some(Ok(v)) if v <= SCHEMA_VERSION => {}
            Some(v) => {
                return Err(StateError(format!(
                    "{}: schema version {v:?} is newer than this medic understands ({SCHEMA_VERSION}); upgrade medic",
                    path.display()
                )))
            }
        }
        Ok(Arc::new(SqliteState {
            conn: Arc::new(Mutex::new(conn)),
            commits: Arc::default(),
        }))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delete(&self, table: &str, column: &str, keys: &[String]) -> Result<(), StateError> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(err)?;
        {
            // Table and column names are constants of this file, never input.
            let mut st = tx
                .prepare_cached(&format!("DELETE FROM {table} WHERE {column} = ?1"))
                .map_err(err)?;
            for k in keys {
                st.execute(params![k]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
}

fn wait_for_commit(
    conn: &Mutex<Connection>,
    commits: &GroupCommit,
    id: u64,
) -> Result<(), StateError> {
    let mut st = commits.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if st.committed >= id {
            return match st.failed.remove(&id) {
                Some(e) => Err(StateError(e)),
                None => Ok(()),
            };
        }
        if !st.leader {
            st.leader = true;
            let batch = std::mem::take(&mut st.queue);
            drop(st);
            let last = batch.last().map_or(id, |b| b.0);
            let result = {
                let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
                write_alerts(&mut c, &batch)
            };
            st = commits.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = result {
                for (t, _, _) in &batch {
                    st.failed.insert(*t, e.0.clone());
                }
            }
            st.committed = st.committed.max(last);
            st.leader = false;
            commits.done.notify_all();
            continue;
        }
        st = commits.done.wait(st).unwrap_or_else(|p| p.into_inner());
    }
}

fn write_alerts(c: &mut Connection, batch: &[Queued]) -> Result<(), StateError> {
    let tx = c.transaction().map_err(err)?;
    {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO alert_log (fingerprint, deleted, labels, annotations, starts_at, ends_at, updated_at, timeout, generator_url, value)
                 VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(err)?;
        for (_, alerts, _) in batch {
            for a in alerts {
                st.execute(params![
                    a.fingerprint().0 as i64,
                    labels_json(&a.labels),
                    serde_json::to_string(&a.annotations).map_err(err)?,
                    a.starts_at,
                    a.ends_at,
                    a.updated_at,
                    a.timeout,
                    a.generator_url,
                    a.value,
                ])
                .map_err(err)?;
            }
        }
    }
    for (_, _, events) in batch {
        insert_events(&tx, events)?;
    }
    tx.commit().map_err(err)
}

fn insert_events(tx: &rusqlite::Transaction, events: &[Event]) -> Result<(), StateError> {
    let mut st = tx
        .prepare_cached(
            "INSERT INTO history (at, kind, fingerprint, labels, group_key, receiver, detail, author)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(err)?;
    for e in events {
        st.execute(params![
            e.at,
            e.kind.as_str(),
            e.fingerprint.map(|f| f.0 as i64),
            labels_json(&e.labels),
            e.group_key,
            e.receiver,
            e.detail,
            e.author
        ])
        .map_err(err)?;
    }
    Ok(())
}

impl StateStore for SqliteState {
    fn load_alerts(&self) -> Result<Vec<Alert>, StateError> {
        type Row = (
            String,
            String,
            i64,
            i64,
            i64,
            bool,
            String,
            Option<f64>,
            i64,
            bool,
        );
        let rows = load_rows(
            &self.conn(),
            "SELECT labels, annotations, starts_at, ends_at, updated_at, timeout, generator_url, value, fingerprint, deleted
             FROM alert_log ORDER BY seq",
            |row: Row| Ok(row),
        )?;
        // The log's newest row per fingerprint wins; a deletion removes it.
        let mut out: std::collections::HashMap<i64, Alert> = std::collections::HashMap::new();
        for (l, a, starts_at, ends_at, updated_at, timeout, generator_url, value, fp, deleted) in
            rows
        {
            if deleted {
                out.remove(&fp);
                continue;
            }
            out.insert(
                fp,
                Alert {
                    labels: labels_from(&l)?,
                    annotations: serde_json::from_str(&a).map_err(err)?,
                    starts_at,
                    ends_at,
                    generator_url,
                    updated_at,
                    timeout,
                    value,
                    // Not stored: unknown until the sender sends the alert again.
                    source: Default::default(),
                },
            );
        }
        Ok(out.into_values().collect())
    }

    fn queue_alerts(&self, alerts: Vec<Arc<Alert>>, events: Vec<Event>) -> Ticket {
        let id = {
            let mut st = self.commits.state.lock().unwrap_or_else(|p| p.into_inner());
            st.next += 1;
            let id = st.next;
            st.queue.push((id, alerts, events));
            id
        };
        let (conn, commits) = (self.conn.clone(), self.commits.clone());
        Ticket::new(move || wait_for_commit(&conn, &commits, id))
    }

    fn delete_alerts(&self, fps: &[Fingerprint]) -> Result<(), StateError> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO alert_log (fingerprint, deleted, labels, annotations, starts_at, ends_at, updated_at, timeout, generator_url)
                     VALUES (?1, 1, '', '', 0, 0, 0, 0, '')",
                )
                .map_err(err)?;
            for f in fps {
                st.execute(params![f.0 as i64]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn load_silences(&self) -> Result<Vec<Silence>, StateError> {
        type Row = (String, String, i64, i64, i64, String, String, bool);
        load_rows(
            &self.conn(),
            "SELECT id, matchers, starts_at, ends_at, updated_at, created_by, comment, expire_on_resolve FROM silences",
            |(id, m, starts_at, ends_at, updated_at, created_by, comment, expire_on_resolve): Row| {
                Ok(Silence {
                    id,
                    matchers: matchers_from(&m)?,
                    starts_at,
                    ends_at,
                    updated_at,
                    created_by,
                    comment,
                    expire_on_resolve,
                })
            },
        )
    }

    fn save_silences(&self, s: &[Silence]) -> Result<(), StateError> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO silences (id, matchers, starts_at, ends_at, updated_at, created_by, comment, expire_on_resolve)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            for x in s {
                st.execute(params![
                    x.id,
                    matchers_json(&x.matchers),
                    x.starts_at,
                    x.ends_at,
                    x.updated_at,
                    x.created_by,
                    x.comment,
                    x.expire_on_resolve
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn delete_silences(&self, ids: &[String]) -> Result<(), StateError> {
        self.delete("silences", "id", ids)
    }

    fn load_nflog(&self) -> Result<Vec<nflog::Entry>, StateError> {
        type Row = (String, String, String, String, String, String, i64, i64);
        load_rows(
            &self.conn(),
            "SELECT key, group_key, receiver, integration, firing, resolved, timestamp, expires_at FROM nflog",
            |(key, group_key, receiver, integration, f, r, timestamp, expires_at): Row| {
                Ok(nflog::Entry {
                    key,
                    group_key,
                    receiver,
                    integration,
                    firing: fps_from(&f)?,
                    resolved: fps_from(&r)?,
                    timestamp,
                    expires_at,
                })
            },
        )
    }

    fn save_nflog(&self, e: &nflog::Entry) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO nflog (key, group_key, receiver, integration, firing, resolved, timestamp, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    e.key,
                    e.group_key,
                    e.receiver,
                    e.integration,
                    fps_json(&e.firing),
                    fps_json(&e.resolved),
                    e.timestamp,
                    e.expires_at
                ],
            )
            .map(|_| ())
            .map_err(err)
    }

    fn delete_nflog(&self, keys: &[String]) -> Result<(), StateError> {
        self.delete("nflog", "key", keys)
    }

    fn load_acks(&self) -> Result<Vec<Ack>, StateError> {
        type Row = (String, String, String, i64, i64, String);
        load_rows(
            &self.conn(),
            "SELECT group_key, author, comment, at, expires_at, firing FROM acks",
            |(group_key, author, comment, at, expires_at, f): Row| {
                Ok(Ack {
                    group_key,
                    author,
                    comment,
                    at,
                    expires_at,
                    firing: fps_from(&f)?,
                })
            },
        )
    }

    fn save_ack(&self, a: &Ack) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO acks (group_key, author, comment, at, expires_at, firing) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![a.group_key, a.author, a.comment, a.at, a.expires_at, fps_json(&a.firing)],
            )
            .map(|_| ())
            .map_err(err)
    }

    fn delete_acks(&self, keys: &[String]) -> Result<(), StateError> {
        self.delete("acks", "group_key", keys)
    }

    fn record(&self, events: &[Event]) -> Result<(), StateError> {
        let mut c = self.conn();
        let tx = c.transaction().map_err(err)?;
        insert_events(&tx, events)?;
        tx.commit().map_err(err)
    }

    fn history(&self, q: &HistoryQuery) -> Result<Vec<Event>, StateError> {
        let c = self.conn();
        // Every filter is a bound parameter; NULL means "any".
        let mut st = c
            .prepare(
                "SELECT at, kind, fingerprint, labels, group_key, receiver, detail, author FROM history
                 WHERE (?1 IS NULL OR fingerprint = ?1)
                   AND (?2 IS NULL OR group_key = ?2)
                   AND (?3 IS NULL OR at >= ?3)
                   AND (?4 IS NULL OR at <= ?4)
                 ORDER BY id DESC",
            )
            .map_err(err)?;
        let mut rows = st
            .query(params![
                q.fingerprint.map(|f| f.0 as i64),
                q.group_key,
                q.since,
                q.until
            ])
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let kind: String = r.get(1).map_err(err)?;
            let Some(kind) = EventKind::parse(&kind) else {
                continue;
            };
            let e = Event {
                at: r.get(0).map_err(err)?,
                kind,
                fingerprint: r
                    .get::<_, Option<i64>>(2)
                    .map_err(err)?
                    .map(|f| Fingerprint(f as u64)),
                labels: labels_from(&r.get::<_, String>(3).map_err(err)?)?,
                group_key: r.get(4).map_err(err)?,
                receiver: r.get(5).map_err(err)?,
                detail: r.get(6).map_err(err)?,
                author: r.get(7).map_err(err)?,
            };
            if q.accepts(&e) {
                out.push(e);
                if out.len() >= q.effective_limit() {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn prune_history(&self, before: i64) -> Result<usize, StateError> {
        let c = self.conn();
        // Compact the alert log when superseded rows outnumber live ones.
        let (rows, live): (i64, i64) = c
            .query_row(
                "SELECT count(*), count(DISTINCT fingerprint) FROM alert_log",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        if rows > 2 * live + 1000 {
            c.execute_batch(
                "BEGIN;
                 DELETE FROM alert_log WHERE seq NOT IN (SELECT max(seq) FROM alert_log GROUP BY fingerprint);
                 DELETE FROM alert_log WHERE deleted = 1;
                 COMMIT;",
            )
            .map_err(err)?;
        }
        c.execute("DELETE FROM history WHERE at < ?1", params![before])
            .map_err(err)
    }
}

#[cfg(test)]
mod tests;
