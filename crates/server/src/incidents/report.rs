//! The post-incident report: what the incident, the alert history, the heal journal, the
//! rules and the store say about one incident, gathered here and laid out by
//! [`super::report_doc`] as Markdown or one self-contained HTML file.

use std::collections::{BTreeMap, BTreeSet};

use medic_alert::incident::Incident;
use medic_alert::state::{EventKind, HistoryQuery};
use medic_heal::journal::Execution;
use medic_model::{Labels, Matcher};
use medic_promql::Value as PromValue;

use crate::http::AppState;

/// Context drawn before the fault and after the end: the incident's own length, within these.
const MIN_MARGIN_MS: i64 = 60_000;
const MAX_MARGIN_MS: i64 = 15 * 60_000;
/// Charts drawn at most, and series per chart.
const MAX_CHARTS: usize = 4;
const MAX_LINES: usize = 6;

/// (Unix ms, value) pairs of one series.
type Points = Vec<(i64, f64)>;

/// One alert that took part: when it fired and resolved.
#[derive(Debug, Clone)]
pub struct AlertSpan {
    pub labels: Labels,
    pub fired_at: i64,
    pub resolved_at: Option<i64>,
}

/// A chart's data: the query drawn, its series, the threshold, the fault time.
#[derive(Debug, Clone)]
pub struct SeriesChart {
    pub alertname: String,
    pub query: String,
    pub threshold: Option<f64>,
    pub lines: Vec<(String, Points)>,
    /// When the condition began to hold (firing time less the rule's `for`).
    pub fault_at: Option<i64>,
}

/// Budget of one SLO spent while the incident lasted.
#[derive(Debug, Clone)]
pub struct BudgetSpent {
    pub slo: String,
    pub objective: f64,
    /// Fraction of the period's error budget.
    pub spent: f64,
}

/// Everything the report says.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub incident: Incident,
    pub now: i64,
    pub alerts: Vec<AlertSpan>,
    pub executions: Vec<Execution>,
    pub charts: Vec<SeriesChart>,
    pub budgets: Vec<BudgetSpent>,
    pub chart_start: i64,
    pub chart_end: i64,
}

/// Gathers the report's data (runs queries: call off the async threads).
pub fn gather(st: &AppState, inc: Incident) -> ReportData {
    let now = st.incidents.now_ms();
    let end = inc.resolved_at.or(inc.closed_at).unwrap_or(now);
    let alerts = alert_spans(st, &inc, end);
    let executions: Vec<Execution> = inc
        .executions
        .iter()
        .filter_map(|id| st.heal.execution(id).ok().flatten())
        .collect();
    let first_fired = alerts
        .iter()
        .map(|a| a.fired_at)
        .min()
        .unwrap_or(inc.opened_at);
    let holds = rule_holds(st);
    let fault = alerts
        .iter()
        .filter_map(|a| {
            let name = a.labels.get("alertname")?;
            Some(a.fired_at - holds.get(name).map_or(0, |(_, h)| *h))
        })
        .min()
        .unwrap_or(first_fired);
    let begin = fault.min(inc.opened_at);
    let margin = (end - begin).clamp(MIN_MARGIN_MS, MAX_MARGIN_MS);
    let chart_start = begin - margin;
    let chart_end = (end + margin).min(now.max(end));
    let charts = charts(st, &inc, &alerts, &holds, chart_start, chart_end);
    let budgets = budgets(st, &inc, first_fired.min(inc.opened_at), end);
    ReportData {
        incident: inc,
        now,
        alerts,
        executions,
        charts,
        budgets,
        chart_start,
        chart_end,
    }
}

/// The alerts that fired in the incident's groups: from the alert history, those agreeing
/// with its key, between an hour before it opened and its end.
fn alert_spans(st: &AppState, inc: &Incident, end: i64) -> Vec<AlertSpan> {
    let matchers: Vec<Matcher> = inc
        .key
        .iter()
        .map(|(k, v)| Matcher::equal(k.clone(), v.clone()))
        .collect();
    let names: BTreeSet<&str> = inc
        .timeline
        .iter()
        .filter(|e| e.kind == "alert_firing")
        .flat_map(|e| e.detail.split(" (").next().unwrap_or("").split(", "))
        .collect();
    let q = HistoryQuery {
        matchers,
        kinds: vec![EventKind::Firing, EventKind::Resolved],
        since: Some(inc.opened_at - 3_600_000),
        until: Some(end + 60_000),
        limit: 10_000,
        ..Default::default()
    };
    let mut events = st.alerts.history(&q).unwrap_or_default();
    events.sort_by_key(|e| e.at);
    let mut spans: BTreeMap<String, AlertSpan> = BTreeMap::new();
    let mut done = Vec::new();
    for e in events {
        let name = e.labels.get("alertname").unwrap_or("");
        if name == "MedicIncident" || name == "MedicHeal" || !names.contains(name) {
            continue;
        }
        let fp = e.fingerprint.map(|f| f.to_string()).unwrap_or_default();
        match e.kind {
            EventKind::Firing => {
                spans.entry(fp).or_insert(AlertSpan {
                    labels: e.labels.clone(),
                    fired_at: e.at,
                    resolved_at: None,
                });
            }
            EventKind::Resolved => {
                if let Some(mut s) = spans.remove(&fp) {
                    s.resolved_at = Some(e.at);
                    done.push(s);
                }
            }
            _ => {}
        }
    }
    done.extend(spans.into_values());
    done.sort_by_key(|s| s.fired_at);
    done
}

/// Alerting rules by name: their expression and `for`, ms.
pub(crate) fn rule_holds(st: &AppState) -> BTreeMap<String, (String, i64)> {
    let mut out = BTreeMap::new();
    for g in st.rules.groups() {
        for r in &g.rules {
            if let Some(a) = &r.alerting {
                out.entry(r.name.clone())
                    .or_insert((r.query.clone(), a.hold.as_millis() as i64));
            }
        }
    }
    out
}

/// The alerts' expressions over the incident, the series that concern it.
fn charts(
    st: &AppState,
    inc: &Incident,
    alerts: &[AlertSpan],
    holds: &BTreeMap<String, (String, i64)>,
    start: i64,
    end: i64,
) -> Vec<SeriesChart> {
    let step = ((end - start) / 240).max(1000);
    let mut names: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a.labels.get("alertname"))
        .collect();
    names.dedup();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in names {
        if out.len() >= MAX_CHARTS || !seen.insert(name) {
            continue;
        }
        let Some((expr, hold)) = holds.get(name) else {
            continue;
        };
        let Some((query, threshold)) = medic_promql::chart::chart_query(expr) else {
            continue;
        };
        let Ok(series) = st.engine.range(st.db.as_ref(), &query, start, end, step) else {
            continue;
        };
        // The series of the incident's own targets: those agreeing with its key and with one
        // of its alerts on the labels they share.
        let mut lines: Vec<(f64, String, Points)> = series
            .into_iter()
            .filter(|s| agrees(&s.labels, &inc.key))
            .filter(|s| alerts.iter().any(|a| shared_agree(&s.labels, &a.labels)))
            .map(|s| {
                let peak = s.samples.iter().map(|p| p.v).fold(f64::MIN, f64::max);
                let pts = s.samples.iter().map(|p| (p.t, p.v)).collect();
                (peak, s.labels.to_string(), pts)
            })
            .collect();
        lines.sort_by(|a, b| b.0.total_cmp(&a.0));
        lines.truncate(MAX_LINES);
        let fired = alerts
            .iter()
            .filter(|a| a.labels.get("alertname") == Some(name))
            .map(|a| a.fired_at)
            .min();
        out.push(SeriesChart {
            alertname: name.to_string(),
            query,
            threshold,
            lines: lines.into_iter().map(|(_, n, p)| (n, p)).collect(),
            fault_at: fired.map(|f| f - hold),
        });
    }
    out
}

fn agrees(labels: &Labels, key: &[(String, String)]) -> bool {
    key.iter()
        .all(|(k, v)| labels.get(k).is_none_or(|x| x == v))
}

/// Whether two label sets agree on every name both have (`__name__` and `alertname` aside).
fn shared_agree(a: &Labels, b: &Labels) -> bool {
    a.iter()
        .filter(|l| &*l.name != "__name__" && &*l.name != "alertname")
        .all(|l| b.get(&l.name).is_none_or(|v| v == &*l.value))
}

/// Error budget spent during the incident for the SLOs of its service (Sloth's series): the
/// mean 5m error ratio over the incident times its length, over the period's budget.
fn budgets(st: &AppState, inc: &Incident, from: i64, to: i64) -> Vec<BudgetSpent> {
    let service = inc
        .key
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.as_str());
    let len = (to - from).max(60_000);
    let instant = |q: &str| -> Vec<(Labels, f64)> {
        match st.engine.instant(st.db.as_ref(), q, to) {
            Ok(PromValue::Vector(v)) => v
                .into_iter()
                .filter(|s| s.h.is_none())
                .map(|s| (s.labels, s.v))
                .collect(),
            _ => Vec::new(),
        }
    };
    // No outside text reaches the queries: the service is matched here, not in PromQL.
    let range = format!("{}s", len / 1000);
    let ratios = instant(&format!(
        "avg_over_time(slo:sli_error:ratio_rate5m[{range}])"
    ));
    let objectives: BTreeMap<String, f64> = instant("slo:objective:ratio")
        .into_iter()
        .filter_map(|(l, v)| Some((l.get("sloth_id")?.to_string(), v)))
        .collect();
    let periods: BTreeMap<String, f64> = instant("slo:time_period:days")
        .into_iter()
        .filter_map(|(l, v)| Some((l.get("sloth_id")?.to_string(), v)))
        .collect();
    let mut out = Vec::new();
    for (l, ratio) in ratios {
        let Some(id) = l.get("sloth_id") else {
            continue;
        };
        if service.is_some_and(|s| l.get("sloth_service") != Some(s)) {
            continue;
        }
        let (Some(obj), Some(days)) = (objectives.get(id), periods.get(id)) else {
            continue;
        };
        let budget = (1.0 - obj) * days * 86_400_000.0;
        if budget <= 0.0 || !ratio.is_finite() {
            continue;
        }
        out.push(BudgetSpent {
            slo: id.to_string(),
            objective: *obj,
            spent: ratio * len as f64 / budget,
        });
    }
    out
}
