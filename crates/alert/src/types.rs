//! Alerts as the alert manager holds them (Alertmanager's `types.Alert`), their fingerprints,
//! and the merge rule for an alert received again.

use std::collections::BTreeMap;
use std::fmt;

use medic_model::Labels;

pub use medic_model::{
    format_rfc3339_millis as rfc3339_millis, format_rfc3339_nano as rfc3339_nano,
};

/// A label set's identity, computed as Alertmanager computes it (FNV-1a over the sorted
/// names and values), so fingerprints match the ones Alertmanager shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
const FNV_PRIME: u64 = 1_099_511_628_211;
const SEPARATOR: u8 = 0xff;

impl Fingerprint {
    /// The fingerprint of a label set.
    pub fn of(labels: &Labels) -> Self {
        if labels.is_empty() {
            return Fingerprint(FNV_OFFSET);
        }
        let mut h = FNV_OFFSET;
        let mut feed = |b: &[u8]| {
            for &x in b {
                h ^= u64::from(x);
                h = h.wrapping_mul(FNV_PRIME);
            }
        };
        for l in labels.iter() {
            feed(l.name.as_bytes());
            feed(&[SEPARATOR]);
            feed(l.value.as_bytes());
            feed(&[SEPARATOR]);
        }
        Fingerprint(h)
    }

    /// Parses the 16-digit hex form.
    pub fn parse(s: &str) -> Option<Self> {
        u64::from_str_radix(s, 16).ok().map(Fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Annotations: free text keyed by name, sorted.
pub type Annotations = BTreeMap<String, String>;

/// One alert. Times are milliseconds since the epoch; `ends_at == 0` never happens once an
/// alert is stored (the API sets a timeout end, see [`Alert::timeout`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Annotations,
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
    /// When the alert manager last received it.
    pub updated_at: i64,
    /// `ends_at` was not given by the sender but set to receipt + `resolve_timeout`.
    pub timeout: bool,
    /// The value that fired it, when medic's own rules sent it (templates show it).
    pub value: Option<f64>,
    /// Who sent it in: whether it may start repairs depends on it (`trigger.sources` of a
    /// playbook). Not kept in the state file: an alert loaded at start is `Unknown` until its
    /// sender sends it again.
    pub source: AlertSource,
}

/// Who sent an alert in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AlertSource {
    /// Not known: loaded from the state file, or made by medic for people.
    #[default]
    Unknown,
    /// medic's alerting rules.
    Rules,
    /// medic's anomaly rules.
    Anomaly,
    /// Posted through the API by `identity`; `may_trigger`: the identity's role holds the
    /// permission to trigger repairs for the alert's labels.
    Api { identity: String, may_trigger: bool },
}

impl AlertSource {
    /// Made by medic itself (its alerting or anomaly rules).
    pub fn is_own(&self) -> bool {
        matches!(self, AlertSource::Rules | AlertSource::Anomaly)
    }
}

/// Whether an alert is firing or resolved at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    /// `"firing"` or `"resolved"`, as in notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

impl Alert {
    /// The alert's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.labels)
    }

    /// The alert name (`alertname` label), or the empty string.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").unwrap_or("")
    }

    /// Whether it has resolved by `now`.
    pub fn resolved_at(&self, now: i64) -> bool {
        self.ends_at != 0 && self.ends_at <= now
    }

    /// Firing or resolved at `now`.
    pub fn status(&self, now: i64) -> Status {
        if self.resolved_at(now) {
            Status::Resolved
        } else {
            Status::Firing
        }
    }

    /// Alertmanager's `Alert.Merge`: `self` is the stored alert, `newer` the one received. The
    /// younger alert wins, with the earliest start; an explicit end is not undone by a timeout.
    pub fn merge(&self, newer: &Alert) -> Alert {
        if newer.updated_at < self.updated_at {
            return newer.merge(self);
        }
        let mut res = newer.clone();
        if self.starts_at < newer.starts_at {
            res.starts_at = self.starts_at;
        }
        let newer_resolved = newer.ends_at != 0 && newer.ends_at <= newer.updated_at;
        let self_resolved = self.ends_at != 0 && self.ends_at <= self.updated_at;
        if newer_resolved {
            // The latest explicit resolve time wins if both are resolved.
            if self_resolved && self.ends_at > newer.ends_at {
                res.ends_at = self.ends_at;
            }
        } else if self.ends_at > newer.ends_at && !self.timeout {
            // A non-timeout end always rules if it is the latest.
            res.ends_at = self.ends_at;
        }
        res
    }

    /// Whether the received alert `newer` overlaps this one's activity range, in which case
    /// Alertmanager merges them; otherwise the new one replaces the old (a new incident).
    pub fn overlaps(&self, newer: &Alert) -> bool {
        (newer.ends_at > self.starts_at && newer.ends_at < self.ends_at)
            || (newer.starts_at > self.starts_at && newer.starts_at < self.ends_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_alertmanager() {
        // Values printed by Alertmanager 0.25 / prometheus/common model.LabelSet.Fingerprint.
        assert_eq!(
            Fingerprint::of(&Labels::empty()).to_string(),
            "cbf29ce484222325"
        );
        let l = Labels::from_pairs([("alertname", "a")]);
        // FNV-1a of "alertname\xffa\xff", computed independently below.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in b"alertname\xffa\xff" {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        assert_eq!(Fingerprint::of(&l).0, h);
    }

    fn alert(starts: i64, ends: i64, updated: i64, timeout: bool) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "x")]),
            annotations: Annotations::new(),
            starts_at: starts,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: updated,
            timeout,
            value: None,
            source: Default::default(),
        }
    }

    #[test]
    fn merge_keeps_the_earliest_start_and_explicit_ends() {
        let old = alert(100, 500, 100, true);
        let new = alert(200, 700, 200, true);
        let m = old.merge(&new);
        assert_eq!((m.starts_at, m.ends_at), (100, 700));
        // An explicit resolve in the newer alert wins.
        let resolve = alert(200, 250, 300, false);
        let m = old.merge(&resolve);
        assert_eq!((m.starts_at, m.ends_at), (100, 250));
        // An older explicit end later than the newer timeout one is kept.
        let explicit = alert(100, 900, 100, false);
        let m = explicit.merge(&new);
        assert_eq!(m.ends_at, 900);
    }
}
