//! Playbooks: the YAML format (see `docs/playbooks.md`), read strictly and checked whole at
//! load, so a playbook that loads can only fail at run time on what the world does.

mod check;
mod raw;
mod text;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use medic_model::{Labels, Matcher};
use medic_template::{Funcs, Template, Value as TValue};
use serde::Deserialize;

use crate::expr::Expr;
use crate::hooks::AlertOrigin;
use crate::Error;
use check::check;
use raw::*;
pub use text::{Lang, Scope, Text};

pub use medic_model::Dur;

// ---------------------------------------------------------------------------------------------
// The checked playbook.

/// When the playbook runs.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Alerts whose labels match all the matchers (a selector: `{alertname="ServiceDown"}`).
    Alert(Vec<Matcher>),
    /// A PromQL query that has returned a series for `for`; each series is one target.
    Condition { query: String, for_: i64 },
}

/// A sender whose alerts may start a playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerSource {
    /// medic's alerting rules.
    Rules,
    /// medic's anomaly rules.
    Anomaly,
    /// Alerts posted through the API by an identity with the trigger permission for the
    /// alert's labels; only this identity when named (`api:<identity>`).
    Api(Option<String>),
}

impl Playbook {
    /// Whether an alert from `origin` may start this playbook; why not if it may not.
    pub fn admits(&self, origin: &AlertOrigin) -> Result<(), String> {
        let listed = |want: &TriggerSource| self.sources.contains(want);
        match origin {
            AlertOrigin::Rules if listed(&TriggerSource::Rules) => Ok(()),
            AlertOrigin::Anomaly if listed(&TriggerSource::Anomaly) => Ok(()),
            AlertOrigin::Api {
                identity,
                may_trigger,
            } => {
                let named = self
                    .sources
                    .iter()
                    .any(|s| matches!(s, TriggerSource::Api(None)) || *s == TriggerSource::Api(Some(identity.clone())));
                if !named {
                    Err(format!("trigger.sources does not admit alerts posted by {identity}"))
                } else if !may_trigger {
                    Err(format!("{identity} lacks the heal_trigger permission for these labels"))
                } else {
                    Ok(())
                }
            }
            AlertOrigin::Unknown => Err("the alert's sender is not known (loaded at start; waiting for it to be sent again)".into()),
            other => Err(format!("trigger.sources does not admit alerts from {}", other.as_str())),
        }
    }
}

/// One piece of evidence to gather.
#[derive(Debug, Clone)]
pub struct Collector {
    pub name: String,
    pub kind: CollectKind,
}

#[derive(Debug, Clone)]
pub enum CollectKind {
    /// An instant query at the time of collection.
    Query(Text),
    /// A range query over `range` up to the time of collection.
    Range {
        query: Text,
        range: i64,
        step: i64,
    },
    Exec(ExecSpec),
    Http(HttpSpec),
    /// A LogQL log query over `range` up to the time of collection, at most `limit` lines.
    Logs {
        query: Text,
        range: i64,
        limit: usize,
    },
}

/// A command run without a shell.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub command: Vec<Text>,
    pub env: Vec<(String, Text)>,
    pub dir: Option<Text>,
    pub timeout: i64,
    /// Success also needs stdout to match this regex (for tools that exit 0 on failure).
    pub expect_output: Option<regex::Regex>,
}

/// An HTTP request.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub method: reqwest::Method,
    pub url: Text,
    pub headers: Vec<(String, Text)>,
    pub body: Option<Text>,
    /// Statuses that count as success; empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub timeout: i64,
    /// When the URL's host is templated: the hosts it may name (anchored).
    pub hosts: Vec<regex::Regex>,
}

/// An ordered diagnosis rule.
#[derive(Debug, Clone)]
pub struct Cause {
    pub name: String,
    pub description: String,
    pub when: Arc<Expr>,
    /// Action names, in the author's order of preference (trust may re-rank them).
    pub actions: Vec<String>,
}

/// When an action needs a person's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Runs by itself, unless the trust ladder demotes it.
    #[default]
    Never,
    /// Always asks.
    Always,
    /// Asks until it has proved itself (see the trust settings).
    Untrusted,
}

/// A repair step.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub description: String,
    pub kind: ActionKind,
    pub rollback: Option<Box<Action>>,
    pub approval: Approval,
}

#[derive(Debug, Clone)]
pub enum ActionKind {
    Exec(ExecSpec),
    Http(HttpSpec),
    Wait(i64),
    Notify {
        receivers: Vec<String>,
        message: Text,
    },
    /// Steps run in order (each journaled as `action/step`), verified once after the last; on
    /// failure the steps done so far are rolled back in reverse order.
    Steps(Vec<Action>),
}

impl ActionKind {
    pub fn kind(&self) -> &'static str {
        match self {
            ActionKind::Exec(_) => "exec",
            ActionKind::Http(_) => "http",
            ActionKind::Wait(_) => "wait",
            ActionKind::Notify { .. } => "notify",
            ActionKind::Steps(_) => "steps",
        }
    }
}

impl Action {
    /// The step of a sequence journaled as `name` (`action/step`).
    pub fn step(&self, journaled: &str) -> Option<&Action> {
        let (_, step) = journaled.split_once('/')?;
        match &self.kind {
            ActionKind::Steps(steps) => steps.iter().find(|s| s.name == step),
            _ => None,
        }
    }
}

/// How a repair is judged.
#[derive(Debug, Clone)]
pub struct Verify {
    pub check: VerifyCheck,
    pub within: i64,
    pub interval: i64,
    pub after: i64,
}

#[derive(Debug, Clone)]
pub enum VerifyCheck {
    /// The query returns at least one series.
    Query(Text),
    /// The triggering alert (or condition) has resolved.
    AlertResolved,
    /// The command exits 0.
    Exec(ExecSpec),
    /// The request answers with an expected status.
    Http(HttpSpec),
}

/// What to do when medic cannot know whether an action ran (it crashed during it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownOutcome {
    /// Verify; if the problem is still there, escalate to people.
    #[default]
    Escalate,
    /// Verify; if the problem is still there, run the action again.
    Retry,
    /// Verify; if the problem is still there, treat the action as failed (rollback, next).
    Next,
}

/// Which outcomes are announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    Started,
    Success,
    Failure,
    Approval,
    Vetoed,
    DryRun,
}

#[derive(Debug, Clone)]
pub struct Notify {
    pub receivers: Vec<String>,
    /// Where failures and escalations go; the `receivers` when empty.
    pub escalate: Vec<String>,
    pub on: HashSet<NotifyOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub max: usize,
    pub per: Dur,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    /// Failed verifications that open the breaker…
    pub failures: usize,
    /// …within this window.
    pub within: Dur,
    /// A trigger for a target this playbook repaired (verified) less than this long ago also
    /// counts as a failure: the fix did not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Dur>,
}

#[derive(Debug, Clone)]
pub enum BlastRadius {
    /// At most this many of the group's targets under repair at once.
    Count(usize),
    /// At most this share of the group's size (the query's value), at least one.
    Percent { percent: f64, group_size: Text },
}

#[derive(Debug, Clone, Default)]
pub struct Guards {
    pub cooldown: i64,
    pub rate_limit: Option<RateLimit>,
    pub blast_radius: Option<BlastRadius>,
    pub circuit_breaker: Option<CircuitBreaker>,
    pub approval_timeout: Option<i64>,
}

/// A playbook parameter: a template expanded per execution and, when a pattern is given, checked
/// against it (anchored at both ends) before anything runs.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub value: Text,
    pub pattern: Option<regex::Regex>,
}

/// Why a playbook's scope could not be built for a trigger.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScopeError {
    /// A template failed to expand.
    #[error("{0}")]
    Template(String),
    /// A parameter's value does not match its pattern: the trigger names something the playbook
    /// does not allow, so nothing runs.
    #[error("{0}")]
    Refused(String),
}

/// A loaded playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    pub enabled: bool,
    pub dry_run: bool,
    pub trigger: Trigger,
    /// Who may start it with an alert (`trigger.sources`; default medic's rules and anomaly
    /// rules).
    pub sources: Vec<TriggerSource>,
    pub target: Text,
    pub group: Option<Text>,
    pub params: Vec<Param>,
    pub collect: Vec<Collector>,
    pub diagnose: Vec<Cause>,
    pub actions: BTreeMap<String, Action>,
    pub verify: Verify,
    pub on_unknown_outcome: UnknownOutcome,
    pub notify: Notify,
    pub guards: Guards,
}

const DEFAULT_EXEC_TIMEOUT: i64 = 60_000;
const DEFAULT_HTTP_TIMEOUT: i64 = 10_000;
const RESERVED: &[&str] = &["labels", "annotations", "params", "target", "execution"];

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl Playbook {
    /// Reads and checks one playbook file.
    pub fn load(path: &Path) -> Result<Playbook, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Playbook {
            file: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Playbook::parse(path, &text)
    }

    /// Parses and checks playbook text; errors name the file, field and line.
    pub fn parse(path: &Path, text: &str) -> Result<Playbook, Error> {
        let err = |message: String| Error::Playbook {
            file: path.to_path_buf(),
            message,
        };
        let raw: RawPlaybook = medic_model::yaml::from_str(text).map_err(err)?;
        let line_of = |needle: &str| {
            text.lines()
                .position(|l| l.contains(needle))
                .map(|i| format!(" (line {})", i + 1))
                .unwrap_or_default()
        };
        check(path, raw).map_err(|(field, message)| {
            let at = line_of(&field);
            err(format!("{field}: {message}{at}"))
        })
    }
}

impl Playbook {
    /// Whether an alert with these labels triggers this playbook.
    pub fn matches_alert(&self, labels: &Labels) -> bool {
        match &self.trigger {
            Trigger::Alert(ms) => ms
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or(""))),
            Trigger::Condition { .. } => false,
        }
    }

    /// The template scope for a trigger's labels and annotations (parameters expanded).
    pub fn scope(
        &self,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        execution: &str,
    ) -> Result<Scope, ScopeError> {
        let mut scope = Scope {
            labels: labels.clone(),
            annotations: annotations.clone(),
            params: BTreeMap::new(),
            target: String::new(),
            execution: execution.to_string(),
        };
        for p in &self.params {
            let k = &p.name;
            let v = p
                .value
                .expand(&scope)
                .map_err(|e| ScopeError::Template(format!("params.{k}: {e}")))?;
            if let Some(re) = &p.pattern {
                if !re.is_match(&v) {
                    let pat = re.as_str();
                    let pat = &pat[4..pat.len() - 2];
                    return Err(ScopeError::Refused(format!(
                        "params.{k}: the value {v:?} does not match the pattern {pat:?}; refused before anything ran"
                    )));
                }
            }
            scope.params.insert(k.clone(), v);
        }
        let target = self
            .target
            .expand(&scope)
            .map_err(|e| ScopeError::Template(format!("target: {e}")))?;
        scope.target = target.trim_end_matches(',').to_string();
        Ok(scope)
    }

    /// The PromQL queries written without templates, with where they are, for checking at load.
    pub fn queries(&self) -> Vec<(String, &str)> {
        fn plain(t: &Text) -> Option<&str> {
            match t {
                Text::Plain(q) => Some(q.as_str()),
                Text::Template { .. } => None,
            }
        }
        let mut out = Vec::new();
        if let Trigger::Condition { query, .. } = &self.trigger {
            out.push(("trigger.condition.query".to_string(), query.as_str()));
        }
        for c in &self.collect {
            if let CollectKind::Query(t) | CollectKind::Range { query: t, .. } = &c.kind {
                out.extend(plain(t).map(|q| (format!("collect.{}.query", c.name), q)));
            }
        }
        if let VerifyCheck::Query(t) = &self.verify.check {
            out.extend(plain(t).map(|q| ("verify.query".to_string(), q)));
        }
        if let Some(BlastRadius::Percent { group_size, .. }) = &self.guards.blast_radius {
            out.extend(
                plain(group_size).map(|q| ("guards.blast_radius.group_size".to_string(), q)),
            );
        }
        out
    }

    /// Every receiver the playbook may notify (to check against the alert manager's).
    pub fn receivers(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .notify
            .receivers
            .iter()
            .chain(&self.notify.escalate)
            .map(String::as_str)
            .collect();
        for a in self.actions.values() {
            for k in std::iter::once(&a.kind).chain(a.rollback.as_ref().map(|r| &r.kind)) {
                if let ActionKind::Notify { receivers, .. } = k {
                    v.extend(receivers.iter().map(String::as_str));
                }
            }
        }
        v.sort();
        v.dedup();
        v
    }

    /// The blast-radius group of a target.
    pub fn group_of(&self, scope: &Scope) -> Result<String, String> {
        match &self.group {
            Some(g) => g.expand(scope).map_err(|e| format!("group: {e}")),
            None => Ok(self.name.clone()),
        }
    }
}

/// Loads every playbook matched by the globs; all or nothing, and names must be unique.
pub fn load_all(patterns: &[String], base: &Path) -> Result<Vec<Playbook>, Error> {
    let mut out: Vec<Playbook> = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for pat in patterns {
        let full = if Path::new(pat).is_absolute() {
            PathBuf::from(pat)
        } else {
            base.join(pat)
        };
        let mut files: Vec<PathBuf> = match glob_paths(&full) {
            Ok(f) => f,
            Err(message) => {
                return Err(Error::Playbook {
                    file: full,
                    message,
                })
            }
        };
        files.sort();
        for f in files {
            let pb = Playbook::load(&f)?;
            if let Some(prev) = seen.insert(pb.name.clone(), f.clone()) {
                return Err(Error::Playbook {
                    file: f,
                    message: format!("name: {:?} is already used by {}", pb.name, prev.display()),
                });
            }
            out.push(pb);
        }
    }
    Ok(out)
}

fn glob_paths(p: &Path) -> Result<Vec<PathBuf>, String> {
    let pat = p.to_string_lossy();
    if !pat.contains(['*', '?', '[']) {
        return Ok(vec![p.to_path_buf()]);
    }
    let paths = glob::glob(&pat).map_err(|e| format!("invalid pattern: {e}"))?;
    Ok(paths
        .filter_map(Result::ok)
        .filter(|f| f.is_file())
        .collect())
}
