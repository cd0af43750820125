//! Trust: how often each (playbook, cause, action) fixed the problem, from verified outcomes
//! only; the ranking of candidate actions; and the trust ladder — `auto` (runs by itself),
//! `approval` (a person must approve) and `disabled` (never proposed) — that actions move
//! along as they fail or prove themselves.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::journal::{Outcome, TrustChange};
use crate::playbook::Approval;

/// A rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Auto,
    Approval,
    Disabled,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Auto => "auto",
            Level::Approval => "approval",
            Level::Disabled => "disabled",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        match s {
            "auto" => Some(Level::Auto),
            "approval" => Some(Level::Approval),
            "disabled" => Some(Level::Disabled),
            _ => None,
        }
    }
}

/// Ladder settings (`heal.trust` in medic.yml).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// Outcomes needed before the ladder moves an action.
    pub min_attempts: usize,
    /// How many recent outcomes the rate is computed over.
    pub window: usize,
    /// Below this success rate an `auto` action needs approval.
    pub demote_below: f64,
    /// Below this rate an action is disabled.
    pub disable_below: f64,
    /// At or above this rate an action that needed approval (`approval: untrusted`, or
    /// demoted) runs by itself again.
    pub promote_at: f64,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            min_attempts: 5,
            window: 20,
            demote_below: 0.5,
            disable_below: 0.2,
            promote_at: 0.8,
        }
    }
}

/// The key trust is kept under.
pub type Key = (String, String, String);

/// One action's record, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub playbook: String,
    pub cause: String,
    pub action: String,
    pub attempts: usize,
    pub successes: usize,
    pub rate: Option<f64>,
    pub level: Level,
}

/// Outcomes and ladder positions.
#[derive(Debug, Default)]
pub struct Trust {
    outcomes: HashMap<Key, VecDeque<bool>>,
    /// Positions set by the ladder; an action without one is at its policy's starting rung.
    levels: HashMap<Key, Level>,
}

fn key(pb: &str, cause: &str, action: &str) -> Key {
    (pb.to_string(), cause.to_string(), action.to_string())
}

impl Trust {
    /// Rebuilds from the store's history.
    pub fn from_history(cfg: &TrustConfig, outcomes: &[Outcome], changes: &[TrustChange]) -> Trust {
        let mut t = Trust::default();
        for o in outcomes {
            t.push(cfg, &key(&o.playbook, &o.cause, &o.action), o.success);
        }
        for c in changes {
            if let Some(l) = Level::parse(&c.to) {
                t.levels.insert(key(&c.playbook, &c.cause, &c.action), l);
            }
        }
        t
    }

    fn push(&mut self, cfg: &TrustConfig, k: &Key, success: bool) {
        let q = self.outcomes.entry(k.clone()).or_default();
        q.push_back(success);
        while q.len() > cfg.window.max(1) {
            q.pop_front();
        }
    }

    /// `(successes, attempts)` over the window.
    pub fn stats(&self, pb: &str, cause: &str, action: &str) -> (usize, usize) {
        self.outcomes
            .get(&key(pb, cause, action))
            .map_or((0, 0), |q| (q.iter().filter(|&&s| s).count(), q.len()))
    }

    /// The rung an action is on.
    pub fn level(&self, pb: &str, cause: &str, action: &str, policy: Approval) -> Level {
        if policy == Approval::Always {
            // Still disabled if the ladder disabled it.
            return match self.levels.get(&key(pb, cause, action)) {
                Some(Level::Disabled) => Level::Disabled,
                _ => Level::Approval,
            };
        }
        self.levels
            .get(&key(pb, cause, action))
            .copied()
            .unwrap_or(match policy {
                Approval::Never => Level::Auto,
                _ => Level::Approval,
            })
    }

    /// Candidates best first: not disabled before disabled, then by success rate (smoothed,
    /// so an untried action counts as 50 %), the author's order breaking ties.
    pub fn rank(&self, pb: &str, cause: &str, actions: &[(String, Approval)]) -> Vec<String> {
        let mut v: Vec<(usize, f64, bool, &String)> = actions
            .iter()
            .enumerate()
            .map(|(i, (a, policy))| {
                let (s, n) = self.stats(pb, cause, a);
                let score = (s as f64 + 1.0) / (n as f64 + 2.0);
                let disabled = self.level(pb, cause, a, *policy) == Level::Disabled;
                (i, score, disabled, a)
            })
            .collect();
        v.sort_by(|a, b| {
            a.2.cmp(&b.2)
                .then(b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal))
                .then(a.0.cmp(&b.0))
        });
        v.into_iter().map(|(_, _, _, a)| a.clone()).collect()
    }

    /// Records a verified outcome and moves the action on the ladder if its record says so.
    pub fn record(
        &mut self,
        cfg: &TrustConfig,
        o: &Outcome,
        policy: Approval,
    ) -> Option<TrustChange> {
        let k = key(&o.playbook, &o.cause, &o.action);
        self.push(cfg, &k, o.success);
        let (s, n) = self.stats(&o.playbook, &o.cause, &o.action);
        if n < cfg.min_attempts.max(1) {
            return None;
        }
        let rate = s as f64 / n as f64;
        let from = self.level(&o.playbook, &o.cause, &o.action, policy);
        let to = if rate < cfg.disable_below {
            Level::Disabled
        } else if rate < cfg.demote_below {
            match from {
                Level::Auto => Level::Approval,
                other => other,
            }
        } else if rate >= cfg.promote_at && from == Level::Approval && policy != Approval::Always {
            Level::Auto
        } else {
            from
        };
        if to == from {
            return None;
        }
        self.levels.insert(k, to);
        Some(TrustChange {
            playbook: o.playbook.clone(),
            cause: o.cause.clone(),
            action: o.action.clone(),
            from: from.as_str().into(),
            to: to.as_str().into(),
            reason: format!(
                "{s} of the last {n} verified attempts succeeded ({:.0} %)",
                rate * 100.0
            ),
            at: o.at,
        })
    }

    /// Puts an action back on its policy's starting rung and forgets its outcomes (an
    /// operator's decision after fixing the action).
    pub fn reset(&mut self, pb: &str, cause: &str, action: &str) {
        let k = key(pb, cause, action);
        self.levels.remove(&k);
        self.outcomes.remove(&k);
    }

    /// Every action with a record.
    pub fn records(&self, policy: impl Fn(&Key) -> Approval) -> Vec<Record> {
        let mut keys: Vec<&Key> = self.outcomes.keys().chain(self.levels.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                let (s, n) = self.stats(&k.0, &k.1, &k.2);
                Record {
                    playbook: k.0.clone(),
                    cause: k.1.clone(),
                    action: k.2.clone(),
                    attempts: n,
                    successes: s,
                    rate: (n > 0).then(|| s as f64 / n as f64),
                    level: self.level(&k.0, &k.1, &k.2, policy(k)),
                }
            })
            .collect()
    }
}
