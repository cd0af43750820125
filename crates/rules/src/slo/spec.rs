//! Sloth's `prometheus/v1` SLO spec, read as Sloth reads it (its field names, and the
//! camel-case spellings its YAML library also accepts), and checked with errors that name the
//! file, the line, the SLO and the field.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::file::FileError;

/// The only spec version: Sloth's Prometheus spec.
pub const VERSION: &str = "prometheus/v1";

/// A Sloth SLO file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub version: String,
    pub service: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub slos: Vec<Slo>,
}

/// One SLO of a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub name: String,
    /// Target percentage in (0, 100], e.g. 99.9.
    pub objective: f64,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub sli: Sli,
    #[serde(default)]
    pub alerting: Alerting,
}

/// What is good or bad: exactly one of `events` and `raw`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Sli {
    #[serde(default)]
    pub events: Option<Events>,
    #[serde(default)]
    pub raw: Option<Raw>,
    /// Sloth's SLI plugins are Go code; medic refuses them with a clear error.
    #[serde(default)]
    pub plugin: Option<serde_norway::Value>,
}

/// Bad events over all events, each a query with `{{.window}}` in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    #[serde(alias = "errorQuery")]
    pub error_query: String,
    #[serde(alias = "totalQuery")]
    pub total_query: String,
}

/// An error ratio computed elsewhere, with `{{.window}}` in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(alias = "errorRatioQuery")]
    pub error_ratio_query: String,
}

/// The SLO's alerts.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, alias = "pageAlert")]
    pub page_alert: Alert,
    #[serde(default, alias = "ticketAlert")]
    pub ticket_alert: Alert,
}

/// The page or the ticket alert.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    #[serde(default)]
    pub disable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Sloth's SLO and service names: what can stand in a rule group's name and a label value.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The line of `slos:`' `i`-th entry (1-based), for errors.
fn slo_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_slos = false;
    let mut indent = None;
    for (i, l) in text.lines().enumerate() {
        let trimmed = l.trim_start();
        let depth = l.len() - trimmed.len();
        if depth == 0 && !trimmed.is_empty() {
            in_slos = trimmed.starts_with("slos:");
            continue;
        }
        if in_slos && trimmed.starts_with("- ") && *indent.get_or_insert(depth) == depth {
            out.push(i + 1);
        }
    }
    out
}

/// Parses and checks a Sloth spec: every problem, each with the file, line, SLO and field.
pub fn parse(text: &str, file: &Path) -> Result<Spec, Vec<FileError>> {
    let err = |line: Option<usize>, message: String| FileError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let spec: Spec = medic_model::yaml::from_str(text).map_err(|m: String| {
        let line = medic_model::yaml::error_line(&m);
        vec![err(line, m)]
    })?;
    let mut errs = Vec::new();
    if spec.version != VERSION {
        errs.push(err(
            Some(1),
            format!(
                "version: {:?} is not supported; medic reads Sloth's {VERSION:?}",
                spec.version
            ),
        ));
    }
    if !valid_name(&spec.service) {
        errs.push(err(
            None,
            format!(
                "service: {:?} must be 1–128 letters, digits, '_', '-' or '.'",
                spec.service
            ),
        ));
    }
    if spec.slos.is_empty() {
        errs.push(err(None, "slos: at least one SLO is required".into()));
    }
    check_labels(&spec.labels, "labels", &mut |m| errs.push(err(None, m)));
    let lines = slo_lines(text);
    let mut seen = std::collections::HashSet::new();
    for (i, slo) in spec.slos.iter().enumerate() {
        let line = lines.get(i).copied();
        let mut e = |m: String| errs.push(err(line, format!("slos[{i}] ({:?}): {m}", slo.name)));
        if !valid_name(&slo.name) {
            e("name: must be 1–128 letters, digits, '_', '-' or '.'".into());
        }
        if !seen.insert(slo.name.clone()) {
            e("name: another SLO of this service has it".into());
        }
        if !(slo.objective > 0.0 && slo.objective <= 100.0) {
            e(format!("objective: {} is outside (0, 100]", slo.objective));
        }
        check_labels(&slo.labels, "labels", &mut e);
        check_sli(&slo.sli, &mut e);
        let a = &slo.alerting;
        let alerts = !a.page_alert.disable || !a.ticket_alert.disable;
        if alerts && !crate::file::is_valid_metric_name(&a.name) {
            e(format!(
                "alerting.name: {:?} is not a valid alert name (required unless page_alert and ticket_alert are both disabled)",
                a.name
            ));
        }
        for (what, labels) in [
            ("alerting.labels", &a.labels),
            ("alerting.page_alert.labels", &a.page_alert.labels),
            ("alerting.ticket_alert.labels", &a.ticket_alert.labels),
        ] {
            check_labels(labels, what, &mut e);
        }
    }
    if errs.is_empty() {
        Ok(spec)
    } else {
        Err(errs)
    }
}

fn check_labels(labels: &BTreeMap<String, String>, what: &str, e: &mut dyn FnMut(String)) {
    for name in labels.keys() {
        if !medic_model::is_valid_label_name(name) || name.starts_with("__") {
            e(format!("{what}: {name:?} is not a valid label name"));
        }
        if name.starts_with("sloth_") {
            e(format!(
                "{what}: {name:?}: labels starting with sloth_ are Sloth's own"
            ));
        }
    }
}

/// The SLI's queries parse once `{{.window}}` is filled in, and use it.
fn check_sli(sli: &Sli, e: &mut dyn FnMut(String)) {
    if sli.plugin.is_some() {
        e("sli.plugin: Sloth's SLI plugins are Go code medic cannot run; write the SLI as sli.events or sli.raw".into());
        return;
    }
    let queries: Vec<(&str, &str)> = match (&sli.events, &sli.raw) {
        (Some(ev), None) => vec![
            ("sli.events.error_query", &ev.error_query),
            ("sli.events.total_query", &ev.total_query),
        ],
        (None, Some(raw)) => vec![("sli.raw.error_ratio_query", &raw.error_ratio_query)],
        _ => {
            e("sli: exactly one of events and raw is required".into());
            return;
        }
    };
    for (field, q) in queries {
        if !super::has_window(q) {
            e(format!(
                "{field}: must use the {{{{.window}}}} template variable"
            ));
            continue;
        }
        if let Err(m) = medic_promql::Engine::parse(&super::with_window(q, "5m")) {
            e(format!("{field}: {m}"));
        }
    }
}
