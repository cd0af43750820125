//! Silences: matchers with a time range that mute the alerts they match, with Alertmanager's
//! rules for creating, updating in place or replacing, and expiring them. Pure state; the
//! manager persists what changes.

use std::collections::HashMap;

use medic_model::{Labels, Matcher};

use crate::matchers::matches_all;

/// One silence. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub comment: String,
    /// medic's extension (Alertmanager #1057): expire the silence once the alerts it muted
    /// have all resolved.
    pub expire_on_resolve: bool,
}

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// The state at `now`.
    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Whether it matches a label set (regardless of time).
    pub fn matches(&self, labels: &Labels) -> bool {
        matches_all(&self.matchers, labels)
    }

    fn same_matchers(&self, o: &Silence) -> bool {
        self.matchers.len() == o.matchers.len()
            && self
                .matchers
                .iter()
                .zip(&o.matchers)
                .all(|(a, b)| a.kind == b.kind && a.name == b.name && a.value == b.value)
    }
}

/// Why a silence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("silence {0} not found")]
    NotFound(String),
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
    #[error("invalid silence: {0}")]
    Invalid(String),
    /// Over `alerting.max_silences` (active and pending).
    #[error(
        "exceeded the maximum number of silences: {count} (limit: {limit}); expire some first"
    )]
    TooMany { count: usize, limit: usize },
    /// Over `alerting.max_silence_size_bytes`.
    #[error(
        "silence is {size} bytes, over the limit of {limit} (alerting.max_silence_size_bytes)"
    )]
    TooLarge { size: usize, limit: usize },
}

/// Alertmanager's silence limits (`--silences.max-silences`,
/// `--silences.max-silence-size-bytes`); 0: none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SilenceLimits {
    /// Active and pending silences at once.
    pub max_silences: usize,
    /// One silence's size: matcher names and values, comment and creator.
    pub max_silence_size_bytes: usize,
}

/// The size a silence counts for under [`SilenceLimits`]: its strings plus a few bytes per
/// field, close to its protobuf size in Alertmanager.
pub fn silence_size(s: &Silence) -> usize {
    let matchers: usize = s
        .matchers
        .iter()
        .map(|m| m.name.len() + m.value.len() + 6)
        .sum();
    s.id.len() + s.comment.len() + s.created_by.len() + matchers + 40
}

/// Checks what every stored silence must satisfy.
pub fn validate(s: &Silence) -> Result<(), SilenceError> {
    let bad = |m: &str| Err(SilenceError::Invalid(m.to_string()));
    if s.matchers.is_empty() {
        return bad("at least one matcher required");
    }
    for m in &s.matchers {
        if !medic_model::is_valid_label_name(&m.name) {
            return bad(&format!("invalid label name {:?}", m.name));
        }
    }
    if s.matchers.iter().all(|m| m.matches("")) {
        return bad("at least one matcher must not match the empty string");
    }
    if s.ends_at < s.starts_at {
        return bad("end time must not be before start time");
    }
    if s.created_by.is_empty() {
        return bad("creator information missing");
    }
    if s.comment.is_empty() {
        return bad("comment missing");
    }
    Ok(())
}

/// All silences, by id.
#[derive(Debug, Default)]
pub struct Silences {
    by_id: HashMap<String, Silence>,
    limits: SilenceLimits,
}

impl Silences {
    /// Silences as loaded from durable state.
    pub fn from_saved(saved: Vec<Silence>) -> Self {
        Silences {
            by_id: saved.into_iter().map(|s| (s.id.clone(), s)).collect(),
            limits: SilenceLimits::default(),
        }
    }

    /// Sets the limits new and changed silences must keep (existing ones stay).
    pub fn set_limits(&mut self, limits: SilenceLimits) {
        self.limits = limits;
    }

    fn check_limits(
        &self,
        s: &Silence,
        replacing: Option<&str>,
        now: i64,
    ) -> Result<(), SilenceError> {
        let l = self.limits;
        let size = silence_size(s);
        if l.max_silence_size_bytes > 0 && size > l.max_silence_size_bytes {
            return Err(SilenceError::TooLarge {
                size,
                limit: l.max_silence_size_bytes,
            });
        }
        if l.max_silences > 0 {
            let count = self
                .by_id
                .values()
                .filter(|x| {
                    Some(x.id.as_str()) != replacing && x.state(now) != SilenceState::Expired
                })
                .count();
            if count >= l.max_silences {
                return Err(SilenceError::TooMany {
                    count,
                    limit: l.max_silences,
                });
            }
        }
        Ok(())
    }

    /// Creates or updates a silence (Alertmanager's `Silences.Set`). A silence with an id is
    /// updated in place when only its end (or a pending silence's times) changed; otherwise
    /// the old one is expired and a new one with a new id takes its place. Returns the id and
    /// every silence that changed, to persist.
    pub fn set(
        &mut self,
        mut s: Silence,
        now: i64,
    ) -> Result<(String, Vec<Silence>), SilenceError> {
        validate(&s)?;
        let replacing = (!s.id.is_empty()).then(|| s.id.clone());
        self.check_limits(&s, replacing.as_deref(), now)?;
        let mut changed = Vec::new();
        if !s.id.is_empty() {
            let prev = self
                .by_id
                .get(&s.id)
                .cloned()
                .ok_or_else(|| SilenceError::NotFound(s.id.clone()))?;
            if can_update(&prev, &s, now) {
                s.updated_at = now;
                self.by_id.insert(s.id.clone(), s.clone());
                return Ok((s.id.clone(), vec![s]));
            }
            if prev.state(now) != SilenceState::Expired {
                changed.push(self.expire(&prev.id, now)?);
            }
        }
        s.id = uuid::Uuid::new_v4().to_string();
        s.starts_at = s.starts_at.max(now);
        s.updated_at = now;
        if s.ends_at < s.starts_at {
            return Err(SilenceError::Invalid(
                "end time must not be before start time".into(),
            ));
        }
        self.by_id.insert(s.id.clone(), s.clone());
        changed.push(s.clone());
        Ok((s.id, changed))
    }

    /// Expires a silence now. Pending silences end before they start.
    pub fn expire(&mut self, id: &str, now: i64) -> Result<Silence, SilenceError> {
        let s = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        match s.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Ok(s.clone())
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Ids of the active silences that mute `labels` at `now`, sorted.
    pub fn mutes(&self, labels: &Labels, now: i64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_id
            .values()
            .filter(|s| s.state(now) == SilenceState::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Drops silences that expired more than `retention` ago; returns their ids.
    pub fn gc(&mut self, now: i64, retention: i64) -> Vec<String> {
        let old: Vec<String> = self
            .by_id
            .values()
            .filter(|s| s.ends_at + retention <= now)
            .map(|s| s.id.clone())
            .collect();
        for id in &old {
            self.by_id.remove(id);
        }
        old
    }
}

/// Alertmanager's `canUpdate`: same matchers, and the time change allowed in this state.
fn can_update(prev: &Silence, new: &Silence, now: i64) -> bool {
    if !prev.same_matchers(new) {
        return false;
    }
    match prev.state(now) {
        SilenceState::Active => new.starts_at == prev.starts_at && new.ends_at >= now,
        SilenceState::Pending => new.starts_at >= now,
        SilenceState::Expired => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sil(id: &str, m: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: id.into(),
            matchers: crate::matchers::parse_matchers(m).unwrap(),
            starts_at: start,
            ends_at: end,
            updated_at: 0,
            created_by: "me".into(),
            comment: "c".into(),
            expire_on_resolve: false,
        }
    }

    #[test]
    fn lifecycle_follows_alertmanager() {
        let mut s = Silences::default();
        // A start in the past is moved to now.
        let (id, _) = s.set(sil("", "a=b", 0, 1000), 100).unwrap();
        assert_eq!(s.get(&id).unwrap().starts_at, 100);
        let l = Labels::from_pairs([("a", "b")]);
        assert_eq!(s.mutes(&l, 150), vec![id.clone()]);
        assert!(s.mutes(&Labels::from_pairs([("a", "c")]), 150).is_empty());
        // Extending an active silence keeps its id.
        let mut ext = s.get(&id).unwrap().clone();
        ext.ends_at = 2000;
        let (same, changed) = s.set(ext, 200).unwrap();
        assert_eq!((same.as_str(), changed.len()), (id.as_str(), 1));
        // Changing its matchers expires it and creates another.
        let mut other = s.get(&id).unwrap().clone();
        other.matchers = crate::matchers::parse_matchers("a=c").unwrap();
        let (new_id, changed) = s.set(other, 300).unwrap();
        assert_ne!(new_id, id);
        assert_eq!(changed.len(), 2);
        assert_eq!(s.get(&id).unwrap().state(300), SilenceState::Expired);
        // Expiring twice is an error; expiring a pending silence ends it before it starts.
        assert_eq!(
            s.expire(&id, 400),
            Err(SilenceError::AlreadyExpired(id.clone()))
        );
        let (p, _) = s.set(sil("", "x=y", 1000, 2000), 400).unwrap();
        let e = s.expire(&p, 500).unwrap();
        assert_eq!((e.starts_at, e.ends_at), (500, 500));
        assert!(matches!(
            s.set(sil("nope", "x=y", 0, 1), 0),
            Err(SilenceError::NotFound(_))
        ));
        // Garbage collection after the retention.
        assert_eq!(s.gc(500 + 10, 10).len(), 2);
    }

    #[test]
    fn refuses_silences_that_would_mute_everything() {
        let mut s = Silences::default();
        for (m, want) in [
            ("a=~.*", "must not match the empty string"),
            ("a=\"\"", "empty string"),
        ] {
            let e = s.set(sil("", m, 0, 10), 0).unwrap_err().to_string();
            assert!(e.contains(want), "{m}: {e}");
        }
        let mut no_comment = sil("", "a=b", 0, 10);
        no_comment.comment.clear();
        assert!(s.set(no_comment, 0).is_err());
    }
}
