//! The post-incident report laid out: summary, impact, contributing alerts, the timeline, each
//! repair with its evidence, the charts with the fault, alert and repair marked, and action
//! items to fill in. Pure: data in, document out.

use medic_heal::journal::StepState;
use medic_heal::kinds::StepKind;
use medic_report::time::{span, utc};
use medic_report::{Block, Chart, Doc, Line, Marker, MarkerKind};

use super::report::ReportData;

/// Longest evidence value shown, in characters.
const MAX_EVIDENCE: usize = 4000;

fn opt_time(t: Option<i64>) -> String {
    t.map(utc).unwrap_or_else(|| "-".into())
}

fn opt_span(ms: Option<i64>) -> String {
    ms.map(span).unwrap_or_else(|| "-".into())
}

/// The whole report.
pub fn build(d: &ReportData) -> Doc {
    let inc = &d.incident;
    let mut doc = Doc::new(format!(
        "Incident #{} ({}): {}",
        inc.id, inc.level, inc.title
    ));
    summary(&mut doc, d);
    impact(&mut doc, d);
    contributing(&mut doc, d);
    doc.heading("Timeline");
    if inc.timeline_dropped > 0 {
        doc.paragraph(format!(
            "{} earlier entries were dropped to keep the timeline within {} lines.",
            inc.timeline_dropped,
            medic_alert::incident::MAX_TIMELINE
        ));
    }
    doc.push(Block::Table {
        headers: vec!["When".into(), "Who".into(), "What".into(), "Detail".into()],
        rows: inc
            .timeline
            .iter()
            .map(|e| vec![utc(e.at), e.who.clone(), e.kind.clone(), e.detail.clone()])
            .collect(),
    });
    repairs(&mut doc, d);
    charts(&mut doc, d);
    doc.heading("Action items");
    doc.paragraph(
        "To be filled in by the people who handled it: an owner and a due date for each.",
    );
    let mut items = vec![
        "[ ] Root cause: why did it happen?".to_string(),
        "[ ] Detection: what would have caught it sooner?".to_string(),
        "[ ] Prevention: what stops it happening again?".to_string(),
    ];
    if inc.auto_mitigated {
        items.push(
            "[ ] medic repaired it before anyone acknowledged it: is the playbook's fix the right one for the cause, or does it hide it?"
                .into(),
        );
    }
    if d.executions.iter().any(|e| e.status.as_str() == "failed") {
        items.push("[ ] A repair failed: review the playbook's diagnosis and actions.".into());
    }
    doc.push(Block::Bullets(items));
    doc
}

fn summary(doc: &mut Doc, d: &ReportData) {
    let inc = &d.incident;
    let f = inc.figures(d.now);
    let status = if inc.auto_mitigated {
        format!(
            "{} (auto-mitigated: medic's repair was verified before anyone acknowledged it)",
            inc.status
        )
    } else {
        inc.status.to_string()
    };
    let key: Vec<String> = inc.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
    doc.heading("Summary");
    doc.push(Block::Facts(vec![
        ("Level".into(), inc.level.to_string()),
        ("Status".into(), status),
        (
            "About".into(),
            if key.is_empty() {
                "-".into()
            } else {
                key.join(", ")
            },
        ),
        (
            "Assignee".into(),
            inc.assignee.clone().unwrap_or_else(|| "nobody".into()),
        ),
        ("Opened".into(), utc(inc.opened_at)),
        ("Acknowledged".into(), opt_time(inc.acknowledged_at)),
        ("Mitigated".into(), opt_time(inc.mitigated_at)),
        ("Resolved".into(), opt_time(inc.resolved_at)),
        (
            "Time to acknowledge".into(),
            opt_span(f.time_to_acknowledge),
        ),
        ("Time to mitigate".into(), opt_span(f.time_to_mitigate)),
        ("Time to resolve".into(), opt_span(f.time_to_resolve)),
        (
            "Escalations".into(),
            if inc.escalations.is_empty() {
                "none".into()
            } else {
                inc.escalations.join(", ")
            },
        ),
    ]));
}

fn impact(doc: &mut Doc, d: &ReportData) {
    let inc = &d.incident;
    let end = inc.resolved_at.unwrap_or(d.now);
    let mut targets: Vec<String> = d
        .alerts
        .iter()
        .filter_map(|a| a.labels.get("instance").map(str::to_string))
        .chain(d.executions.iter().map(|e| e.target.clone()))
        .collect();
    targets.sort();
    targets.dedup();
    doc.heading("Impact");
    doc.push(Block::Facts(vec![
        ("Duration".into(), span(end - inc.opened_at)),
        (
            "Affected targets".into(),
            if targets.is_empty() {
                "-".into()
            } else {
                targets.join(", ")
            },
        ),
    ]));
    if d.budgets.is_empty() {
        doc.paragraph("No SLO of this service is recorded, so no error budget is shown.");
    } else {
        doc.push(Block::Table {
            headers: vec![
                "SLO".into(),
                "Objective".into(),
                "Error budget spent".into(),
            ],
            rows: d
                .budgets
                .iter()
                .map(|b| {
                    vec![
                        b.slo.clone(),
                        format!("{:.3}%", b.objective * 100.0),
                        format!("{:.2}% of the period's budget", b.spent * 100.0),
                    ]
                })
                .collect(),
        });
    }
}

fn contributing(doc: &mut Doc, d: &ReportData) {
    doc.heading("Contributing alerts");
    if d.alerts.is_empty() {
        doc.paragraph("No alert history within the incident (opened by hand, or the history has been pruned).");
        return;
    }
    doc.push(Block::Table {
        headers: vec![
            "Alert".into(),
            "Labels".into(),
            "Fired".into(),
            "Resolved".into(),
            "Lasted".into(),
        ],
        rows: d
            .alerts
            .iter()
            .map(|a| {
                vec![
                    a.labels.get("alertname").unwrap_or("").to_string(),
                    a.labels.to_string(),
                    utc(a.fired_at),
                    opt_time(a.resolved_at),
                    opt_span(a.resolved_at.map(|r| r - a.fired_at)),
                ]
            })
            .collect(),
    });
}

fn repairs(doc: &mut Doc, d: &ReportData) {
    doc.heading("Repairs");
    if d.executions.is_empty() {
        doc.paragraph("medic ran no repair for this incident.");
        return;
    }
    for e in &d.executions {
        doc.subheading(format!(
            "{} on {}: {}",
            e.playbook,
            e.target,
            e.status.as_str()
        ));
        let mut facts = vec![
            ("Execution".into(), e.id.clone()),
            ("Started".into(), utc(e.created_at)),
            ("Finished".into(), opt_time(e.finished_at)),
            ("Summary".into(), e.summary.clone()),
        ];
        if let Some(dg) = &e.diagnosis {
            facts.push(("Diagnosis".into(), format!("{} ({})", dg.cause, dg.when)));
        }
        if !e.actions_run.is_empty() {
            facts.push(("Actions".into(), e.actions_run.join(", ")));
        }
        doc.push(Block::Facts(facts));
        doc.push(Block::Table {
            headers: vec![
                "Step".into(),
                "Name".into(),
                "Result".into(),
                "At".into(),
                "Took".into(),
                "Message".into(),
            ],
            rows: e
                .steps
                .iter()
                .map(|s| {
                    vec![
                        s.kind.to_string(),
                        s.name.clone(),
                        s.state.as_str().to_string(),
                        utc(s.started_at),
                        opt_span(s.ended_at.map(|t| t - s.started_at)),
                        s.message.clone(),
                    ]
                })
                .collect(),
        });
        if !e.evidence.is_empty() {
            doc.paragraph("Evidence collected:");
            let mut text = String::new();
            for (k, v) in &e.evidence {
                let mut shown = serde_json::to_string_pretty(v).unwrap_or_default();
                if shown.chars().count() > MAX_EVIDENCE {
                    shown = shown.chars().take(MAX_EVIDENCE).collect::<String>() + " …(cut)";
                }
                text.push_str(&format!("{k}:\n{shown}\n\n"));
            }
            doc.push(Block::Code(text.trim_end().to_string()));
        }
    }
}

/// The markers of the charts: the fault, the alert, each repair action and verification, the
/// resolution.
fn markers(d: &ReportData, fault_at: Option<i64>) -> Vec<Marker> {
    let inc = &d.incident;
    let mut m = Vec::new();
    if let Some(f) = fault_at {
        m.push(Marker {
            at: f,
            label: "fault".into(),
            kind: MarkerKind::Fault,
        });
    }
    if let Some(a) = d.alerts.iter().map(|a| a.fired_at).min() {
        m.push(Marker {
            at: a,
            label: "alert".into(),
            kind: MarkerKind::Alert,
        });
    }
    for e in &d.executions {
        for s in &e.steps {
            match (s.kind, s.state) {
                (StepKind::Action, _) => m.push(Marker {
                    at: s.started_at,
                    label: format!("repair: {}", s.name),
                    kind: MarkerKind::Repair,
                }),
                (StepKind::Verify, StepState::Succeeded) => m.push(Marker {
                    at: s.ended_at.unwrap_or(s.started_at),
                    label: "verified".into(),
                    kind: MarkerKind::Verified,
                }),
                _ => {}
            }
        }
    }
    if let Some(r) = inc.resolved_at {
        m.push(Marker {
            at: r,
            label: "resolved".into(),
            kind: MarkerKind::Resolved,
        });
    }
    m
}

fn charts(doc: &mut Doc, d: &ReportData) {
    doc.heading("Key series");
    if d.charts.is_empty() {
        doc.paragraph(
            "No alerting rule of medic's is behind these alerts, so there is no series to draw.",
        );
        return;
    }
    for c in &d.charts {
        doc.paragraph(format!("{}: {}", c.alertname, c.query));
        doc.push(Block::Chart(Chart {
            title: c.alertname.clone(),
            start: d.chart_start,
            end: d.chart_end,
            lines: c
                .lines
                .iter()
                .map(|(name, points)| Line {
                    name: name.clone(),
                    points: points.clone(),
                })
                .collect(),
            markers: markers(d, c.fault_at),
            threshold: c.threshold,
        }));
    }
}
