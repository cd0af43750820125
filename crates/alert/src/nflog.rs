//! The notification log: what was last sent to each receiver integration for each group, so
//! nothing is sent twice (also across restarts) and repeats follow `repeat_interval`.

use std::collections::{HashMap, HashSet};

use crate::types::Fingerprint;

/// What was last sent for one (group, receiver integration).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `group_key` + receiver + integration, see [`entry_key`].
    pub key: String,
    pub group_key: String,
    pub receiver: String,
    /// The integration and its position in the receiver: `webhook[0]`.
    pub integration: String,
    pub firing: Vec<Fingerprint>,
    pub resolved: Vec<Fingerprint>,
    /// When it was sent (ms).
    pub timestamp: i64,
    /// When the entry may be forgotten (ms).
    pub expires_at: i64,
}

/// The key of an entry.
pub fn entry_key(group_key: &str, receiver: &str, integration: &str) -> String {
    format!("{group_key}\u{1f}{receiver}\u{1f}{integration}")
}

impl Entry {
    fn firing_superset_of(&self, firing: &HashSet<Fingerprint>) -> bool {
        let have: HashSet<_> = self.firing.iter().collect();
        firing.iter().all(|f| have.contains(f))
    }

    fn resolved_superset_of(&self, resolved: &HashSet<Fingerprint>) -> bool {
        let have: HashSet<_> = self.resolved.iter().collect();
        resolved.iter().all(|f| have.contains(f))
    }
}

/// Alertmanager's `DedupStage.needsUpdate`: whether a group with these firing and resolved
/// alerts must be sent again to an integration whose last message was `entry`.
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &HashSet<Fingerprint>,
    resolved: &HashSet<Fingerprint>,
    send_resolved: bool,
    repeat_interval: i64,
    now: i64,
) -> bool {
    let Some(e) = entry else {
        // Never notified: only if something fires.
        return !firing.is_empty();
    };
    if !e.firing_superset_of(firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell the receiver if it knew of firing alerts (also without
        // send_resolved, so the log forgets them).
        return !e.firing.is_empty();
    }
    if send_resolved && !e.resolved_superset_of(resolved) {
        return true;
    }
    e.timestamp + repeat_interval <= now
}

/// The log.
#[derive(Debug, Default)]
pub struct Nflog {
    entries: HashMap<String, Entry>,
}

impl Nflog {
    pub fn from_saved(saved: Vec<Entry>) -> Self {
        Nflog {
            entries: saved.into_iter().map(|e| (e.key.clone(), e)).collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn log(&mut self, e: Entry) {
        self.entries.insert(e.key.clone(), e);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets expired entries; returns their keys.
    pub fn gc(&mut self, now: i64) -> Vec<String> {
        let old: Vec<String> = self
            .entries
            .values()
            .filter(|e| e.expires_at <= now)
            .map(|e| e.key.clone())
            .collect();
        for k in &old {
            self.entries.remove(k);
        }
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(xs: &[u64]) -> HashSet<Fingerprint> {
        xs.iter().map(|x| Fingerprint(*x)).collect()
    }

    fn entry(firing: &[u64], resolved: &[u64], ts: i64) -> Entry {
        Entry {
            key: "k".into(),
            group_key: "g".into(),
            receiver: "r".into(),
            integration: "webhook[0]".into(),
            firing: firing.iter().map(|x| Fingerprint(*x)).collect(),
            resolved: resolved.iter().map(|x| Fingerprint(*x)).collect(),
            timestamp: ts,
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn dedup_decisions_match_alertmanager() {
        // First notification only if something fires.
        assert!(needs_update(None, &set(&[1]), &set(&[]), true, 100, 0));
        assert!(!needs_update(None, &set(&[]), &set(&[1]), true, 100, 0));
        let e = entry(&[1, 2], &[], 0);
        // Same firing set: only after the repeat interval.
        assert!(!needs_update(
            Some(&e),
            &set(&[1, 2]),
            &set(&[]),
            true,
            100,
            99
        ));
        assert!(needs_update(
            Some(&e),
            &set(&[1, 2]),
            &set(&[]),
            true,
            100,
            100
        ));
        // A subset firing with a new resolved alert: only with send_resolved.
        assert!(needs_update(Some(&e), &set(&[1]), &set(&[2]), true, 100, 1));
        assert!(!needs_update(
            Some(&e),
            &set(&[1]),
            &set(&[2]),
            false,
            100,
            1
        ));
        // A new firing alert always.
        assert!(needs_update(
            Some(&e),
            &set(&[1, 3]),
            &set(&[]),
            false,
            100,
            1
        ));
        // All resolved: always, so the log is cleared; but not if nothing was known firing.
        assert!(needs_update(
            Some(&e),
            &set(&[]),
            &set(&[1, 2]),
            false,
            100,
            1
        ));
        let quiet = entry(&[], &[1], 0);
        assert!(!needs_update(
            Some(&quiet),
            &set(&[]),
            &set(&[1]),
            true,
            100,
            1
        ));
    }
}
