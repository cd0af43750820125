//! Upkeep: silences that expire when their alerts resolve, and garbage collection of resolved alerts, groups and logs.

use super::*;

impl AlertManager {
    /// Expires `expire_on_resolve` silences once the alerts they silenced have all resolved.
    pub fn expire_resolved_silences(&self, now: i64) {
        let mut g = self.lock();
        let candidates: Vec<Silence> = g
            .silences
            .iter()
            .filter(|s| s.expire_on_resolve && s.state(now) == SilenceState::Active)
            .cloned()
            .collect();
        if candidates.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        for s in candidates {
            let firing = g
                .alerts
                .values()
                .any(|a| !a.resolved_at(now) && s.matches(&a.labels));
            if firing {
                g.eor_seen.insert(s.id.clone());
            } else if g.eor_seen.remove(&s.id) {
                if let Ok(x) = g.silences.expire(&s.id, now) {
                    info!(silence = %s.id, "silence expired: the alerts it silenced have resolved");
                    expired.push(x);
                }
            }
        }
        if expired.is_empty() {
            return;
        }
        let _order = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        drop(g);
        if let Err(e) = self.state.save_silences(&expired) {
            self.metrics.state_errors.inc();
            warn!(error = %e, "cannot store expired silences");
        }
    }

    /// Drops resolved alerts, expired silences, log entries and acks, and old history; updates
    /// the gauges.
    pub fn gc(&self, now: i64) {
        let mut g = self.lock();
        let resolved: Vec<Arc<Alert>> = g
            .alerts
            .values()
            .filter(|a| a.resolved_at(now))
            .cloned()
            .collect();
        for a in &resolved {
            g.alerts.remove(&a.fingerprint());
            g.inhibitor.forget(a);
        }
        g.interned.retain(|s| Arc::strong_count(s) > 1);
        let horizon = now - 4 * self.opts.flap_hold;
        g.flaps.retain(|_, times| {
            times.retain(|t| *t >= horizon);
            !times.is_empty()
        });
        let silences = g.silences.gc(now, self.opts.data_retention);
        let nflog = g.nflog.gc(now);
        let acks: Vec<String> = g
            .acks
            .values()
            .filter(|a| a.expires_at <= now)
            .map(|a| a.group_key.clone())
            .collect();
        for k in &acks {
            g.acks.remove(k);
        }
        // Gauges.
        let (mut active, mut suppressed) = (0i64, 0i64);
        for a in g.alerts.values() {
            if g.silences.mutes(&a.labels, now).is_empty()
                && g.inhibitor.mutes(&a.labels, now).is_none()
            {
                active += 1;
            } else {
                suppressed += 1;
            }
        }
        self.metrics
            .alerts
            .get_or_create(&StateLabel {
                state: "active".into(),
            })
            .set(active);
        self.metrics
            .alerts
            .get_or_create(&StateLabel {
                state: "suppressed".into(),
            })
            .set(suppressed);
        let mut by_state: HashMap<SilenceState, i64> = HashMap::new();
        for s in g.silences.iter() {
            *by_state.entry(s.state(now)).or_default() += 1;
        }
        for st in [
            SilenceState::Active,
            SilenceState::Pending,
            SilenceState::Expired,
        ] {
            self.metrics
                .silences
                .get_or_create(&StateLabel {
                    state: st.as_str().into(),
                })
                .set(by_state.get(&st).copied().unwrap_or(0));
        }
        self.metrics
            .groups
            .set(g.dispatcher.groups().count() as i64);
        self.metrics.nflog_entries.set(g.nflog.len() as i64);
        let _order = self.persist.lock().unwrap_or_else(|p| p.into_inner());
        drop(g);
        let fps: Vec<Fingerprint> = resolved.iter().map(|a| a.fingerprint()).collect();
        let results = [
            (!fps.is_empty()).then(|| self.state.delete_alerts(&fps)),
            (!silences.is_empty()).then(|| self.state.delete_silences(&silences)),
            (!nflog.is_empty()).then(|| self.state.delete_nflog(&nflog)),
            (!acks.is_empty()).then(|| self.state.delete_acks(&acks)),
            Some(
                self.state
                    .prune_history(now - self.opts.history_retention)
                    .map(|_| ()),
            ),
        ];
        for r in results.into_iter().flatten() {
            if let Err(e) = r {
                self.metrics.state_errors.inc();
                warn!(error = %e, "alert state garbage collection failed");
            }
        }
    }
}
