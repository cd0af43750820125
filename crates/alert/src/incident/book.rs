//! The set of incidents and the rules that move them.

use std::collections::BTreeMap;

use medic_model::Labels;

use super::{Action, Effect, GroupRef, Incident, IncidentError, Level, Policy, Status, MEDIC};

/// Every incident, and the policy that opens and joins them.
#[derive(Debug, Clone)]
pub struct Book {
    policy: Policy,
    incidents: BTreeMap<u64, Incident>,
    next_id: u64,
}

impl Book {
    /// An empty book under `policy`.
    pub fn new(policy: Policy) -> Book {
        Book {
            policy,
            incidents: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// A book holding `incidents` (loaded from the store).
    pub fn with_incidents(policy: Policy, incidents: Vec<Incident>) -> Book {
        let next_id = incidents.iter().map(|i| i.id + 1).max().unwrap_or(1);
        Book {
            policy,
            incidents: incidents.into_iter().map(|i| (i.id, i)).collect(),
            next_id,
        }
    }

    /// One incident.
    pub fn get(&self, id: u64) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// Every incident, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &Incident> {
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
            },
        );
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
            inc.note(now, MEDIC, "alert_resolved", group_key.to_string());
            if inc.groups.values().all(|firing| !firing) && inc.status != Status::Resolved {
                effects.extend(inc.set_status(now, Status::Resolved));
                inc.note(now, MEDIC, "resolved", "every alert group resolved");
            }
        }
        effects
    }

    /// Opens an incident by hand.
    pub fn open_by_hand(
        &mut self,
        now: i64,
        by: &str,
        title: &str,
        level: Level,
    ) -> Result<(u64, Vec<Effect>), IncidentError> {
        if title.trim().is_empty() {
            return Err(IncidentError::Invalid("title: must not be empty".into()));
        }
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
        let id = self.open(now, title.to_string(), level, Vec::new(), targets);
        let inc = self.incidents.get_mut(&id).expect("just opened");
        inc.note(now, by, "opened", format!("by hand at {level}"));
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

    /// A step of a repair of something in incident(s) matching `labels`: goes on the timeline.
    /// `verified` marks the repair's fix as verified: an incident nobody has acknowledged yet is
    /// then mitigated by medic (auto-mitigated).
    pub fn repair(&mut self, now: i64, labels: &Labels, step: &str, verified: bool) -> Vec<Effect> {
        let key = self.policy.key(labels);
        let mut effects = Vec::new();
        for inc in self.incidents.values_mut() {
            let concerned = matches!(inc.status, Status::Triggered | Status::Acknowledged)
                && key
                    .as_ref()
                    .is_some_and(|k| !inc.key.is_empty() && *k == inc.key);
            if !concerned {
                continue;
            }
            inc.note(now, MEDIC, "repair", step.to_string());
            if verified {
                if inc.status == Status::Triggered {
                    inc.auto_mitigated = true;
                }
                effects.extend(inc.set_status(now, Status::Mitigated));
                inc.note(now, MEDIC, "mitigated", "the repair's fix was verified");
            }
        }
        effects
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
