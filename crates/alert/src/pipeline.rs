//! The notification pipeline's decisions, as stages over one flushed group (see STYLE.md):
//! inhibit → active/mute time windows → silence → acknowledgement → dedup against the
//! notification log, per receiver integration, plus escalation. Pure: the manager sends what
//! [`prepare`] returns and logs what was delivered.

use std::collections::{HashMap, HashSet};

use medic_model::{Labels, Matcher};

use crate::ack::Ack;
use crate::dispatch::Flush;
use crate::inhibit::Inhibitor;
use crate::matchers::matches_all;
use crate::nflog::{self, Nflog};
use crate::route::Route;
use crate::silence::Silences;
use crate::timeinterval::{any_contains, TimeInterval};
use crate::types::{Alert, Fingerprint};

/// What a receiver integration is, for the pipeline's decisions.
#[derive(Debug, Clone)]
pub struct IntegrationInfo {
    /// `webhook[0]`.
    pub name: String,
    pub send_resolved: bool,
}

/// One step of an escalation policy: page `receiver` when a group with a firing alert matching
/// `matchers` has fired for `after` without being acknowledged.
#[derive(Debug, Clone)]
pub struct EscalationStep {
    pub policy: String,
    pub matchers: Vec<Matcher>,
    pub after: i64,
    pub receiver: String,
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub group_key: String,
    pub receiver: String,
    /// Index into the receiver's integrations.
    pub integration: usize,
    pub integration_name: String,
    pub group_labels: Labels,
    /// The alerts in the message.
    pub alerts: Vec<Alert>,
    /// The group's firing and resolved alerts (what the log records).
    pub firing: Vec<Fingerprint>,
    pub resolved: Vec<Fingerprint>,
    /// False when only resolved alerts remain and the integration does not send resolved
    /// ones: nothing is sent, but the log records it (as Alertmanager does).
    pub send: bool,
    pub repeat_interval: i64,
    /// The escalation policy this message comes from, if any.
    pub escalation: Option<String>,
}

/// Why a flush sent nothing, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// Outside the route's active time intervals or inside a mute interval.
    TimeMuted,
    /// Every alert is inhibited or silenced.
    AllMuted,
    /// Nothing new for any integration.
    UpToDate,
}

/// The state the stages read.
pub struct Stages<'a> {
    pub inhibitor: &'a Inhibitor,
    pub silences: &'a Silences,
    pub intervals: &'a HashMap<String, Vec<TimeInterval>>,
    pub nflog: &'a Nflog,
    pub acks: &'a HashMap<String, Ack>,
    pub receivers: &'a HashMap<String, Vec<IntegrationInfo>>,
    pub escalations: &'a [EscalationStep],
    /// Alerts under repair by the heal engine, with the note to show.
    pub repairs: &'a HashMap<Fingerprint, String>,
}

/// Decides what to send for a flushed group.
pub fn prepare(
    flush: &Flush,
    route: &Route,
    st: &Stages,
    now: i64,
) -> Result<Vec<Delivery>, Quiet> {
    // Inhibition.
    let alerts: Vec<&Alert> = flush
        .alerts
        .iter()
        .filter(|a| st.inhibitor.mutes(&a.labels, now).is_none())
        .collect();
    if time_muted(route, st, now) {
        return Err(Quiet::TimeMuted);
    }
    // Silences.
    let alerts: Vec<&Alert> = alerts
        .into_iter()
        .filter(|a| st.silences.mutes(&a.labels, now).is_empty())
        .collect();
    if alerts.is_empty() {
        return Err(Quiet::AllMuted);
    }
    let b = Batch::new(flush, route, st, alerts, now);
    let mut out = Vec::new();
    b.add(&flush.receiver, None, &mut out);
    b.escalate(&mut out);
    if out.is_empty() {
        Err(Quiet::UpToDate)
    } else {
        Ok(out)
    }
}

/// The whole group is held outside its route's active intervals or inside mute ones.
fn time_muted(route: &Route, st: &Stages, now: i64) -> bool {
    let inside = |n: &String| st.intervals.get(n).is_some_and(|i| any_contains(i, now));
    let active = &route.opts.active_time_intervals;
    (!active.is_empty() && !active.iter().any(inside))
        || route.opts.mute_time_intervals.iter().any(inside)
}

/// A flushed group's alerts after inhibition and silences, and what follows from them.
struct Batch<'a> {
    flush: &'a Flush,
    route: &'a Route,
    st: &'a Stages<'a>,
    alerts: Vec<&'a Alert>,
    firing: HashSet<Fingerprint>,
    resolved: HashSet<Fingerprint>,
    /// Acknowledged, or every firing alert under repair: not repeated, not escalated.
    acked: bool,
    repeat: i64,
    now: i64,
}

impl<'a> Batch<'a> {
    fn new(
        flush: &'a Flush,
        route: &'a Route,
        st: &'a Stages<'a>,
        alerts: Vec<&'a Alert>,
        now: i64,
    ) -> Self {
        let firing: HashSet<Fingerprint> = alerts
            .iter()
            .filter(|a| !a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();
        let resolved: HashSet<Fingerprint> = alerts
            .iter()
            .filter(|a| a.resolved_at(now))
            .map(|a| a.fingerprint())
            .collect();
        let acked = st
            .acks
            .get(&flush.key)
            .is_some_and(|a| a.covers(&firing, now));
        // A group whose every firing alert is being repaired is treated like an acknowledged
        // one.
        let acked =
            acked || (!firing.is_empty() && firing.iter().all(|f| st.repairs.contains_key(f)));
        // An acknowledged group is not repeated; changes still go out.
        let repeat = if acked {
            i64::MAX / 4
        } else {
            route.opts.repeat_interval
        };
        Batch {
            flush,
            route,
            st,
            alerts,
            firing,
            resolved,
            acked,
            repeat,
            now,
        }
    }

    /// A delivery per integration of `receiver` that has something new to say.
    fn add(&self, receiver: &str, escalation: Option<&str>, out: &mut Vec<Delivery>) {
        let (st, now) = (self.st, self.now);
        let Some(integrations) = st.receivers.get(receiver) else {
            return;
        };
        for (i, integ) in integrations.iter().enumerate() {
            let key = nflog::entry_key(&self.flush.key, receiver, &integ.name);
            if !nflog::needs_update(
                st.nflog.get(&key),
                &self.firing,
                &self.resolved,
                integ.send_resolved,
                self.repeat,
                now,
            ) {
                continue;
            }
            let msg: Vec<Alert> = self
                .alerts
                .iter()
                .filter(|a| integ.send_resolved || !a.resolved_at(now))
                .map(|a| {
                    let mut a = Alert::clone(a);
                    if let Some(note) = st.repairs.get(&a.fingerprint()) {
                        if !a.resolved_at(now) {
                            a.annotations.insert("medic_repair".into(), note.clone());
                        }
                    }
                    a
                })
                .collect();
            out.push(Delivery {
                group_key: self.flush.key.clone(),
                receiver: receiver.to_string(),
                integration: i,
                integration_name: integ.name.clone(),
                group_labels: self.flush.group_labels.clone(),
                send: !msg.is_empty(),
                alerts: msg,
                firing: sorted(&self.firing),
                resolved: sorted(&self.resolved),
                repeat_interval: self.route.opts.repeat_interval,
                escalation: escalation.map(str::to_string),
            });
        }
    }

    /// Escalation receivers whose deadline passed for a firing, unacknowledged group; and
    /// those already paged, who hear about the resolution too.
    fn escalate(&self, out: &mut Vec<Delivery>) {
        let (st, flush, now) = (self.st, self.flush, self.now);
        if !self.acked && !self.firing.is_empty() {
            let firing_alerts: Vec<&&Alert> =
                self.alerts.iter().filter(|a| !a.resolved_at(now)).collect();
            let started = firing_alerts
                .iter()
                .map(|a| a.starts_at)
                .min()
                .unwrap_or(now);
            for step in st.escalations {
                if step.receiver == flush.receiver || now < started + step.after {
                    continue;
                }
                if firing_alerts
                    .iter()
                    .any(|a| matches_all(&step.matchers, &a.labels))
                {
                    self.add(&step.receiver, Some(&step.policy), out);
                }
            }
        } else if !self.firing.is_empty() || !self.resolved.is_empty() {
            for step in st.escalations {
                if step.receiver != flush.receiver
                    && st.receivers.get(&step.receiver).is_some_and(|is| {
                        is.iter().any(|i| {
                            st.nflog
                                .get(&nflog::entry_key(&flush.key, &step.receiver, &i.name))
                                .is_some_and(|e| !e.firing.is_empty())
                        })
                    })
                {
                    self.add(&step.receiver, Some(&step.policy), out);
                }
            }
        }
    }
}

fn sorted(s: &HashSet<Fingerprint>) -> Vec<Fingerprint> {
    let mut v: Vec<_> = s.iter().copied().collect();
    v.sort();
    v
}

/// The pipeline for one flush, as the alert manager runs it: flapping alerts are held, then
/// the flush goes through [`prepare`] on its route. The manager and the timeline tests both
/// call this.
pub fn plan_flush(
    flush: &mut Flush,
    route: &Route,
    flaps: &HashMap<Fingerprint, Vec<i64>>,
    flap_hold: i64,
    st: &Stages,
    now: i64,
) -> Result<Vec<Delivery>, Quiet> {
    hold_flapping(&mut flush.alerts, flaps, flap_hold, now);
    prepare(flush, route, st, now)
}

/// Holds flapping alerts (labelled `flapping="true"` by medic's rules): one that resolved
/// less than `hold` ago is still shown as firing, so its flips do not each make a message, and
/// each flapping alert carries a `flapping` annotation summarising its recent state changes.
pub fn hold_flapping(
    alerts: &mut [Alert],
    flaps: &HashMap<Fingerprint, Vec<i64>>,
    hold: i64,
    now: i64,
) {
    for a in alerts.iter_mut() {
        if a.labels.get("flapping") != Some("true") {
            continue;
        }
        let changes = flaps.get(&a.fingerprint()).map_or(0, Vec::len);
        let held = a.resolved_at(now) && now - a.ends_at < hold;
        if held {
            a.ends_at = 0;
        }
        let minutes = hold / 60_000;
        a.annotations.insert(
            "flapping".into(),
            if held {
                format!("flapping: {changes} state changes seen; resolved for now, held until it stays resolved for {minutes}m")
            } else {
                format!("flapping: {changes} state changes seen; state changes within {minutes}m are held back")
            },
        );
    }
}

/// The log entry for a delivered message.
pub fn log_entry(d: &Delivery, now: i64) -> nflog::Entry {
    nflog::Entry {
        key: nflog::entry_key(&d.group_key, &d.receiver, &d.integration_name),
        group_key: d.group_key.clone(),
        receiver: d.receiver.clone(),
        integration: d.integration_name.clone(),
        firing: d.firing.clone(),
        resolved: d.resolved.clone(),
        timestamp: now,
        expires_at: now
            .saturating_add(d.repeat_interval.saturating_mul(2))
            .max(now + 3_600_000),
    }
}
