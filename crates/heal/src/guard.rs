//! The safety guards: a deterministic core (time is an argument) that decides whether an
//! execution may start. Each stage may veto with a reason, which the execution record keeps.
//!
//! Stages, in order: `enabled`, `paused` (all, playbook or target; `circuit_breaker` when the
//! breaker paused it), `maintenance`, `resolved`, `lock` (one execution per target),
//! `cooldown` (per playbook and target), `rate_limit` (per playbook), `global_rate_limit`,
//! `blast_radius` (share of a group's targets under repair at once). Approval and dry-run are
//! not vetoes: they change how the execution proceeds.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use medic_model::format_duration;
use medic_model::Matcher;

use crate::journal::{Pause, Veto};
use crate::kinds::GuardName;
use crate::playbook::{CircuitBreaker, RateLimit};

/// Who pauses a playbook when its circuit breaker opens.
pub const BREAKER: &str = "circuit-breaker";

/// A period in which medic does not repair what the matchers select.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub name: String,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Over the trigger's labels; empty selects everything.
    pub matchers: Vec<Matcher>,
}

/// Engine-wide guard settings.
#[derive(Debug, Clone, Default)]
pub struct GuardConfig {
    /// False disables every playbook.
    pub disabled: bool,
    pub rate_limit: Option<RateLimit>,
    pub maintenance: Vec<MaintenanceWindow>,
}

/// What the guards judge.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub playbook: &'a str,
    pub playbook_enabled: bool,
    pub target: &'a str,
    pub group: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub cooldown: i64,
    pub rate_limit: Option<RateLimit>,
    /// The most targets of the group under repair at once (from the blast-radius setting and,
    /// for a percentage, the group's size).
    pub blast_max: Option<usize>,
    pub trigger_resolved: bool,
    pub now: i64,
}

/// The guards' memory: what runs, what ran, what failed, what is paused.
#[derive(Debug, Default)]
pub struct Guards {
    running: HashMap<String, String>,
    group_running: HashMap<(String, String), HashSet<String>>,
    last_start: HashMap<(String, String), i64>,
    starts: HashMap<String, VecDeque<i64>>,
    global: VecDeque<i64>,
    failures: HashMap<String, VecDeque<i64>>,
    /// When each (playbook, target) was last repaired and verified.
    fixed: HashMap<(String, String), i64>,
    pauses: BTreeMap<String, Pause>,
}

fn veto(guard: GuardName, reason: String) -> Result<(), Veto> {
    Err(Veto { guard, reason })
}

fn dur(ms: i64) -> String {
    format_duration(std::time::Duration::from_millis(ms.max(0) as u64))
}

/// The pause scope of a playbook.
pub fn playbook_scope(name: &str) -> String {
    format!("playbook:{name}")
}

/// The pause scope of a target.
pub fn target_scope(target: &str) -> String {
    format!("target:{target}")
}

impl Guards {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the stages; the first veto wins.
    pub fn check(&self, cfg: &GuardConfig, c: &Candidate) -> Result<(), Veto> {
        if cfg.disabled {
            return veto(
                GuardName::Enabled,
                "automatic repair is disabled (heal.enabled: false)".into(),
            );
        }
        if !c.playbook_enabled {
            return veto(
                GuardName::Enabled,
                format!("playbook {} is disabled", c.playbook),
            );
        }
        for scope in [
            "all".to_string(),
            playbook_scope(c.playbook),
            target_scope(c.target),
        ] {
            if let Some(p) = self.pause(&scope, c.now) {
                let guard = if p.by == BREAKER {
                    GuardName::CircuitBreaker
                } else {
                    GuardName::Paused
                };
                let until = p
                    .until
                    .map(|u| format!(" for another {}", dur(u - c.now)))
                    .unwrap_or_default();
                return veto(
                    guard,
                    format!("{} paused by {}{until}: {}", p.scope, p.by, p.reason),
                );
            }
        }
        for w in &cfg.maintenance {
            if w.starts_at <= c.now
                && c.now < w.ends_at
                && w.matchers
                    .iter()
                    .all(|m| m.matches(c.labels.get(&m.name).map(String::as_str).unwrap_or("")))
            {
                return veto(
                    GuardName::Maintenance,
                    format!(
                        "maintenance window {} (ends in {})",
                        w.name,
                        dur(w.ends_at - c.now)
                    ),
                );
            }
        }
        if c.trigger_resolved {
            return veto(
                GuardName::Resolved,
                "the trigger has already resolved".into(),
            );
        }
        if let Some(id) = self.running.get(c.target) {
            return veto(
                GuardName::Lock,
                format!("execution {id} is already repairing {}", c.target),
            );
        }
        let key = (c.playbook.to_string(), c.target.to_string());
        if let Some(&last) = self.last_start.get(&key) {
            if c.cooldown > 0 && c.now < last + c.cooldown {
                return veto(
                    GuardName::Cooldown,
                    format!(
                        "{} ran for {} {} ago (cooldown {})",
                        c.playbook,
                        c.target,
                        dur(c.now - last),
                        dur(c.cooldown)
                    ),
                );
            }
        }
        if let Some(r) = c.rate_limit {
            let n = count_since(self.starts.get(c.playbook), c.now - r.per.0);
            if n >= r.max {
                return veto(
                    GuardName::RateLimit,
                    format!(
                        "{} started {n} executions in the last {} (limit {})",
                        c.playbook, r.per, r.max
                    ),
                );
            }
        }
        if let Some(r) = cfg.rate_limit {
            let n = count_since(Some(&self.global), c.now - r.per.0);
            if n >= r.max {
                return veto(
                    GuardName::GlobalRateLimit,
                    format!(
                        "{n} executions started in the last {} (limit {})",
                        r.per, r.max
                    ),
                );
            }
        }
        if let Some(max) = c.blast_max {
            let under = self
                .group_running
                .get(&(c.playbook.to_string(), c.group.to_string()))
                .map_or(0, HashSet::len);
            if under >= max {
                return veto(
                    GuardName::BlastRadius,
                    format!(
                        "{under} of group {} already under repair (at most {max} at once)",
                        c.group
                    ),
                );
            }
        }
        Ok(())
    }

    /// Records that an execution started (after [`Guards::check`] passed).
    pub fn admit(&mut self, playbook: &str, target: &str, group: &str, id: &str, now: i64) {
        self.running.insert(target.to_string(), id.to_string());
        self.group_running
            .entry((playbook.to_string(), group.to_string()))
            .or_default()
            .insert(target.to_string());
        self.last_start
            .insert((playbook.to_string(), target.to_string()), now);
        self.starts
            .entry(playbook.to_string())
            .or_default()
            .push_back(now);
        self.global.push_back(now);
    }

    /// Records a start without taking the lock (an execution that was already over when it
    /// was loaded), so cooldowns and rate limits survive restarts.
    pub fn remember(&mut self, playbook: &str, target: &str, now: i64) {
        let e = self
            .last_start
            .entry((playbook.to_string(), target.to_string()))
            .or_insert(now);
        *e = (*e).max(now);
        self.starts
            .entry(playbook.to_string())
            .or_default()
            .push_back(now);
        self.global.push_back(now);
    }

    /// Releases the lock and the blast-radius slot of an execution that ended.
    pub fn release(&mut self, playbook: &str, target: &str, group: &str, id: &str) {
        if self.running.get(target).is_some_and(|r| r == id) {
            self.running.remove(target);
        }
        let key = (playbook.to_string(), group.to_string());
        if let Some(s) = self.group_running.get_mut(&key) {
            s.remove(target);
            if s.is_empty() {
                self.group_running.remove(&key);
            }
        }
    }

    /// Records a failed verification; returns true when it opens the playbook's breaker (the
    /// caller pauses the playbook and escalates).
    pub fn record_failure(
        &mut self,
        playbook: &str,
        breaker: Option<CircuitBreaker>,
        now: i64,
    ) -> bool {
        let q = self.failures.entry(playbook.to_string()).or_default();
        q.push_back(now);
        let Some(b) = breaker else {
            return false;
        };
        while q.front().is_some_and(|&t| t < now - b.within.0) {
            q.pop_front();
        }
        q.len() >= b.failures && self.pause(&playbook_scope(playbook), now).is_none()
    }

    /// Records a verified repair of `target` by `playbook`.
    pub fn record_fixed(&mut self, playbook: &str, target: &str, now: i64) {
        self.fixed
            .insert((playbook.to_string(), target.to_string()), now);
    }

    /// When `playbook` last repaired `target`, if it did within `window` of `now`.
    pub fn fixed_within(&self, playbook: &str, target: &str, window: i64, now: i64) -> Option<i64> {
        self.fixed
            .get(&(playbook.to_string(), target.to_string()))
            .copied()
            .filter(|&t| now - t < window)
    }

    /// When the cooldown of `playbook` for `target` ends, if it is in force at `now`.
    pub fn cooldown_ends(
        &self,
        playbook: &str,
        target: &str,
        cooldown: i64,
        now: i64,
    ) -> Option<i64> {
        self.last_start
            .get(&(playbook.to_string(), target.to_string()))
            .map(|&t| t + cooldown)
            .filter(|&end| end > now)
    }

    /// Forgets the failures counted against a playbook (when it is resumed).
    pub fn reset_failures(&mut self, playbook: &str) {
        self.failures.remove(playbook);
    }

    pub fn set_pause(&mut self, p: Pause) {
        self.pauses.insert(p.scope.clone(), p);
    }

    pub fn clear_pause(&mut self, scope: &str) -> Option<Pause> {
        self.pauses.remove(scope)
    }

    /// The pause in force for a scope.
    pub fn pause(&self, scope: &str, now: i64) -> Option<&Pause> {
        self.pauses
            .get(scope)
            .filter(|p| p.until.is_none_or(|u| now < u))
    }

    /// Pauses in force.
    pub fn pauses(&self, now: i64) -> Vec<Pause> {
        self.pauses
            .values()
            .filter(|p| p.until.is_none_or(|u| now < u))
            .cloned()
            .collect()
    }

    /// Targets under repair.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Drops history older than `horizon` (ms) to bound memory.
    pub fn gc(&mut self, horizon: i64) {
        for q in self.starts.values_mut().chain(self.failures.values_mut()) {
            while q.front().is_some_and(|&t| t < horizon) {
                q.pop_front();
            }
        }
        self.starts.retain(|_, q| !q.is_empty());
        self.failures.retain(|_, q| !q.is_empty());
        while self.global.front().is_some_and(|&t| t < horizon) {
            self.global.pop_front();
        }
        self.last_start.retain(|_, &mut t| t >= horizon);
    }
}

fn count_since(q: Option<&VecDeque<i64>>, since: i64) -> usize {
    q.map_or(0, |q| q.iter().filter(|&&t| t > since).count())
}

/// The blast-radius limit for a group of `size` targets at `percent`: at least one.
pub fn percent_limit(percent: f64, size: f64) -> usize {
    ((size.max(0.0) * percent / 100.0).floor() as usize).max(1)
}
