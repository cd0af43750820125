//! The alert manager's state in PostgreSQL ([`StateStore`]): the same tables as the SQLite
//! store, except that alerts are one row per fingerprint (an upsert), PostgreSQL's MVCC
//! doing what the SQLite store's append-only log does.

use std::sync::Arc;

use medic_alert::ack::Ack;
use medic_alert::nflog;
use medic_alert::silence::Silence;
use medic_alert::state::{Event, EventKind, HistoryQuery, StateError, StateStore, Ticket};
use medic_alert::{Alert, Fingerprint};
use postgres::types::ToSql;
use postgres::{Client, Transaction};

use super::{describe, PgConn};
use crate::{fps_from, fps_json, labels_from, labels_json, matchers_from, matchers_json};

const MIGRATIONS: &[&str] = &["
CREATE TABLE alerts (
    fingerprint BIGINT PRIMARY KEY,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    timeout BOOLEAN NOT NULL,
    generator_url TEXT NOT NULL,
    value DOUBLE PRECISION
);
CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    expire_on_resolve BOOLEAN NOT NULL
);
CREATE TABLE nflog (
    key TEXT PRIMARY KEY,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    integration TEXT NOT NULL,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE acks (
    group_key TEXT PRIMARY KEY,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    firing TEXT NOT NULL
);
CREATE TABLE history (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    fingerprint BIGINT,
    labels TEXT NOT NULL,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    detail TEXT NOT NULL,
    author TEXT NOT NULL
);
CREATE INDEX history_at ON history(at);
CREATE INDEX history_group ON history(group_key) WHERE group_key <> '';
"];

/// The alert manager's state in PostgreSQL.
pub struct PgState {
    conn: PgConn,
}

fn err(e: impl std::fmt::Display) -> StateError {
    StateError(e.to_string())
}

impl PgState {
    /// Connects to `url` and brings the schema up to date.
    pub fn open(url: &str) -> Result<Arc<Self>, StateError> {
        let conn = PgConn::open(url, "alerts", MIGRATIONS).map_err(StateError)?;
        Ok(Arc::new(PgState { conn }))
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, String> + Send + 'static,
    ) -> Result<T, StateError> {
        self.conn.run_raw(f).map_err(StateError)
    }

    /// Deletes the rows of `table` whose `column` is one of `keys`, in one statement.
    fn delete(
        &self,
        table: &'static str,
        column: &'static str,
        keys: &[String],
    ) -> Result<(), StateError> {
        let keys = keys.to_vec();
        self.run(move |c| {
            // Table and column names are constants of this file, never input.
            c.execute(
                &format!("DELETE FROM {table} WHERE {column} = ANY($1)"),
                &[&keys],
            )
            .map(|_| ())
            .map_err(|e| describe(&e))
        })
    }
}

/// Reads every row of `sql` and converts each.
fn load<T: Send + 'static>(
    s: &PgState,
    sql: &'static str,
    convert: impl Fn(&postgres::Row) -> Result<T, StateError> + Send + 'static,
) -> Result<Vec<T>, StateError> {
    let rows = s.run(move |c| c.query(sql, &[]).map_err(|e| describe(&e)))?;
    rows.iter().map(convert).collect()
}

/// Upserts the alerts in one statement (arrays unnested), the newest of each fingerprint
/// winning when one appears twice.
fn write_alerts(tx: &mut Transaction, alerts: &[Arc<Alert>]) -> Result<(), String> {
    if alerts.is_empty() {
        return Ok(());
    }
    // The last write of a fingerprint within the batch wins, as in call order.
    let mut newest: std::collections::HashMap<i64, usize> = Default::default();
    for (i, a) in alerts.iter().enumerate() {
        newest.insert(a.fingerprint().0 as i64, i);
    }
    let mut idx: Vec<usize> = newest.into_values().collect();
    idx.sort_unstable();
    let mut cols = AlertColumns::default();
    for i in idx {
        let a = &alerts[i];
        cols.fingerprint.push(a.fingerprint().0 as i64);
        cols.labels.push(labels_json(&a.labels));
        cols.annotations
            .push(serde_json::to_string(&a.annotations).map_err(|e| e.to_string())?);
        cols.starts_at.push(a.starts_at);
        cols.ends_at.push(a.ends_at);
        cols.updated_at.push(a.updated_at);
        cols.timeout.push(a.timeout);
        cols.generator_url.push(a.generator_url.clone());
        cols.value.push(a.value);
    }
    tx.execute(
        "INSERT INTO alerts (fingerprint, labels, annotations, starts_at, ends_at, updated_at, timeout, generator_url, value)
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::BOOLEAN[], $8::TEXT[], $9::DOUBLE PRECISION[])
         ON CONFLICT (fingerprint) DO UPDATE SET labels = EXCLUDED.labels,
             annotations = EXCLUDED.annotations, starts_at = EXCLUDED.starts_at,
             ends_at = EXCLUDED.ends_at, updated_at = EXCLUDED.updated_at,
             timeout = EXCLUDED.timeout, generator_url = EXCLUDED.generator_url,
             value = EXCLUDED.value",
        &[
            &cols.fingerprint,
            &cols.labels,
            &cols.annotations,
            &cols.starts_at,
            &cols.ends_at,
            &cols.updated_at,
            &cols.timeout,
            &cols.generator_url,
            &cols.value,
        ],
    )
    .map_err(|e| describe(&e))?;
    Ok(())
}

/// Alerts as columns, for one `UNNEST`.
#[derive(Default)]
struct AlertColumns {
    fingerprint: Vec<i64>,
    labels: Vec<String>,
    annotations: Vec<String>,
    starts_at: Vec<i64>,
    ends_at: Vec<i64>,
    updated_at: Vec<i64>,
    timeout: Vec<bool>,
    generator_url: Vec<String>,
    value: Vec<Option<f64>>,
}

/// Appends the events in one statement, in order (their ids increase in array order).
fn insert_events(tx: &mut Transaction, events: &[Event]) -> Result<(), String> {
    if events.is_empty() {
        return Ok(());
    }
    let at: Vec<i64> = events.iter().map(|e| e.at).collect();
    let kind: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let fp: Vec<Option<i64>> = events
        .iter()
        .map(|e| e.fingerprint.map(|f| f.0 as i64))
        .collect();
    let labels: Vec<String> = events.iter().map(|e| labels_json(&e.labels)).collect();
    let group: Vec<&str> = events.iter().map(|e| e.group_key.as_str()).collect();
    let receiver: Vec<&str> = events.iter().map(|e| e.receiver.as_str()).collect();
    let detail: Vec<&str> = events.iter().map(|e| e.detail.as_str()).collect();
    let author: Vec<&str> = events.iter().map(|e| e.author.as_str()).collect();
    tx.execute(
        "INSERT INTO history (at, kind, fingerprint, labels, group_key, receiver, detail, author)
         SELECT at, kind, fingerprint, labels, group_key, receiver, detail, author
         FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[])
             WITH ORDINALITY AS e(at, kind, fingerprint, labels, group_key, receiver, detail, author, n)
         ORDER BY n",
        &[&at, &kind, &fp, &labels, &group, &receiver, &detail, &author],
    )
    .map_err(|e| describe(&e))?;
    Ok(())
}

fn event_from(r: &postgres::Row) -> Result<Option<Event>, StateError> {
    let kind: String = r.try_get(1).map_err(err)?;
    let Some(kind) = EventKind::parse(&kind) else {
        return Ok(None);
    };
    Ok(Some(Event {
        at: r.try_get(0).map_err(err)?,
        kind,
        fingerprint: r
            .try_get::<_, Option<i64>>(2)
            .map_err(err)?
            .map(|f| Fingerprint(f as u64)),
        labels: labels_from(r.try_get(3).map_err(err)?)?,
        group_key: r.try_get(4).map_err(err)?,
        receiver: r.try_get(5).map_err(err)?,
        detail: r.try_get(6).map_err(err)?,
        author: r.try_get(7).map_err(err)?,
    }))
}

impl StateStore for PgState {
    fn load_alerts(&self) -> Result<Vec<Alert>, StateError> {
        load(
            self,
            "SELECT labels, annotations, starts_at, ends_at, updated_at, timeout, generator_url, value FROM alerts",
            |r| {
                Ok(Alert {
                    labels: labels_from(r.try_get(0).map_err(err)?)?,
                    annotations: serde_json::from_str(r.try_get(1).map_err(err)?).map_err(err)?,
                    starts_at: r.try_get(2).map_err(err)?,
                    ends_at: r.try_get(3).map_err(err)?,
                    updated_at: r.try_get(4).map_err(err)?,
                    timeout: r.try_get(5).map_err(err)?,
                    generator_url: r.try_get(6).map_err(err)?,
                    value: r.try_get(7).map_err(err)?,
                    // Not stored: unknown until the sender sends the alert again.
                    source: Default::default(),
                })
            },
        )
    }

    fn queue_alerts(&self, alerts: Vec<Arc<Alert>>, events: Vec<Event>) -> Ticket {
        // The connection's thread runs jobs in the order queued, so the caller may queue under
        // its own lock and wait outside it.
        let answer = self.conn.submit(move |c| {
            let mut tx = c.transaction().map_err(|e| describe(&e))?;
            write_alerts(&mut tx, &alerts)?;
            insert_events(&mut tx, &events)?;
            tx.commit().map_err(|e| describe(&e))
        });
        Ticket::new(move || {
            answer
                .recv()
                .map_err(|_| StateError("postgresql: the connection thread is gone".into()))?
                .map_err(StateError)
        })
    }

    fn delete_alerts(&self, fps: &[Fingerprint]) -> Result<(), StateError> {
        let fps: Vec<i64> = fps.iter().map(|f| f.0 as i64).collect();
        self.run(move |c| {
            c.execute("DELETE FROM alerts WHERE fingerprint = ANY($1)", &[&fps])
                .map(|_| ())
                .map_err(|e| describe(&e))
        })
    }

    fn load_silences(&self) -> Result<Vec<Silence>, StateError> {
        load(
            self,
            "SELECT id, matchers, starts_at, ends_at, updated_at, created_by, comment, expire_on_resolve FROM silences",
            |r| {
                Ok(Silence {
                    id: r.try_get(0).map_err(err)?,
                    matchers: matchers_from(r.try_get(1).map_err(err)?)?,
                    starts_at: r.try_get(2).map_err(err)?,
                    ends_at: r.try_get(3).map_err(err)?,
                    updated_at: r.try_get(4).map_err(err)?,
                    created_by: r.try_get(5).map_err(err)?,
                    comment: r.try_get(6).map_err(err)?,
                    expire_on_resolve: r.try_get(7).map_err(err)?,
                })
            },
        )
    }

    fn save_silences(&self, s: &[Silence]) -> Result<(), StateError> {
        let s = s.to_vec();
        self.run(move |c| {
            let mut tx = c.transaction().map_err(|e| describe(&e))?;
            let st = tx
                .prepare(
                    "INSERT INTO silences (id, matchers, starts_at, ends_at, updated_at, created_by, comment, expire_on_resolve)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (id) DO UPDATE SET matchers = EXCLUDED.matchers,
                         starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
                         updated_at = EXCLUDED.updated_at, created_by = EXCLUDED.created_by,
                         comment = EXCLUDED.comment, expire_on_resolve = EXCLUDED.expire_on_resolve",
                )
                .map_err(|e| describe(&e))?;
            for x in &s {
                tx.execute(
                    &st,
                    &[
                        &x.id,
                        &matchers_json(&x.matchers),
                        &x.starts_at,
                        &x.ends_at,
                        &x.updated_at,
                        &x.created_by,
                        &x.comment,
                        &x.expire_on_resolve,
                    ],
                )
                .map_err(|e| describe(&e))?;
            }
            tx.commit().map_err(|e| describe(&e))
        })
    }

    fn delete_silences(&self, ids: &[String]) -> Result<(), StateError> {
        self.delete("silences", "id", ids)
    }

    fn load_nflog(&self) -> Result<Vec<nflog::Entry>, StateError> {
        load(
            self,
            "SELECT key, group_key, receiver, integration, firing, resolved, timestamp, expires_at FROM nflog",
            |r| {
                Ok(nflog::Entry {
                    key: r.try_get(0).map_err(err)?,
                    group_key: r.try_get(1).map_err(err)?,
                    receiver: r.try_get(2).map_err(err)?,
                    integration: r.try_get(3).map_err(err)?,
                    firing: fps_from(r.try_get(4).map_err(err)?)?,
                    resolved: fps_from(r.try_get(5).map_err(err)?)?,
                    timestamp: r.try_get(6).map_err(err)?,
                    expires_at: r.try_get(7).map_err(err)?,
                })
            },
        )
    }

    fn save_nflog(&self, e: &nflog::Entry) -> Result<(), StateError> {
        let e = e.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO nflog (key, group_key, receiver, integration, firing, resolved, timestamp, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (key) DO UPDATE SET group_key = EXCLUDED.group_key,
                     receiver = EXCLUDED.receiver, integration = EXCLUDED.integration,
                     firing = EXCLUDED.firing, resolved = EXCLUDED.resolved,
                     timestamp = EXCLUDED.timestamp, expires_at = EXCLUDED.expires_at",
                &[
                    &e.key,
                    &e.group_key,
                    &e.receiver,
                    &e.integration,
                    &fps_json(&e.firing),
                    &fps_json(&e.resolved),
                    &e.timestamp,
                    &e.expires_at,
                ],
            )
            .map(|_| ())
            .map_err(|e| describe(&e))
        })
    }

    fn delete_nflog(&self, keys: &[String]) -> Result<(), StateError> {
        self.delete("nflog", "key", keys)
    }

    fn load_acks(&self) -> Result<Vec<Ack>, StateError> {
        load(
            self,
            "SELECT group_key, author, comment, at, expires_at, firing FROM acks",
            |r| {
                Ok(Ack {
                    group_key: r.try_get(0).map_err(err)?,
                    author: r.try_get(1).map_err(err)?,
                    comment: r.try_get(2).map_err(err)?,
                    at: r.try_get(3).map_err(err)?,
                    expires_at: r.try_get(4).map_err(err)?,
                    firing: fps_from(r.try_get(5).map_err(err)?)?,
                })
            },
        )
    }

    fn save_ack(&self, a: &Ack) -> Result<(), StateError> {
        let a = a.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO acks (group_key, author, comment, at, expires_at, firing) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (group_key) DO UPDATE SET author = EXCLUDED.author,
                     comment = EXCLUDED.comment, at = EXCLUDED.at,
                     expires_at = EXCLUDED.expires_at, firing = EXCLUDED.firing",
                &[&a.group_key, &a.author, &a.comment, &a.at, &a.expires_at, &fps_json(&a.firing)],
            )
            .map(|_| ())
            .map_err(|e| describe(&e))
        })
    }

    fn delete_acks(&self, keys: &[String]) -> Result<(), StateError> {
        self.delete("acks", "group_key", keys)
    }

    fn record(&self, events: &[Event]) -> Result<(), StateError> {
        let events = events.to_vec();
        self.run(move |c| {
            let mut tx = c.transaction().map_err(|e| describe(&e))?;
            insert_events(&mut tx, &events)?;
            tx.commit().map_err(|e| describe(&e))
        })
    }

    fn history(&self, q: &HistoryQuery) -> Result<Vec<Event>, StateError> {
        let q = q.clone();
        let rows = self.run(move |c| {
            let fp = q.fingerprint.map(|f| f.0 as i64);
            let params: [&(dyn ToSql + Sync); 4] = [&fp, &q.group_key, &q.since, &q.until];
            // Every filter is a bound parameter; NULL means "any". Rows stream, and reading
            // stops at the query's limit of accepted events.
            let rows = c
                .query_raw(
                    "SELECT at, kind, fingerprint, labels, group_key, receiver, detail, author FROM history
                     WHERE ($1::BIGINT IS NULL OR fingerprint = $1)
                       AND ($2::TEXT IS NULL OR group_key = $2)
                       AND ($3::BIGINT IS NULL OR at >= $3)
                       AND ($4::BIGINT IS NULL OR at <= $4)
                     ORDER BY id DESC",
                    params,
                )
                .map_err(|e| describe(&e))?;
            let mut out = Vec::new();
            let mut rows = rows;
            while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)
                .map_err(|e| describe(&e))?
            {
                let Some(e) = event_from(&r).map_err(|e| e.0)? else {
                    continue;
                };
                if q.accepts(&e) {
                    out.push(e);
                    if out.len() >= q.effective_limit() {
                        break;
                    }
                }
            }
            Ok(out)
        })?;
        Ok(rows)
    }

    fn prune_history(&self, before: i64) -> Result<usize, StateError> {
        self.run(move |c| {
            c.execute("DELETE FROM history WHERE at < $1", &[&before])
                .map(|n| n as usize)
                .map_err(|e| describe(&e))
        })
    }
}
