//! Incidents: what ties alert groups, people and repairs into one story. A deterministic core —
//! every call takes the time and returns what happened ([`Effect`]s); the shell around it
//! stores, notifies and serves (`crates/alert/tests/it/incidents.rs` drives it on a simulated
//! clock).
//!
//! Lifecycle: triggered → acknowledged → mitigated → resolved → closed. An alert group opens an
//! incident when the [`Policy`] says so, at its P-level; groups agreeing on the correlation
//! labels join an incident active within the window. An incident whose groups have all
//! resolved resolves; one that fires again before it is closed is reopened. A repair verified
//! before anyone acknowledged marks it auto-mitigated. Unacknowledged past `respond_within`, or
//! neither mitigated nor resolved past `escalate_after`, it is escalated — once each.

pub mod policy;

use std::collections::BTreeMap;

use medic_model::Labels;
use serde::{Deserialize, Serialize};

pub use policy::{Level, Policy, PolicySpec};

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Triggered,
    Acknowledged,
    Mitigated,
    Resolved,
    Closed,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Triggered => "triggered",
            Status::Acknowledged => "acknowledged",
            Status::Mitigated => "mitigated",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        })
    }
}

/// Who did something that was not a person: medic itself.
pub const MEDIC: &str = "medic";

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix ms.
    pub at: i64,
    pub who: String,
    /// `opened`, `alert_firing`, `alert_resolved`, `acknowledged`, `assigned`, `comment`,
    /// `mitigated`, `repair`, `resolved`, `reopened`, `closed`, `escalated`, `level_raised`.
    pub kind: String,
    pub detail: String,
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub title: String,
    pub level: Level,
    pub status: Status,
    /// The correlation labels shared by its groups (empty for one opened by hand).
    pub key: Vec<(String, String)>,
    /// Alert groups (their keys) that joined, and whether each is firing now.
    pub groups: BTreeMap<String, bool>,
    pub assignee: Option<String>,
    pub opened_at: i64,
    pub acknowledged_at: Option<i64>,
    pub mitigated_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    /// Mitigated by a verified repair before anyone acknowledged it.
    pub auto_mitigated: bool,
    /// Targets of its level, ms.
    pub respond_within_ms: i64,
    pub escalate_after_ms: i64,
    /// Escalations sent (`ack_overdue`, `unresolved`).
    pub escalations: Vec<String>,
    /// Status changes, in order: (when, new status).
    pub transitions: Vec<(i64, Status)>,
    pub timeline: Vec<Entry>,
    /// Last time anything happened (for the correlation window).
    pub last_activity: i64,
    /// Heal executions that worked on it (ids, in order), for the report's repair evidence.
    #[serde(default)]
    pub executions: Vec<String>,
    /// Timeline entries dropped to keep it within [`MAX_TIMELINE`] (the oldest after the
    /// opening go first).
    #[serde(default)]
    pub timeline_dropped: u64,
}

/// The most entries a timeline keeps: a group flapping for weeks inside one open incident must
/// not grow it without bound.
pub const MAX_TIMELINE: usize = 2000;

/// What a call did, for the shell to store, notify and count.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Opened {
        id: u64,
        level: Level,
    },
    Joined {
        id: u64,
        group: String,
    },
    StatusChanged {
        id: u64,
        from: Status,
        to: Status,
    },
    LevelRaised {
        id: u64,
        from: Level,
        to: Level,
    },
    /// `why`: `ack_overdue` or `unresolved`.
    Escalated {
        id: u64,
        why: &'static str,
    },
}

/// An alert group as the incident book sees it.
#[derive(Debug, Clone)]
pub struct GroupRef<'a> {
    /// The group's key (Alertmanager's group key).
    pub key: &'a str,
    /// The labels its alerts share (the group labels and common labels).
    pub labels: &'a Labels,
    /// A line for the timeline and the title: the alert names, say.
    pub summary: &'a str,
    /// When it began firing, as far as the shell knows (later than `now` counts as `now`).
    pub since: i64,
}

/// A step of an automatic repair, as the incident book sees it.
#[derive(Debug, Clone)]
pub struct RepairRef<'a> {
    /// When the step ended (its line goes into the timeline at that time).
    pub at: i64,
    /// The heal execution's id.
    pub execution: &'a str,
    /// Its trigger's labels (matched against the correlation labels).
    pub labels: &'a Labels,
    /// The alert groups its trigger alert is in (an incident holding one is concerned even
    /// when the labels lack a correlation label).
    pub groups: &'a [String],
    /// The line for the timeline.
    pub step: &'a str,
    /// The fix was verified.
    pub verified: bool,
}

/// What a person asks of an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Acknowledge,
    Assign(String),
    Comment(String),
    Mitigate,
    Resolve,
    Close,
}

/// A request that cannot be carried out, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IncidentError {
    #[error("no incident {0}")]
    Unknown(u64),
    #[error("incident {id} is {status}: cannot {action} it{hint}")]
    Transition {
        id: u64,
        status: Status,
        action: &'static str,
        hint: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Time in each state and the response figures of one incident, ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Opened to acknowledged (none if nobody acknowledged it).
    pub time_to_acknowledge: Option<i64>,
    /// Opened to mitigated.
    pub time_to_mitigate: Option<i64>,
    /// Opened to resolved.
    pub time_to_resolve: Option<i64>,
    pub time_in: BTreeMap<Status, i64>,
}

mod book;
pub mod feed;
pub use book::Book;
pub use feed::{Feed, GroupSnapshot};

impl Incident {
    fn note(&mut self, at: i64, who: &str, kind: &str, detail: impl Into<String>) {
        self.make_room();
        self.timeline.push(Entry {
            at,
            who: who.to_string(),
            kind: kind.to_string(),
            detail: detail.into(),
        });
        self.last_activity = self.last_activity.max(at);
    }

    /// A line at `at`, in time order among the lines already there (a repair step's line is
    /// read a moment after it happened).
    fn note_at(&mut self, at: i64, who: &str, kind: &str, detail: impl Into<String>) {
        self.make_room();
        let pos = self.timeline.partition_point(|e| e.at <= at);
        self.timeline.insert(
            pos,
            Entry {
                at,
                who: who.to_string(),
                kind: kind.to_string(),
                detail: detail.into(),
            },
        );
        self.last_activity = self.last_activity.max(at);
    }

    /// Drops the oldest entry after the opening when the timeline is full.
    fn make_room(&mut self) {
        if self.timeline.len() >= MAX_TIMELINE {
            self.timeline.remove(1.min(self.timeline.len() - 1));
            self.timeline_dropped += 1;
        }
    }

    /// Moves to `to`, stamping the times; `None` if already there.
    fn set_status(&mut self, at: i64, to: Status) -> Option<Effect> {
        let from = self.status;
        if from == to {
            return None;
        }
        self.status = to;
        self.transitions.push((at, to));
        match to {
            Status::Acknowledged => {
                self.acknowledged_at.get_or_insert(at);
            }
            Status::Mitigated => {
                self.mitigated_at.get_or_insert(at);
            }
            Status::Resolved => self.resolved_at = Some(at),
            Status::Closed => self.closed_at = Some(at),
            Status::Triggered => {
                // Reopened: it is unresolved again.
                self.resolved_at = None;
            }
        }
        Some(Effect::StatusChanged {
            id: self.id,
            from,
            to,
        })
    }

    /// MTTA, MTTM, MTTR and time in each state, up to `now` for the current one.
    pub fn figures(&self, now: i64) -> Figures {
        let mut time_in = BTreeMap::new();
        let mut since = (self.opened_at, Status::Triggered);
        for &(at, s) in &self.transitions {
            *time_in.entry(since.1).or_insert(0) += at - since.0;
            since = (at, s);
        }
        if since.1 != Status::Closed {
            *time_in.entry(since.1).or_insert(0) += (now - since.0).max(0);
        }
        Figures {
            time_to_acknowledge: self.acknowledged_at.map(|t| t - self.opened_at),
            time_to_mitigate: self.mitigated_at.map(|t| t - self.opened_at),
            time_to_resolve: self.resolved_at.map(|t| t - self.opened_at),
            time_in,
        }
    }
}
