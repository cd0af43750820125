//! What the alert manager keeps across restarts, behind a trait so the embedded SQLite store
//! (crate `medic-state`) and a future PostgreSQL one are interchangeable; [`MemState`] keeps it
//! in memory (tests, or `--no-state`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ack::Ack;
use crate::nflog;
use crate::silence::Silence;
use crate::types::{Alert, Fingerprint};

/// A durable-state failure (disk full, database locked, corrupt file).
#[derive(Debug, Clone, thiserror::Error)]
#[error("alert state: {0}")]
pub struct StateError(pub String);

/// One entry of alert history: what happened to an alert or group, when.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When (ms).
    pub at: i64,
    pub kind: EventKind,
    /// The alert's fingerprint, for alert events.
    pub fingerprint: Option<Fingerprint>,
    /// The alert's labels (alert events) or the group's labels (group events).
    pub labels: medic_model::Labels,
    /// The group key, for group events (notifications, acks, escalations).
    pub group_key: String,
    /// Receiver and integration (`team-x/webhook[0]`), for notifications.
    pub receiver: String,
    /// Free text: an error, an ack's comment, a silence id.
    pub detail: String,
    /// Who (acks, silences).
    pub author: String,
}

/// The kinds of history events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Firing,
    Resolved,
    Notified,
    NotifyFailed,
    Acked,
    AckExpired,
    Escalated,
    Silenced,
    Flapping,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Firing => "firing",
            EventKind::Resolved => "resolved",
            EventKind::Notified => "notified",
            EventKind::NotifyFailed => "notify_failed",
            EventKind::Acked => "acked",
            EventKind::AckExpired => "ack_expired",
            EventKind::Escalated => "escalated",
            EventKind::Silenced => "silenced",
            EventKind::Flapping => "flapping",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            EventKind::Firing,
            EventKind::Resolved,
            EventKind::Notified,
            EventKind::NotifyFailed,
            EventKind::Acked,
            EventKind::AckExpired,
            EventKind::Escalated,
            EventKind::Silenced,
            EventKind::Flapping,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Which history to return; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub fingerprint: Option<Fingerprint>,
    pub group_key: Option<String>,
    /// Events whose labels match all of these.
    pub matchers: Vec<medic_model::Matcher>,
    pub kinds: Vec<EventKind>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// At most this many, newest first (0: a default of 1000).
    pub limit: usize,
}

impl HistoryQuery {
    /// Whether an event passes the filters (stores may pre-filter and use this for the rest).
    pub fn accepts(&self, e: &Event) -> bool {
        self.fingerprint.is_none_or(|f| e.fingerprint == Some(f))
            && self.group_key.as_ref().is_none_or(|g| &e.group_key == g)
            && crate::matchers::matches_all(&self.matchers, &e.labels)
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self.since.is_none_or(|s| e.at >= s)
            && self.until.is_none_or(|u| e.at <= u)
    }

    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 {
            1000
        } else {
            self.limit
        }
    }
}

/// Waits for queued writes to be durable.
pub struct Ticket(Box<dyn FnOnce() -> Result<(), StateError> + Send>);

impl Ticket {
    /// A ticket for writes that are already done (or failed).
    pub fn done(r: Result<(), StateError>) -> Ticket {
        Ticket(Box::new(move || r))
    }

    /// A ticket that waits by running `f`.
    pub fn new(f: impl FnOnce() -> Result<(), StateError> + Send + 'static) -> Ticket {
        Ticket(Box::new(f))
    }

    /// Blocks until the writes are durable.
    pub fn wait(self) -> Result<(), StateError> {
        (self.0)()
    }
}

/// Durable state of the alert manager. Each call is atomic: all of it is stored or none.
pub trait StateStore: Send + Sync {
    fn load_alerts(&self) -> Result<Vec<Alert>, StateError>;
    /// Queues alerts (new or changed) and the history events they caused for writing, in
    /// call order; the ticket's `wait` returns once they are durable. Stores may commit
    /// several queued calls in one transaction (group commit), so the caller can queue under
    /// its own lock, to keep the order, and wait outside it.
    fn queue_alerts(&self, alerts: Vec<Arc<Alert>>, events: Vec<Event>) -> Ticket;
    fn delete_alerts(&self, fps: &[Fingerprint]) -> Result<(), StateError>;
    fn load_silences(&self) -> Result<Vec<Silence>, StateError>;
    fn save_silences(&self, s: &[Silence]) -> Result<(), StateError>;
    fn delete_silences(&self, ids: &[String]) -> Result<(), StateError>;
    fn load_nflog(&self) -> Result<Vec<nflog::Entry>, StateError>;
    fn save_nflog(&self, e: &nflog::Entry) -> Result<(), StateError>;
    fn delete_nflog(&self, keys: &[String]) -> Result<(), StateError>;
    fn load_acks(&self) -> Result<Vec<Ack>, StateError>;
    fn save_ack(&self, a: &Ack) -> Result<(), StateError>;
    fn delete_acks(&self, group_keys: &[String]) -> Result<(), StateError>;
    fn record(&self, events: &[Event]) -> Result<(), StateError>;
    fn history(&self, q: &HistoryQuery) -> Result<Vec<Event>, StateError>;
    /// Drops history older than `before` (ms); returns how many events went.
    fn prune_history(&self, before: i64) -> Result<usize, StateError>;
}

/// State kept in memory only: lost on restart.
#[derive(Default)]
pub struct MemState {
    inner: Mutex<MemInner>,
}

#[derive(Default)]
struct MemInner {
    alerts: HashMap<Fingerprint, Alert>,
    silences: HashMap<String, Silence>,
    nflog: HashMap<String, nflog::Entry>,
    acks: HashMap<String, Ack>,
    events: Vec<Event>,
}

impl MemState {
    fn with<T>(&self, f: impl FnOnce(&mut MemInner) -> T) -> Result<T, StateError> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| StateError("poisoned".into()))?;
        Ok(f(&mut g))
    }
}

impl StateStore for MemState {
    fn load_alerts(&self) -> Result<Vec<Alert>, StateError> {
        self.with(|m| m.alerts.values().cloned().collect())
    }
    fn queue_alerts(&self, alerts: Vec<Arc<Alert>>, events: Vec<Event>) -> Ticket {
        Ticket::done(self.with(|m| {
            for a in alerts {
                m.alerts.insert(a.fingerprint(), Alert::clone(&a));
            }
            m.events.extend(events);
        }))
    }
    fn delete_alerts(&self, fps: &[Fingerprint]) -> Result<(), StateError> {
        self.with(|m| {
            for f in fps {
                m.alerts.remove(f);
            }
        })
    }
    fn load_silences(&self) -> Result<Vec<Silence>, StateError> {
        self.with(|m| m.silences.values().cloned().collect())
    }
    fn save_silences(&self, s: &[Silence]) -> Result<(), StateError> {
        self.with(|m| {
            for x in s {
                m.silences.insert(x.id.clone(), x.clone());
            }
        })
    }
    fn delete_silences(&self, ids: &[String]) -> Result<(), StateError> {
        self.with(|m| {
            for id in ids {
                m.silences.remove(id);
            }
        })
    }
    fn load_nflog(&self) -> Result<Vec<nflog::Entry>, StateError> {
        self.with(|m| m.nflog.values().cloned().collect())
    }
    fn save_nflog(&self, e: &nflog::Entry) -> Result<(), StateError> {
        self.with(|m| {
            m.nflog.insert(e.key.clone(), e.clone());
        })
    }
    fn delete_nflog(&self, keys: &[String]) -> Result<(), StateError> {
        self.with(|m| {
            for k in keys {
                m.nflog.remove(k);
            }
        })
    }
    fn load_acks(&self) -> Result<Vec<Ack>, StateError> {
        self.with(|m| m.acks.values().cloned().collect())
    }
    fn save_ack(&self, a: &Ack) -> Result<(), StateError> {
        self.with(|m| {
            m.acks.insert(a.group_key.clone(), a.clone());
        })
    }
    fn delete_acks(&self, keys: &[String]) -> Result<(), StateError> {
        self.with(|m| {
            for k in keys {
                m.acks.remove(k);
            }
        })
    }
    fn record(&self, events: &[Event]) -> Result<(), StateError> {
        self.with(|m| m.events.extend_from_slice(events))
    }
    fn history(&self, q: &HistoryQuery) -> Result<Vec<Event>, StateError> {
        self.with(|m| {
            m.events
                .iter()
                .rev()
                .filter(|e| q.accepts(e))
                .take(q.effective_limit())
                .cloned()
                .collect()
        })
    }
    fn prune_history(&self, before: i64) -> Result<usize, StateError> {
        self.with(|m| {
            let n = m.events.len();
            m.events.retain(|e| e.at >= before);
            n - m.events.len()
        })
    }
}
