//! Playbooks: the YAML format (see `docs/playbooks.md`), read strictly and checked whole at
//! load, so a playbook that loads can only fail at run time on what the world does.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use medic_model::{Labels, Matcher};
use medic_template::{Funcs, Template, Value as TValue};
use serde::{de, Deserialize, Deserializer};

use crate::expr::Expr;
use crate::Error;

/// A duration in Prometheus syntax, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub i64);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        medic_model::parse_duration(&s)
            .map(|d| Dur(d.as_millis() as i64))
            .map_err(de::Error::custom)
    }
}

impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&medic_model::format_duration(
            std::time::Duration::from_millis(self.0.max(0) as u64),
        ))
    }
}

/// What a templated string becomes, and so how values expanded into it are escaped
/// ([`crate::escape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Plain text: an argument, a header, a message. Values go in as they are.
    Text,
    /// A PromQL query: values are escaped for the string literal they land in.
    Promql,
    /// A JSON document: values are escaped as JSON strings.
    Json,
}

/// A string that may hold a template (`{{ $labels.instance }}`), expanded per execution with
/// `$labels`, `$annotations`, `$params`, `$target` and `$execution` defined.
#[derive(Debug, Clone)]
pub enum Text {
    Plain(String),
    Template {
        template: Arc<Template>,
        lang: Lang,
        /// The string as written (without the variable prelude).
        source: String,
    },
}

/// What templates see.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
    pub target: String,
    pub execution: String,
}

impl Text {
    fn parse(field: &str, s: &str) -> Result<Text, String> {
        Self::parse_as(field, s, Lang::Text)
    }

    /// A PromQL query whose template values are escaped for where they land.
    fn promql(field: &str, s: &str) -> Result<Text, String> {
        Self::parse_as(field, s, Lang::Promql)
    }

    fn parse_as(field: &str, s: &str, lang: Lang) -> Result<Text, String> {
        if !s.contains("{{") {
            return Ok(Text::Plain(s.to_string()));
        }
        let prelude = "{{$labels := .labels}}{{$annotations := .annotations}}{{$params := .params}}{{$target := .target}}{{$execution := .execution}}";
        let t = Template::parse(field, &format!("{prelude}{s}"))
            .map_err(|e| format!("{field}: invalid template: {e}"))?;
        t.check_functions(&funcs())
            .map_err(|e| format!("{field}: {e}"))?;
        Ok(Text::Template {
            template: Arc::new(t),
            lang,
            source: s.to_string(),
        })
    }

    /// Expands the text; an error names what failed.
    pub fn expand(&self, scope: &Scope) -> Result<String, String> {
        match self {
            Text::Plain(s) => Ok(s.clone()),
            Text::Template { template, lang, .. } => {
                let data = TValue::map([
                    ("labels", TValue::str_map(&scope.labels)),
                    ("annotations", TValue::str_map(&scope.annotations)),
                    ("params", TValue::str_map(&scope.params)),
                    ("target", TValue::Str(scope.target.clone())),
                    ("execution", TValue::Str(scope.execution.clone())),
                ]);
                let r = match lang {
                    Lang::Text => template.execute(&data, &funcs(), &[]),
                    Lang::Promql => {
                        template.execute_escaped(&data, &funcs(), &[], &crate::escape::promql)
                    }
                    Lang::Json => {
                        template.execute_escaped(&data, &funcs(), &[], &crate::escape::json)
                    }
                };
                r.map_err(|e| e.to_string())
            }
        }
    }

    /// Whether the text holds a template.
    pub fn is_template(&self) -> bool {
        matches!(self, Text::Template { .. })
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        match self {
            Text::Plain(s) => s,
            Text::Template { source, .. } => source,
        }
    }
}

fn funcs() -> Funcs {
    Funcs::prometheus()
}

// ---------------------------------------------------------------------------------------------
// The file format, as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    dry_run: bool,
    trigger: RawTrigger,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, RawParam>,
    #[serde(default)]
    collect: Vec<RawCollector>,
    #[serde(default)]
    diagnose: Vec<RawCause>,
    actions: BTreeMap<String, RawAction>,
    verify: RawVerify,
    #[serde(default)]
    on_unknown_outcome: UnknownOutcome,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    guards: RawGuards,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    condition: Option<RawCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    query: String,
    #[serde(default, rename = "for")]
    for_: Dur,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    name: String,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    range: Option<Dur>,
    #[serde(default)]
    step: Option<Dur>,
    #[serde(default)]
    exec: Option<RawExec>,
    #[serde(default)]
    http: Option<RawHttp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExec {
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    timeout: Option<Dur>,
    #[serde(default)]
    expect_output: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    url: String,
    /// Hosts (anchored regexes) a URL whose host comes from a template may name when the
    /// request carries headers other than plain ones (credentials go nowhere else).
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    expect_status: Vec<u16>,
    #[serde(default)]
    timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCause {
    cause: String,
    when: String,
    #[serde(default)]
    description: String,
    actions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(default)]
    description: String,
    #[serde(default)]
    exec: Option<RawExec>,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    wait: Option<Dur>,
    #[serde(default)]
    notify: Option<RawNotifyAction>,
    /// A sequence: each step runs after the one before succeeded; verified once at the end.
    #[serde(default)]
    steps: Option<Vec<RawStep>>,
    #[serde(default)]
    rollback: Option<Box<RawAction>>,
    #[serde(default)]
    approval: Approval,
}

/// One step of a sequence: an action of its own kind with a name, and its own rollback.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    exec: Option<RawExec>,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    wait: Option<Dur>,
    #[serde(default)]
    notify: Option<RawNotifyAction>,
    #[serde(default)]
    rollback: Option<Box<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifyAction {
    receivers: Vec<String>,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    alert_resolved: bool,
    #[serde(default)]
    exec: Option<RawExec>,
    #[serde(default)]
    http: Option<RawHttp>,
    within: Dur,
    #[serde(default)]
    interval: Option<Dur>,
    #[serde(default)]
    after: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    #[serde(default)]
    receivers: Vec<String>,
    #[serde(default)]
    escalate: Vec<String>,
    #[serde(default)]
    on: Option<Vec<NotifyOn>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuards {
    #[serde(default)]
    cooldown: Option<Dur>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    blast_radius: Option<RawBlast>,
    #[serde(default)]
    circuit_breaker: Option<CircuitBreaker>,
    #[serde(default)]
    approval_timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlast {
    #[serde(default)]
    max: Option<usize>,
    #[serde(default)]
    max_percent: Option<f64>,
    #[serde(default)]
    group_size: Option<String>,
}

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

/// A parameter as written: a template, or a template with the pattern its value must match.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawParam {
    Text(String),
    Checked(RawCheckedParam),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckedParam {
    value: String,
    pattern: String,
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

type CheckResult<T> = Result<T, (String, String)>;

fn check(path: &Path, raw: RawPlaybook) -> CheckResult<Playbook> {
    let fail = |field: &str, msg: String| (field.to_string(), msg);
    if !is_name(&raw.name) {
        return Err(fail(
            "name",
            format!(
                "{:?} is not a valid name (letters, digits, '_', '-', '.')",
                raw.name
            ),
        ));
    }
    let trigger = match (raw.trigger.alert, raw.trigger.condition) {
        (Some(sel), None) => Trigger::Alert(
            medic_model::parse_selector(&sel).map_err(|e| fail("alert", e.to_string()))?,
        ),
        (None, Some(c)) => {
            check_promql_text("query", &c.query)?;
            Trigger::Condition {
                query: c.query,
                for_: c.for_.0,
            }
        }
        (None, None) => {
            return Err(fail(
                "trigger",
                "needs `alert` (a selector over alert labels) or `condition`".into(),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(fail(
                "trigger",
                "has both `alert` and `condition`; write two playbooks".into(),
            ))
        }
    };
    let target = Text::parse(
        "target",
        // Without a target, the trigger's whole label set is the target.
        raw.target
            .as_deref()
            .unwrap_or("{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}"),
    )
    .map_err(|e| fail("target", e))?;
    let group = raw
        .group
        .as_deref()
        .map(|g| Text::parse("group", g))
        .transpose()
        .map_err(|e| fail("group", e))?;
    let mut params = Vec::new();
    for (k, v) in &raw.params {
        if !is_identifier(k) {
            return Err(fail(
                k,
                "parameter names are identifiers ([A-Za-z_][A-Za-z0-9_]*)".into(),
            ));
        }
        let (value, pattern) = match v {
            RawParam::Text(t) => (t, None),
            RawParam::Checked(c) => {
                let re = regex::Regex::new(&format!("^(?:{})$", c.pattern)).map_err(|e| {
                    fail(
                        k,
                        format!("params.{k}.pattern: invalid regular expression: {e}"),
                    )
                })?;
                (&c.value, Some(re))
            }
        };
        params.push(Param {
            name: k.clone(),
            value: Text::parse(&format!("params.{k}"), value).map_err(|e| fail(k, e))?,
            pattern,
        });
    }

    let mut collect = Vec::new();
    let mut names = HashSet::new();
    for (i, c) in raw.collect.into_iter().enumerate() {
        let field = format!("collect[{i}]");
        if !is_identifier(&c.name) || RESERVED.contains(&c.name.as_str()) {
            return Err(fail(
                &c.name,
                format!(
                    "{field}.name: {:?} must be an identifier and not one of {RESERVED:?} (diagnosis expressions refer to it by name)",
                    c.name
                ),
            ));
        }
        if !names.insert(c.name.clone()) {
            return Err(fail(
                &c.name,
                format!("{field}.name: {:?} is collected twice", c.name),
            ));
        }
        let kinds = c.query.is_some() as u8 + c.exec.is_some() as u8 + c.http.is_some() as u8;
        if kinds != 1 {
            return Err(fail(
                &c.name,
                format!("{field}: needs exactly one of `query`, `exec`, `http`"),
            ));
        }
        let kind = if let Some(q) = c.query {
            check_promql_text(&c.name, &q)?;
            let query = Text::promql(&field, &q).map_err(|e| fail(&c.name, e))?;
            match c.range {
                Some(r) if r.0 > 0 => {
                    let step = c.step.map(|s| s.0).unwrap_or((r.0 / 60).max(1000));
                    if step <= 0 || r.0 / step > 11_000 {
                        return Err(fail(
                            &c.name,
                            format!("{field}.step: too small for the range (at most 11000 points)"),
                        ));
                    }
                    CollectKind::Range {
                        query,
                        range: r.0,
                        step,
                    }
                }
                Some(_) => return Err(fail(&c.name, format!("{field}.range: must be positive"))),
                None => CollectKind::Query(query),
            }
        } else if let Some(e) = c.exec {
            CollectKind::Exec(exec_spec(&field, e)?)
        } else if let Some(h) = c.http {
            CollectKind::Http(http_spec(&field, h)?)
        } else {
            unreachable!("one kind checked above")
        };
        collect.push(Collector { name: c.name, kind });
    }

    let mut actions = BTreeMap::new();
    for (name, a) in raw.actions {
        if !is_name(&name) {
            return Err(fail(
                &name,
                format!("actions.{name}: not a valid action name"),
            ));
        }
        let act = action(&format!("actions.{name}"), &name, a)?;
        actions.insert(name, act);
    }
    if actions.is_empty() {
        return Err(fail("actions", "at least one action is needed".into()));
    }
    let known_vars: HashSet<&str> = names
        .iter()
        .map(String::as_str)
        .chain(RESERVED.iter().copied())
        .collect();
    let mut diagnose = Vec::new();
    let mut causes = HashSet::new();
    for (i, c) in raw.diagnose.into_iter().enumerate() {
        let field = format!("diagnose[{i}]");
        if !is_name(&c.cause) || !causes.insert(c.cause.clone()) {
            return Err(fail(
                &c.cause,
                format!(
                    "{field}.cause: {:?} is not a valid, unique cause name",
                    c.cause
                ),
            ));
        }
        let when =
            Expr::compile(&c.when).map_err(|e| fail(&c.when, format!("{field}.when: {e}")))?;
        for v in when.variables() {
            if !known_vars.contains(v.as_str()) {
                return Err(fail(&c.when, format!(
                    "{field}.when: refers to {v:?}, which is neither collected nor one of {RESERVED:?}"
                )));
            }
        }
        if c.actions.is_empty() {
            return Err(fail(
                &c.cause,
                format!("{field}.actions: at least one action is needed"),
            ));
        }
        for a in &c.actions {
            if !actions.contains_key(a) {
                return Err(fail(
                    a,
                    format!("{field}.actions: no action named {a:?} under `actions`"),
                ));
            }
        }
        diagnose.push(Cause {
            name: c.cause,
            description: c.description,
            when: Arc::new(when),
            actions: c.actions,
        });
    }
    if diagnose.is_empty() {
        // Without rules, the cause is the trigger itself and every action is a candidate in
        // the order written.
        diagnose.push(Cause {
            name: "triggered".into(),
            description: "no diagnosis rules: the trigger is the cause".into(),
            when: Arc::new(Expr::compile("true").expect("constant")),
            actions: actions.keys().cloned().collect(),
        });
    }

    let v = raw.verify;
    let kinds = v.query.is_some() as u8
        + v.alert_resolved as u8
        + v.exec.is_some() as u8
        + v.http.is_some() as u8;
    if kinds != 1 {
        return Err(fail(
            "verify",
            "needs exactly one of `query`, `alert_resolved: true`, `exec`, `http`".into(),
        ));
    }
    let check = if let Some(q) = v.query {
        check_promql_text("verify", &q)?;
        VerifyCheck::Query(Text::promql("verify.query", &q).map_err(|e| fail("verify", e))?)
    } else if v.alert_resolved {
        VerifyCheck::AlertResolved
    } else if let Some(e) = v.exec {
        VerifyCheck::Exec(exec_spec("verify.exec", e)?)
    } else if let Some(h) = v.http {
        VerifyCheck::Http(http_spec("verify.http", h)?)
    } else {
        unreachable!("one kind checked above")
    };
    if v.within.0 <= 0 {
        return Err(fail("within", "verify.within: must be positive".into()));
    }
    let verify = Verify {
        check,
        within: v.within.0,
        interval: v.interval.map(|d| d.0).unwrap_or(5_000).max(100),
        after: v.after.map(|d| d.0).unwrap_or(0).max(0),
    };

    let on = raw
        .notify
        .on
        .map(|v| v.into_iter().collect())
        .unwrap_or_else(|| {
            [
                NotifyOn::Success,
                NotifyOn::Failure,
                NotifyOn::Approval,
                NotifyOn::DryRun,
            ]
            .into_iter()
            .collect()
        });
    let notify = Notify {
        receivers: raw.notify.receivers,
        escalate: raw.notify.escalate,
        on,
    };

    let g = raw.guards;
    let blast_radius = match g.blast_radius {
        None => None,
        Some(RawBlast { max: Some(n), max_percent: None, group_size: None }) if n > 0 => Some(BlastRadius::Count(n)),
        Some(RawBlast { max: None, max_percent: Some(p), group_size: Some(q) }) if p > 0.0 && p <= 100.0 => {
            check_promql_text("group_size", &q)?;
            Some(BlastRadius::Percent {
                percent: p,
                group_size: Text::promql("guards.blast_radius.group_size", &q).map_err(|e| fail("group_size", e))?,
            })
        }
        Some(_) => {
            return Err(fail(
                "blast_radius",
                "guards.blast_radius: either `max: N` (N > 0) or `max_percent: P` (0 < P ≤ 100) with `group_size: <PromQL>`".into(),
            ))
        }
    };
    if let Some(r) = g.rate_limit {
        if r.max == 0 || r.per.0 <= 0 {
            return Err(fail(
                "rate_limit",
                "guards.rate_limit: `max` and `per` must be positive".into(),
            ));
        }
    }
    if let Some(c) = g.circuit_breaker {
        if c.failures == 0 || c.within.0 <= 0 {
            return Err(fail(
                "circuit_breaker",
                "guards.circuit_breaker: `failures` and `within` must be positive".into(),
            ));
        }
    }
    Ok(Playbook {
        name: raw.name,
        description: raw.description,
        file: path.to_path_buf(),
        enabled: raw.enabled,
        dry_run: raw.dry_run,
        trigger,
        target,
        group,
        params,
        collect,
        diagnose,
        actions,
        verify,
        on_unknown_outcome: raw.on_unknown_outcome,
        notify,
        guards: Guards {
            cooldown: g.cooldown.map(|d| d.0).unwrap_or(0),
            rate_limit: g.rate_limit,
            blast_radius,
            circuit_breaker: g.circuit_breaker,
            approval_timeout: g.approval_timeout.map(|d| d.0),
        },
    })
}

/// Queries are PromQL; heal does not depend on the evaluator, so here only emptiness is
/// checked. The server parses every query without templates at load
/// ([`Playbook::queries`]); templated ones can only be parsed once expanded.
fn check_promql_text(field: &str, q: &str) -> CheckResult<()> {
    if q.trim().is_empty() {
        return Err((field.to_string(), "query is empty".into()));
    }
    Ok(())
}

fn action(field: &str, name: &str, a: RawAction) -> CheckResult<Action> {
    let fail = |msg: String| (name.to_string(), format!("{field}: {msg}"));
    let kinds = a.exec.is_some() as u8
        + a.http.is_some() as u8
        + a.wait.is_some() as u8
        + a.notify.is_some() as u8
        + a.steps.is_some() as u8;
    if kinds != 1 {
        return Err(fail(
            "needs exactly one of `exec`, `http`, `wait`, `notify`, `steps`".into(),
        ));
    }
    let kind = if let Some(steps) = a.steps {
        if steps.is_empty() {
            return Err(fail("steps: at least one step".into()));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, s) in steps.into_iter().enumerate() {
            let at = format!("{field}.steps[{i}]");
            if !is_name(&s.name) || !seen.insert(s.name.clone()) {
                return Err(fail(format!(
                    "steps[{i}].name: {:?} must be a unique name ([A-Za-z0-9_.-])",
                    s.name
                )));
            }
            let raw = RawAction {
                description: s.description,
                exec: s.exec,
                http: s.http,
                wait: s.wait,
                notify: s.notify,
                steps: None,
                rollback: s.rollback,
                approval: Approval::default(),
            };
            out.push(action(&at, &s.name, raw)?);
        }
        ActionKind::Steps(out)
    } else if let Some(e) = a.exec {
        ActionKind::Exec(exec_spec(field, e)?)
    } else if let Some(h) = a.http {
        ActionKind::Http(http_spec(field, h)?)
    } else if let Some(w) = a.wait {
        ActionKind::Wait(w.0.max(0))
    } else if let Some(n) = a.notify {
        if n.receivers.is_empty() {
            return Err(fail("notify.receivers: at least one receiver".into()));
        }
        ActionKind::Notify {
            receivers: n.receivers,
            message: Text::parse(&format!("{field}.notify.message"), &n.message).map_err(fail)?,
        }
    } else {
        unreachable!("one kind checked above")
    };
    let rollback = match a.rollback {
        Some(r) => {
            if r.rollback.is_some() || r.steps.is_some() {
                return Err(fail(
                    "rollback: a rollback is one action, without its own rollback or steps".into(),
                ));
            }
            Some(Box::new(action(&format!("{field}.rollback"), name, *r)?))
        }
        None => None,
    };
    Ok(Action {
        name: name.to_string(),
        description: a.description,
        kind,
        rollback,
        approval: a.approval,
    })
}

fn exec_spec(field: &str, e: RawExec) -> CheckResult<ExecSpec> {
    let fail = |msg: String| (field.to_string(), format!("{field}.exec: {msg}"));
    if e.command.is_empty() || e.command[0].trim().is_empty() {
        return Err(fail(
            "`command` needs at least the program (argv[0])".into(),
        ));
    }
    if e.command[0].contains("{{") {
        return Err(fail(
            "the program (argv[0]) cannot be a template; alert data may only be arguments".into(),
        ));
    }
    let mut command = Vec::new();
    for (i, a) in e.command.iter().enumerate() {
        command.push(Text::parse(&format!("{field}.command[{i}]"), a).map_err(fail)?);
    }
    let mut env = Vec::new();
    for (k, v) in &e.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(fail(format!("env: {k:?} is not a valid variable name")));
        }
        env.push((
            k.clone(),
            Text::parse(&format!("{field}.env.{k}"), v).map_err(fail)?,
        ));
    }
    let dir = e
        .dir
        .as_deref()
        .map(|d| Text::parse(&format!("{field}.dir"), d))
        .transpose()
        .map_err(fail)?;
    let expect_output = e
        .expect_output
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|err| fail(format!("expect_output: {err}")))?;
    Ok(ExecSpec {
        expect_output,
        command,
        env,
        dir,
        timeout: e
            .timeout
            .map(|d| d.0)
            .unwrap_or(DEFAULT_EXEC_TIMEOUT)
            .max(1),
    })
}

fn http_spec(field: &str, h: RawHttp) -> CheckResult<HttpSpec> {
    let fail = |msg: String| (field.to_string(), format!("{field}.http: {msg}"));
    let method = h
        .method
        .as_deref()
        .unwrap_or(if h.body.is_some() { "POST" } else { "GET" });
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| fail(format!("method: {method:?} is not an HTTP method")))?;
    if !h.url.contains("{{") && reqwest::Url::parse(&h.url).is_err() {
        return Err(fail(format!("url: {:?} is not a valid URL", h.url)));
    }
    let mut headers = Vec::new();
    for (k, v) in &h.headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(fail(format!("headers: {k:?} is not a valid header name")));
        }
        headers.push((
            k.clone(),
            Text::parse(&format!("{field}.headers.{k}"), v).map_err(fail)?,
        ));
    }
    for s in &h.expect_status {
        if !(100..=599).contains(s) {
            return Err(fail(format!("expect_status: {s} is not an HTTP status")));
        }
    }
    // A body that is JSON (by its Content-Type, or by how it starts) gets its values escaped as
    // JSON strings, so a label cannot add fields.
    let json_body = h.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("content-type") && v.to_ascii_lowercase().contains("json")
    }) || h
        .body
        .as_deref()
        .is_some_and(|b| b.trim_start().starts_with(['{', '[']));
    let body_lang = if json_body { Lang::Json } else { Lang::Text };
    let mut hosts = Vec::new();
    for (i, h) in h.hosts.iter().enumerate() {
        hosts.push(
            regex::Regex::new(&format!("^(?:{h})$"))
                .map_err(|e| fail(format!("hosts[{i}]: invalid regular expression: {e}")))?,
        );
    }
    Ok(HttpSpec {
        method,
        url: Text::parse(&format!("{field}.url"), &h.url).map_err(fail)?,
        headers,
        body: h
            .body
            .as_deref()
            .map(|b| Text::parse_as(&format!("{field}.body"), b, body_lang))
            .transpose()
            .map_err(fail)?,
        expect_status: h.expect_status,
        hosts,
        timeout: h
            .timeout
            .map(|d| d.0)
            .unwrap_or(DEFAULT_HTTP_TIMEOUT)
            .max(1),
    })
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
