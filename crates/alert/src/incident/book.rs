//! The set of incidents and the rules that move them.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Action, Effect, GroupRef, Incident, IncidentError, Level, Policy, RepairRef, Status, MEDIC,
};

/// Every incident, and the policy that opens and joins them.
#[derive(Debug, Clone)]
pub struct Book {
    policy: Policy,
    incidents: BTreeMap<u64, Incident>,
    next_id: u64,
    /// Incidents changed since the last [`Book::take_dirty`]: what the shell saves.
    dirty: BTreeSet<u64>,
}

impl Book {
    /// An empty book under `policy`.
    pub fn new(policy: Policy) -> Book {
        Book {
            policy,
            incidents: BTreeMap::new(),
            next_id: 1,
            dirty: BTreeSet::new(),
        }
    }

    /// A book holding `incidents` (loaded from the store).
    pub fn with_incidents(policy: Policy, incidents: Vec<Incident>) -> Book {
        let next_id = incidents.iter().map(|i| i.id + 1).max().unwrap_or(1);
        Book {
            policy,
            incidents: incidents.into_iter().map(|i| (i.id, i)).collect(),
            next_id,
            dirty: BTreeSet::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy (a reload); incidents keep the levels and targets they have.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The incidents changed since the last call, to be saved.
    pub fn take_dirty(&mut self) -> Vec<&Incident> {
        let ids = std::mem::take(&mut self.dirty);
        ids.iter().filter_map(|id| self.incidents.get(id)).collect()
    }

    /// Forgets closed incidents closed before `before`; their ids (to delete from the store).
    pub fn prune(&mut self, before: i64) -> Vec<u64> {
        let gone: Vec<u64> = self
            .incidents
            .values()
            .filter(|i| i.status == Status::Closed && i.closed_at.is_some_and(|t| t < before))
            .map(|i| i.id)
            .collect();
        for id in &gone {
            self.incidents.remove(id);
            self.dirty.remove(id);
        }
        gone
    }

    /// Adds a line to incident `id`'s timeline (notifications sent, silences seen).
    pub fn record(&mut self, now: i64, id: u64, who: &str, kind: &str, detail: &str) {
        if let Some(inc) = self.incidents.get_mut(&id) {
            inc.note(now, who, kind, detail);
            self.dirty.insert(id);
        }
    }

    /// One incident.
    pub fn get(&self, id: u64) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// Every incident, oldest first.
    pub fn all(&self) -> impl DoubleEndedIterator<Item = &Incident> {
        self.incidents.values()
    }

    fn open(
        &mut self,
        now: i64,
        title: String,
        level: Level,
        key: Vec<(String, String)>,
        targets: (i64, i64),
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.incidents.insert(
            id,
            Incident {
                id,
                title,
                level,
                status: Status::Triggered,
                key,
                groups: BTreeMap::new(),
                assignee: None,
                opened_at: now,
                acknowledged_at: None,
                mitigated_at: None,
                resolved_at: None,
                closed_at: None,
                auto_mitigated: false,
                respond_within_ms: targets.0,
                escalate_after_ms: targets.1,
                escalations: Vec::new(),
                transitions: Vec::new(),
                timeline: Vec::new(),
                last_activity: now,
                executions: Vec::new(),
                timeline_dropped: 0,
            },
        );
        self.dirty.insert(id);
        id
    }

    /// The incident a group with `key` joins: not closed, same correlation key, active within
    /// the window. The newest such one.
    fn joinable(&self, now: i64, key: &[(String, String)]) -> Option<u64> {
        let window = self.policy.window.as_millis() as i64;
        self.incidents
            .values()
            .rev()
            .find(|i| {
                i.status != Status::Closed
                    && !i.key.is_empty()
                    && i.key == key
                    && now - i.last_activity <= window
            })
            .map(|i| i.id)
    }

    /// An alert group started firing (or fired again). Joins the incident it belongs to,
    /// opens one if the policy says so, or does nothing.
    pub fn group_firing(&mut self, now: i64, g: &GroupRef<'_>) -> Vec<Effect> {
        // Dated when it began firing: the shell looks a moment later.
        let now = g.since.min(now);
        let mut effects = Vec::new();
        let rule = self.policy.rule_for(g.labels).cloned();
        let key = self.policy.key(g.labels);
        // A group already in an open incident only updates it.
        let member = self
            .incidents
            .values()
            .rev()
            .find(|i| i.status != Status::Closed && i.groups.contains_key(g.key))
            .map(|i| i.id);
        let id = match (
            member,
            key.as_deref().and_then(|k| self.joinable(now, k)),
            &rule,
        ) {
            (Some(id), _, _) | (None, Some(id), _) => id,
            (None, None, Some(r)) => {
                let targets = (
                    r.respond_within.as_millis() as i64,
                    r.escalate_after.as_millis() as i64,
                );
                let id = self.open(
                    now,
                    g.summary.to_string(),
                    r.level,
                    key.clone().unwrap_or_default(),
                    targets,
                );
                effects.push(Effect::Opened { id, level: r.level });
                let inc = self.incidents.get_mut(&id).expect("just opened");
                inc.note(
                    now,
                    MEDIC,
                    "opened",
                    format!("{} at {}", g.summary, r.level),
                );
                id
            }
            (None, None, None) => return effects,
        };
        self.dirty.insert(id);
        let inc = self.incidents.get_mut(&id).expect("found above");
        if inc.groups.insert(g.key.to_string(), true) != Some(true) {
            if member.is_none() && !effects.iter().any(|e| matches!(e, Effect::Opened { .. })) {
                effects.push(Effect::Joined {
                    id,
                    group: g.key.to_string(),
                });
            }
            inc.note(
                now,
                MEDIC,
                "alert_firing",
                format!("{} ({})", g.summary, g.key),
            );
        }
        if let Some(r) = &rule {
            if r.level < inc.level {
                effects.push(Effect::LevelRaised {
                    id,
                    from: inc.level,
                    to: r.level,
                });
                inc.note(
                    now,
                    MEDIC,
                    "level_raised",
                    format!("{} → {}", inc.level, r.level),
                );
                inc.level = r.level;
                inc.respond_within_ms = r.respond_within.as_millis() as i64;
                inc.escalate_after_ms = r.escalate_after.as_millis() as i64;
            }
        }
        if matches!(inc.status, Status::Resolved | Status::Mitigated) {
            let was = inc.status;
            effects.extend(inc.set_status(now, Status::Triggered));
            inc.note(now, MEDIC, "reopened", format!("fired again while {was}"));
        }
        effects
    }

    /// An alert group resolved; an incident whose groups have all resolved resolves.
    pub fn group_resolved(&mut self, now: i64, group_key: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        for inc in self.incidents.values_mut() {
            if inc.status == Status::Closed || inc.groups.get(group_key) != Some(&true) {
                continue;
            }
            inc.groups.insert(group_key.to_string(), false);
            self.dirty.insert(inc.id);
            inc.note(now, MEDIC, "alert_resolved", group_key.to_string());
            if inc.groups.values().all(|firing| !firing) && inc.status != Status::Resolved {
                effects.extend(inc.set_status(now, Status::Resolved));
                inc.note(now, MEDIC, "resolved", "every alert group resolved");
            }
        }
        effects
    }

    /// Opens an incident by hand. `key`: labels saying what it is about (`service`, …); alert
    /// groups agreeing with it on the correlation labels join it within the window.
    pub fn open_by_hand(
        &mut self,
        now: i64,
        by: &str,
        title: &str,
        level: Level,
        key: Vec<(String, String)>,
    ) -> Result<(u64, Vec<Effect>), IncidentError> {
        if title.trim().is_empty() {
            return Err(IncidentError::Invalid("title: must not be empty".into()));
        }
        if let Some((n, _)) = key
            .iter()
            .find(|(n, _)| !medic_model::is_valid_label_name(n))
        {
            return Err(IncidentError::Invalid(format!(
                "labels: {n:?} is not a label name"
            )));
        }
        // Only the correlation labels make a key groups can join.
        let labels = medic_model::Labels::from_pairs(key.clone());
        let key = self.policy.key(&labels).unwrap_or(key);
        let targets = self
            .policy
            .rules
            .iter()
            .find(|r| r.level == level)
            .map_or((0, 0), |r| {
                (
                    r.respond_within.as_millis() as i64,
                    r.escalate_after.as_millis() as i64,
                )
            });
        let id = self.open(now, title.to_string(), level, key, targets);
        let inc = self.incidents.get_mut(&id).expect("just opened");
        inc.note(now, by, "opened", format!("by hand at {level}"));
        self.dirty.insert(id);
        Ok((id, vec![Effect::Opened { id, level }]))
    }

    /// A person's action on incident `id`.
    pub fn act(
        &mut self,
        now: i64,
        id: u64,
        by: &str,
        action: Action,
    ) -> Result<Vec<Effect>, IncidentError> {
        let inc = self
            .incidents
            .get_mut(&id)
            .ok_or(IncidentError::Unknown(id))?;
        // Marked changed before the checks: a refused request changes nothing, and saving an
        // unchanged incident is harmless.
        self.dirty.insert(id);
        let status = inc.status;
        let refuse = |action: &'static str, hint: &'static str| IncidentError::Transition {
            id,
            status,
            action,
            hint,
        };
        let closed_hint = "; a closed incident only takes no changes";
        let (to, kind, detail) = match &action {
            Action::Comment(text) => {
                if text.trim().is_empty() {
                    return Err(IncidentError::Invalid("comment: must not be empty".into()));
                }
                if inc.status == Status::Closed {
                    return Err(refuse("comment on", closed_hint));
                }
                inc.note(now, by, "comment", text.clone());
                return Ok(Vec::new());
            }
            Action::Assign(to) => {
                if inc.status == Status::Closed {
                    return Err(refuse("assign", closed_hint));
                }
                inc.assignee = Some(to.clone());
                inc.note(now, by, "assigned", to.clone());
                return Ok(Vec::new());
            }
            Action::Acknowledge => match inc.status {
                Status::Triggered => (Status::Acknowledged, "acknowledged", String::new()),
                _ => return Err(refuse("acknowledge", "; only a triggered incident can be")),
            },
            Action::Mitigate => match inc.status {
                Status::Triggered | Status::Acknowledged => {
                    (Status::Mitigated, "mitigated", String::new())
                }
                _ => {
                    return Err(refuse(
                        "mitigate",
                        "; only a triggered or acknowledged one can be",
                    ))
                }
            },
            Action::Resolve => match inc.status {
                Status::Triggered | Status::Acknowledged | Status::Mitigated => {
                    (Status::Resolved, "resolved", "by hand".to_string())
                }
                _ => return Err(refuse("resolve", "")),
            },
            Action::Close => match inc.status {
                Status::Resolved => (Status::Closed, "closed", String::new()),
                _ => return Err(refuse("close", "; resolve it first")),
            },
        };
        let effects: Vec<Effect> = inc.set_status(now, to).into_iter().collect();
        inc.note(now, by, kind, detail);
        Ok(effects)
    }

    /// A step of a repair: goes on the timeline of the incidents it concerns (same
    /// correlation key, or holding one of its alert's groups) that are not closed. A verified
    /// fix mitigates a triggered or acknowledged one — automatically when nobody had
    /// acknowledged it. One whose alerts resolved before the verification finished counts as
    /// mitigated by the repair as well (at the resolution at the latest).
    pub fn repair(&mut self, now: i64, r: &RepairRef<'_>) -> Vec<Effect> {
        let key = self.policy.key(r.labels);
        let mut effects = Vec::new();
        for inc in self.incidents.values_mut() {
            let by_key = key
                .as_ref()
                .is_some_and(|k| !inc.key.is_empty() && *k == inc.key);
            let by_group = r.groups.iter().any(|g| inc.groups.contains_key(g));
            if inc.status == Status::Closed || !(by_key || by_group) {
                continue;
            }
            self.dirty.insert(inc.id);
            if !inc.executions.iter().any(|e| e == r.execution) {
                inc.executions.push(r.execution.to_string());
            }
            let at = r.at.min(now);
            inc.note_at(at, MEDIC, "repair", r.step.to_string());
            if !r.verified {
                continue;
            }
            let unacknowledged = inc.acknowledged_at.is_none();
            match inc.status {
                Status::Triggered | Status::Acknowledged => {
                    inc.auto_mitigated |= inc.status == Status::Triggered;
                    // Never before the last change of status: times in each state stay whole.
                    let last = inc.transitions.last().map_or(inc.opened_at, |t| t.0);
                    effects.extend(inc.set_status(at.max(last), Status::Mitigated));
                    inc.note_at(at, MEDIC, "mitigated", "the repair's fix was verified");
                }
                Status::Resolved if inc.mitigated_at.is_none() => {
                    inc.mitigated_at = Some(inc.resolved_at.map_or(at, |r| r.min(at)));
                    inc.auto_mitigated = unacknowledged;
                    inc.note_at(
                        at,
                        MEDIC,
                        "mitigated",
                        "the repair's fix was verified (its alerts had resolved meanwhile)",
                    );
                }
                _ => {}
            }
        }
        effects
    }

    /// A person acknowledged alert group `group_key` in the alert manager: the incidents
    /// holding it note it, and a triggered one is acknowledged by that person.
    pub fn group_acked(&mut self, now: i64, group_key: &str, by: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        for inc in self.incidents.values_mut() {
            if inc.status == Status::Closed || !inc.groups.contains_key(group_key) {
                continue;
            }
            self.dirty.insert(inc.id);
            inc.note(now, by, "alert_acknowledged", group_key.to_string());
            if inc.status == Status::Triggered {
                effects.extend(inc.set_status(now, Status::Acknowledged));
                inc.note(now, by, "acknowledged", "through its alert group");
            }
        }
        effects
    }

    /// The ids of the open incidents holding alert group `group_key`.
    pub fn holding(&self, group_key: &str) -> Vec<u64> {
        self.incidents
            .values()
            .filter(|i| i.status != Status::Closed && i.groups.contains_key(group_key))
            .map(|i| i.id)
            .collect()
    }

    /// Escalations due at `now`: each incident at most once per reason.
    pub fn tick(&mut self, now: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        for inc in self.incidents.values_mut() {
            let due = |after: i64| after > 0 && now - inc.opened_at >= after;
            let mut fire = Vec::new();
            if inc.status == Status::Triggered && due(inc.respond_within_ms) {
                fire.push("ack_overdue");
            }
            if matches!(inc.status, Status::Triggered | Status::Acknowledged)
                && due(inc.escalate_after_ms)
            {
                fire.push("unresolved");
            }
            for why in fire {
                if inc.escalations.iter().any(|e| e == why) {
                    continue;
                }
                inc.escalations.push(why.to_string());
                self.dirty.insert(inc.id);
                let detail = match why {
                    "ack_overdue" => {
                        format!("not acknowledged within {} s", inc.respond_within_ms / 1000)
                    }
                    _ => format!("not mitigated within {} s", inc.escalate_after_ms / 1000),
                };
                inc.note(now, MEDIC, "escalated", detail);
                effects.push(Effect::Escalated { id: inc.id, why });
            }
        }
        effects
    }
}
