//! Silences, acknowledgements and history through the manager.

use super::*;

impl AlertManager {
    // ---- silences ----

    /// Creates or updates a silence; returns its id.
    pub fn set_silence(&self, s: Silence) -> Result<String, SilenceError> {
        let now = self.now();
        let mut g = self.lock();
        let (id, changed) = g.silences.set(s, now)?;
        let _order = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        drop(g);
        self.save_silences(&changed)?;
        Ok(id)
    }

    pub(super) fn save_silences(&self, changed: &[Silence]) -> Result<(), SilenceError> {
        self.state.save_silences(changed).map_err(|e| {
            self.metrics.state_errors.inc();
            SilenceError::Invalid(format!("not stored: {e}"))
        })
    }

    /// Expires a silence now.
    pub fn expire_silence(&self, id: &str) -> Result<(), SilenceError> {
        let now = self.now();
        let mut g = self.lock();
        let s = g.silences.expire(id, now)?;
        let _order = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        drop(g);
        self.save_silences(&[s])
    }

    /// All silences (or those matching `matchers` by equal matcher sets), newest first.
    pub fn silences(&self) -> Vec<Silence> {
        let mut v: Vec<Silence> = self.lock().silences.iter().cloned().collect();
        v.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
        v
    }

    pub fn silence(&self, id: &str) -> Option<Silence> {
        self.lock().silences.get(id).cloned()
    }

    // ---- acknowledgements ----

    /// Acknowledges a group for `duration` ms.
    pub fn ack(
        &self,
        group_key: &str,
        author: &str,
        comment: &str,
        duration: i64,
    ) -> Result<Ack, Error> {
        if author.trim().is_empty() {
            return Err(Error::Invalid("an acknowledgement needs an author".into()));
        }
        if duration <= 0 {
            return Err(Error::Invalid(
                "the acknowledgement's duration must be positive".into(),
            ));
        }
        let now = self.now();
        let mut g = self.lock();
        let grp = g
            .dispatcher
            .group_by_key(group_key)
            .ok_or_else(|| Error::NotFound(format!("no alert group {group_key:?}")))?;
        let mut firing: Vec<Fingerprint> = grp
            .alerts
            .values()
            .filter(|a| !a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();
        firing.sort();
        let labels = grp.labels.clone();
        let ack = Ack {
            group_key: group_key.to_string(),
            author: author.to_string(),
            comment: comment.to_string(),
            at: now,
            expires_at: now.saturating_add(duration),
            firing,
        };
        g.acks.insert(group_key.to_string(), ack.clone());
        let _order = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        drop(g);
        self.state.save_ack(&ack).map_err(|e| Error::State(e.0))?;
        self.record(&[Event {
            at: now,
            kind: EventKind::Acked,
            fingerprint: None,
            labels,
            group_key: group_key.to_string(),
            receiver: String::new(),
            detail: comment.to_string(),
            author: author.to_string(),
        }]);
        Ok(ack)
    }

    /// Removes an acknowledgement.
    pub fn unack(&self, group_key: &str) -> Result<(), Error> {
        let mut g = self.lock();
        if g.acks.remove(group_key).is_none() {
            return Err(Error::NotFound(format!(
                "group {group_key:?} is not acknowledged"
            )));
        }
        let _order = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        drop(g);
        self.state
            .delete_acks(&[group_key.to_string()])
            .map_err(|e| Error::State(e.0))?;
        self.wake.notify_one();
        Ok(())
    }

    /// Alert history.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<Event>, Error> {
        self.state.history(q).map_err(|e| Error::State(e.0))
    }
}
