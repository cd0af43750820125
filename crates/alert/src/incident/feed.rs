//! What the alert manager's groups did since the last look, fed to the [`Book`]: a group seen
//! for the first time fires, one gone has resolved, a new ack or silence goes on the timeline.
//! Pure: the shell takes a snapshot of the groups and the time, and stores what changed.

use std::collections::{BTreeMap, BTreeSet};

use medic_model::Labels;

use super::{Book, Effect, GroupRef, Status, MEDIC};

/// One firing alert group as the alert manager holds it now.
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    /// Alertmanager's group key.
    pub key: String,
    /// The group labels and the labels all its firing alerts share.
    pub labels: Labels,
    /// The alert names, for titles and the timeline.
    pub summary: String,
    /// Fingerprints of its firing alerts.
    pub fingerprints: Vec<String>,
    /// Every firing alert is silenced or inhibited: such a group opens no incident.
    pub suppressed: bool,
    /// Silences muting its alerts.
    pub silenced_by: Vec<String>,
    /// Who acknowledged the group, while the ack holds.
    pub acked_by: Option<String>,
    /// When its alerts began firing (the shell bounds how far back this may reach).
    pub since: i64,
}

#[derive(Debug, Clone, Default)]
struct Seen {
    fingerprints: Vec<String>,
    acked: bool,
    silences: BTreeSet<String>,
}

/// The groups seen firing at the last look.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    firing: BTreeMap<String, Seen>,
}

impl Feed {
    /// A feed that believes the book: every group its open incidents hold as firing is taken
    /// to be firing, so one that resolved while medic was stopped resolves at the first look.
    pub fn from_book(book: &Book) -> Feed {
        let mut firing = BTreeMap::new();
        for inc in book.all().filter(|i| i.status != Status::Closed) {
            for (g, on) in &inc.groups {
                if *on {
                    firing.insert(g.clone(), Seen::default());
                }
            }
        }
        Feed { firing }
    }

    /// Applies the difference between the last look and `groups` to `book`.
    pub fn sync(&mut self, book: &mut Book, now: i64, groups: &[GroupSnapshot]) -> Vec<Effect> {
        let mut effects = Vec::new();
        let current: BTreeSet<&str> = groups.iter().map(|g| g.key.as_str()).collect();
        let gone: Vec<String> = self
            .firing
            .keys()
            .filter(|k| !current.contains(k.as_str()))
            .cloned()
            .collect();
        for key in gone {
            self.firing.remove(&key);
            effects.extend(book.group_resolved(now, &key));
        }
        for g in groups {
            let known = self.firing.contains_key(&g.key);
            if !known && g.suppressed && book.holding(&g.key).is_empty() {
                // Muted before it opened anything: people chose not to hear about it.
                continue;
            }
            let seen = self.firing.entry(g.key.clone()).or_default();
            seen.fingerprints.clone_from(&g.fingerprints);
            if !known {
                // A new firing episode; one still firing from the last look changes nothing
                // (an incident resolved by hand meanwhile stays resolved).
                effects.extend(book.group_firing(
                    now,
                    &GroupRef {
                        key: &g.key,
                        labels: &g.labels,
                        summary: &g.summary,
                        since: g.since,
                    },
                ));
            }
            match &g.acked_by {
                Some(by) if !seen.acked => {
                    seen.acked = true;
                    effects.extend(book.group_acked(now, &g.key, by));
                }
                None => seen.acked = false,
                _ => {}
            }
            for s in &g.silenced_by {
                if seen.silences.insert(s.clone()) {
                    for id in book.holding(&g.key) {
                        let detail = format!("alert group {} silenced by silence {s}", g.key);
                        book.record(now, id, MEDIC, "silenced", &detail);
                    }
                }
            }
        }
        effects
    }

    /// The groups holding the alert with this fingerprint (as of the last look).
    pub fn groups_of(&self, fingerprint: &str) -> Vec<String> {
        self.firing
            .iter()
            .filter(|(_, s)| s.fingerprints.iter().any(|f| f == fingerprint))
            .map(|(k, _)| k.clone())
            .collect()
    }
}
