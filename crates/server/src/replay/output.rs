//! A replay for people: a table on the terminal, or a self-contained HTML timeline.

use std::collections::BTreeMap;

use medic_report::{Block, Doc};

use super::Replay;

fn time(ms: i64) -> String {
    medic_model::format_rfc3339_millis(ms)
}

fn alert_name(l: &BTreeMap<String, String>) -> String {
    let name = l.get("alertname").cloned().unwrap_or_default();
    let rest: Vec<String> = l
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

/// Every event in time order: (time, kind, what, detail).
pub fn timeline(r: &Replay) -> Vec<(i64, &'static str, String, String)> {
    let mut rows = Vec::new();
    for a in &r.alerts {
        let kind = match a.state.as_str() {
            "pending" => "pending",
            "firing" => "firing",
            _ => "resolved",
        };
        rows.push((
            a.at,
            kind,
            alert_name(&a.labels),
            format!("group {}", a.group),
        ));
    }
    for m in &r.notifications {
        let alerts: Vec<String> = m
            .alerts
            .iter()
            .map(|(l, s)| format!("{} ({s})", alert_name(l)))
            .collect();
        rows.push((
            m.at,
            "notify",
            format!("{} via {}", m.receiver, m.integration),
            alerts.join("; "),
        ));
    }
    for d in &r.repairs {
        let what = format!("{} on {}", d.playbook, d.target);
        let detail = match &d.guard {
            Some(g) => format!("vetoed by {g}: {}", d.reason),
            None => format!("{}: {}", d.status, d.reason),
        };
        let kind = if d.guard.is_some() { "veto" } else { "repair" };
        rows.push((d.at, kind, what, detail));
    }
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    rows
}

fn summary(r: &Replay) -> Vec<(String, String)> {
    let firing = r.alerts.iter().filter(|a| a.state == "firing").count();
    let admitted = r.repairs.iter().filter(|d| d.guard.is_none()).count();
    vec![
        ("from".into(), time(r.from)),
        ("to".into(), time(r.to)),
        ("rule evaluations".into(), r.evaluations.to_string()),
        ("alerts that fired".into(), firing.to_string()),
        ("notifications".into(), r.notifications.len().to_string()),
        ("repairs admitted (dry run)".into(), admitted.to_string()),
        (
            "repairs vetoed".into(),
            (r.repairs.len() - admitted).to_string(),
        ),
        (
            "recorded".into(),
            format!(
                "{} series, {} samples",
                r.recorded_series, r.recorded_samples
            ),
        ),
    ]
}

/// Rows for the terminal table: TIME, EVENT, WHAT, DETAIL; and the summary lines.
pub fn table(r: &Replay) -> (Vec<Vec<String>>, Vec<String>) {
    let rows = timeline(r)
        .into_iter()
        .map(|(t, k, w, d)| vec![time(t), k.to_string(), w, d])
        .collect();
    let mut lines: Vec<String> = summary(r)
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    lines.extend(r.errors.iter().map(|e| format!("rule error: {e}")));
    (rows, lines)
}

/// The replay as one self-contained HTML page.
pub fn html(r: &Replay) -> String {
    let mut doc = Doc::new(format!("medic replay, {} to {}", time(r.from), time(r.to)));
    doc.push(Block::Facts(summary(r)));
    if !r.errors.is_empty() {
        doc.heading("Rule errors");
        doc.push(Block::Bullets(r.errors.clone()));
    }
    doc.heading("Timeline");
    doc.push(Block::Table {
        headers: ["time", "event", "what", "detail"]
            .map(String::from)
            .to_vec(),
        rows: timeline(r)
            .into_iter()
            .map(|(t, k, w, d)| vec![time(t), k.to_string(), w, d])
            .collect(),
    });
    doc.html()
}
