//! Which alert groups open an incident, at which P-level, with which response and escalation
//! targets, and which groups belong together — the manuals' table (critical: respond within
//! 5 minutes, escalate after 15; warning: 30 minutes and 2 hours; info: no incident).

use std::time::Duration;

use medic_model::{Dur, Labels, Matcher};
use serde::{Deserialize, Serialize};

/// P0 (the most urgent) to P3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    P0,
    P1,
    P2,
    P3,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::P0 => "P0",
            Level::P1 => "P1",
            Level::P2 => "P2",
            Level::P3 => "P3",
        })
    }
}

/// One line of the policy as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Alertmanager matchers on the group's labels, e.g. `severity="critical"`; all must match.
    pub matchers: Vec<String>,
    pub level: Level,
    /// Acknowledge within this, or the incident is escalated as unanswered.
    pub respond_within: Dur,
    /// Escalate if it is neither mitigated nor resolved after this.
    pub escalate_after: Dur,
}

/// `incidents:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Which groups open an incident; the first rule that matches decides.
    #[serde(default = "default_rules")]
    pub open_on: Vec<RuleSpec>,
    /// Groups that agree on these labels join one incident (default `service`).
    #[serde(default = "default_correlate_by")]
    pub correlate_by: Vec<String>,
    /// ... if the incident saw activity within this (default 30m).
    #[serde(default = "default_window")]
    pub window: Dur,
}

/// The manuals' table: critical → P1 (5m, 15m), warning → P2 (30m, 2h).
pub fn default_rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec {
            matchers: vec![r#"severity="critical""#.into()],
            level: Level::P1,
            respond_within: Dur::from_secs(300),
            escalate_after: Dur::from_secs(900),
        },
        RuleSpec {
            matchers: vec![r#"severity="warning""#.into()],
            level: Level::P2,
            respond_within: Dur::from_secs(1800),
            escalate_after: Dur::from_secs(7200),
        },
    ]
}

/// `service`.
pub fn default_correlate_by() -> Vec<String> {
    vec!["service".into()]
}

/// 30m.
pub fn default_window() -> Dur {
    Dur::from_secs(1800)
}

impl Default for PolicySpec {
    fn default() -> Self {
        Self {
            open_on: default_rules(),
            correlate_by: default_correlate_by(),
            window: default_window(),
        }
    }
}

/// A rule with its matchers parsed.
#[derive(Debug, Clone)]
pub struct Rule {
    pub matchers: Vec<Matcher>,
    pub level: Level,
    pub respond_within: Duration,
    pub escalate_after: Duration,
}

/// The policy in force.
#[derive(Debug, Clone)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub correlate_by: Vec<String>,
    pub window: Duration,
}

impl Policy {
    /// Checks `spec`; errors name the field (`open_on[1].matchers[0]: …`).
    pub fn new(spec: &PolicySpec) -> Result<Policy, String> {
        let mut rules = Vec::new();
        for (i, r) in spec.open_on.iter().enumerate() {
            let mut matchers = Vec::new();
            for (j, m) in r.matchers.iter().enumerate() {
                let parsed = crate::matchers::parse_matchers(m)
                    .map_err(|e| format!("open_on[{i}].matchers[{j}]: {e}"))?;
                matchers.extend(parsed);
            }
            if r.escalate_after.duration() < r.respond_within.duration() {
                return Err(format!(
                    "open_on[{i}]: escalate_after ({}) is shorter than respond_within ({})",
                    r.escalate_after, r.respond_within
                ));
            }
            rules.push(Rule {
                matchers,
                level: r.level,
                respond_within: r.respond_within.duration(),
                escalate_after: r.escalate_after.duration(),
            });
        }
        for (i, l) in spec.correlate_by.iter().enumerate() {
            if !medic_model::is_valid_label_name(l) {
                return Err(format!("correlate_by[{i}]: {l:?} is not a label name"));
            }
        }
        Ok(Policy {
            rules,
            correlate_by: spec.correlate_by.clone(),
            window: spec.window.duration(),
        })
    }

    /// The first rule whose matchers all match `labels`.
    pub fn rule_for(&self, labels: &Labels) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| crate::matchers::matches_all(&r.matchers, labels))
    }

    /// The correlation key of `labels`: the values of `correlate_by`, or `None` when one is
    /// missing (such a group joins nothing and opens its own incident).
    pub fn key(&self, labels: &Labels) -> Option<Vec<(String, String)>> {
        self.correlate_by
            .iter()
            .map(|n| labels.get(n).map(|v| (n.clone(), v.to_string())))
            .collect()
    }
}
