//! The playbook file as written (serde shapes), before it is checked.

use super::*;

// ---------------------------------------------------------------------------------------------
// The file format, as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlaybook {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    #[serde(default)]
    pub(super) dry_run: bool,
    pub(super) trigger: RawTrigger,
    #[serde(default)]
    pub(super) target: Option<String>,
    #[serde(default)]
    pub(super) group: Option<String>,
    #[serde(default)]
    pub(super) params: BTreeMap<String, RawParam>,
    #[serde(default)]
    pub(super) collect: Vec<RawCollector>,
    #[serde(default)]
    pub(super) diagnose: Vec<RawCause>,
    pub(super) actions: BTreeMap<String, RawAction>,
    pub(super) verify: RawVerify,
    #[serde(default)]
    pub(super) on_unknown_outcome: UnknownOutcome,
    #[serde(default)]
    pub(super) notify: RawNotify,
    #[serde(default)]
    pub(super) guards: RawGuards,
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrigger {
    #[serde(default)]
    pub(super) alert: Option<String>,
    /// Who may start the playbook with an alert: `rules`, `anomaly`, `api`, `api:<identity>`.
    #[serde(default)]
    pub(super) sources: Option<Vec<String>>,
    #[serde(default)]
    pub(super) condition: Option<RawCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    pub(super) query: String,
    #[serde(default, rename = "for")]
    pub(super) for_: Dur,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollector {
    pub(super) name: String,
    #[serde(default)]
    pub(super) query: Option<String>,
    #[serde(default)]
    pub(super) range: Option<Dur>,
    #[serde(default)]
    pub(super) step: Option<Dur>,
    #[serde(default)]
    pub(super) exec: Option<RawExec>,
    #[serde(default)]
    pub(super) http: Option<RawHttp>,
    /// A LogQL log query; `range` (default 15m) back from the collection, at most `limit`
    /// lines (default 50), newest first.
    #[serde(default)]
    pub(super) logs: Option<String>,
    #[serde(default)]
    pub(super) limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExec {
    pub(super) command: Vec<String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, RawValue>,
    #[serde(default)]
    pub(super) dir: Option<String>,
    #[serde(default)]
    pub(super) timeout: Option<Dur>,
    #[serde(default)]
    pub(super) expect_output: Option<String>,
}

/// An `env` or header value: text (which may be a template), or a secret read from a file
/// (`{file: /run/secrets/pg}`, relative to the playbook; whitespace around it trimmed) or from
/// medic's environment (`{env: PGPASSWORD}`) when the playbook is loaded.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawValue {
    Text(String),
    Secret(RawSecret),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecret {
    #[serde(default)]
    pub(super) file: Option<String>,
    #[serde(default)]
    pub(super) env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) url: String,
    /// Hosts (anchored regexes) a URL whose host comes from a template may name when the
    /// request carries headers other than plain ones (credentials go nowhere else).
    #[serde(default)]
    pub(super) hosts: Vec<String>,
    #[serde(default)]
    pub(super) method: Option<String>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, RawValue>,
    #[serde(default)]
    pub(super) body: Option<String>,
    #[serde(default)]
    pub(super) expect_status: Vec<u16>,
    #[serde(default)]
    pub(super) timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCause {
    pub(super) cause: String,
    pub(super) when: String,
    #[serde(default)]
    pub(super) description: String,
    pub(super) actions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) exec: Option<RawExec>,
    #[serde(default)]
    pub(super) http: Option<RawHttp>,
    #[serde(default)]
    pub(super) wait: Option<Dur>,
    #[serde(default)]
    pub(super) notify: Option<RawNotifyAction>,
    /// A sequence: each step runs after the one before succeeded; verified once at the end.
    #[serde(default)]
    pub(super) steps: Option<Vec<RawStep>>,
    #[serde(default)]
    pub(super) rollback: Option<Box<RawAction>>,
    #[serde(default)]
    pub(super) approval: Approval,
}

/// One step of a sequence: an action of its own kind with a name, and its own rollback.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) exec: Option<RawExec>,
    #[serde(default)]
    pub(super) http: Option<RawHttp>,
    #[serde(default)]
    pub(super) wait: Option<Dur>,
    #[serde(default)]
    pub(super) notify: Option<RawNotifyAction>,
    #[serde(default)]
    pub(super) rollback: Option<Box<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifyAction {
    pub(super) receivers: Vec<String>,
    pub(super) message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerify {
    #[serde(default)]
    pub(super) query: Option<String>,
    #[serde(default)]
    pub(super) alert_resolved: bool,
    #[serde(default)]
    pub(super) exec: Option<RawExec>,
    #[serde(default)]
    pub(super) http: Option<RawHttp>,
    pub(super) within: Dur,
    #[serde(default)]
    pub(super) interval: Option<Dur>,
    #[serde(default)]
    pub(super) after: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    #[serde(default)]
    pub(super) receivers: Vec<String>,
    #[serde(default)]
    pub(super) escalate: Vec<String>,
    #[serde(default)]
    pub(super) on: Option<Vec<NotifyOn>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGuards {
    #[serde(default)]
    pub(super) cooldown: Option<Dur>,
    #[serde(default)]
    pub(super) rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub(super) blast_radius: Option<RawBlast>,
    #[serde(default)]
    pub(super) circuit_breaker: Option<CircuitBreaker>,
    #[serde(default)]
    pub(super) approval_timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBlast {
    #[serde(default)]
    pub(super) max: Option<usize>,
    #[serde(default)]
    pub(super) max_percent: Option<f64>,
    #[serde(default)]
    pub(super) group_size: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawParam {
    Text(String),
    Checked(RawCheckedParam),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheckedParam {
    pub(super) value: String,
    pub(super) pattern: String,
}
