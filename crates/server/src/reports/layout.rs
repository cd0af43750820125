//! A scheduled report laid out, section by section, as the operations manuals ask: SLO
//! attainment, availability and latency, alerts (the noisiest with a suggestion each),
//! incidents with MTTA/MTTR, repairs (success rate, actions ranked, time to a verified fix),
//! anomalies, and trend charts. Pure: figures in, document out.

use medic_report::time::{span, utc};
use medic_report::{Block, Chart, Doc, Line};

use super::gather::Figures;

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.3}%", x * 100.0)
    } else {
        "-".into()
    }
}

fn ms(x: Option<i64>) -> String {
    x.map(span).unwrap_or_else(|| "-".into())
}

fn num(x: f64, unit: &str) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let v = if x.abs() >= 100.0 || x == x.trunc() {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    };
    if unit.is_empty() {
        v
    } else {
        format!("{v} {unit}")
    }
}

/// The whole report.
pub fn build(f: &Figures) -> Doc {
    let mut doc = Doc::new(f.title.clone());
    doc.push(Block::Facts(vec![
        ("Period".into(), f.period.clone()),
        ("From".into(), utc(f.start)),
        ("To".into(), utc(f.end)),
        ("Time zone".into(), f.timezone.clone()),
        ("Generated".into(), utc(f.generated_at)),
    ]));
    summary(&mut doc, f);
    if !f.errors.is_empty() {
        doc.heading("Figures that could not be computed");
        doc.push(Block::Bullets(f.errors.clone()));
    }
    slos(&mut doc, f);
    availability(&mut doc, f);
    alerts(&mut doc, f);
    incidents(&mut doc, f);
    repairs(&mut doc, f);
    anomalies(&mut doc, f);
    doc
}

/// The first lines, also what a chat receiver gets.
pub fn summary_lines(f: &Figures) -> Vec<String> {
    let met = f.slos.iter().filter(|s| s.met).count();
    let mut out = vec![format!("{} ({} to {})", f.period, utc(f.start), utc(f.end))];
    if !f.slos.is_empty() {
        out.push(format!("SLOs met: {met} of {}", f.slos.len()));
    }
    if let Some(worst) = f.availability.first() {
        out.push(format!(
            "Lowest availability: {} {}",
            worst.job,
            pct(worst.ratio)
        ));
    }
    out.push(format!("Alerts fired: {}", f.alerts.fired));
    out.push(format!(
        "Incidents: {} (MTTA {}, MTTR {}, {} mitigated by medic)",
        f.incidents.opened,
        ms(f.incidents.mtta_ms),
        ms(f.incidents.mttr_ms),
        f.incidents.auto_mitigated
    ));
    out.push(format!(
        "Repairs: {} ({} verified, success rate {})",
        f.repairs.executions,
        f.repairs.succeeded,
        f.repairs.success_rate.map_or("-".into(), pct)
    ));
    out
}

fn summary(doc: &mut Doc, f: &Figures) {
    doc.heading("Summary");
    doc.push(Block::Bullets(
        summary_lines(f).into_iter().skip(1).collect(),
    ));
}

fn slos(doc: &mut Doc, f: &Figures) {
    doc.heading("SLO attainment");
    if f.slos.is_empty() {
        doc.paragraph("No SLO is recorded (see docs/slo.md).");
        return;
    }
    doc.push(Block::Table {
        headers: ["SLO", "Objective", "Attained", "Budget spent", "Met"]
            .map(String::from)
            .to_vec(),
        rows: f
            .slos
            .iter()
            .map(|s| {
                vec![
                    s.id.clone(),
                    pct(s.objective),
                    pct(s.attainment),
                    pct(s.budget_spent),
                    if s.met { "yes" } else { "NO" }.into(),
                ]
            })
            .collect(),
    });
}

fn availability(doc: &mut Doc, f: &Figures) {
    doc.heading("Availability and latency");
    if f.availability.is_empty() {
        doc.paragraph("No scrape target (`up`) in the period.");
    } else {
        doc.push(Block::Table {
            headers: vec!["Job".into(), "Availability (mean of up)".into()],
            rows: f
                .availability
                .iter()
                .map(|a| vec![a.job.clone(), pct(a.ratio)])
                .collect(),
        });
    }
    if !f.availability_trend.is_empty() {
        doc.push(Block::Chart(Chart {
            title: "Availability by job".into(),
            start: f.start,
            end: f.end,
            lines: f
                .availability_trend
                .iter()
                .map(|(n, p)| Line {
                    name: n.clone(),
                    points: p.clone(),
                })
                .collect(),
            markers: Vec::new(),
            threshold: None,
        }));
    }
    if f.series.is_empty() {
        return;
    }
    doc.push(Block::Table {
        headers: ["Series", "Labels", "Mean", "Low", "High"]
            .map(String::from)
            .to_vec(),
        rows: f
            .series
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.labels.clone(),
                    num(s.mean, &s.unit),
                    num(s.min, &s.unit),
                    num(s.max, &s.unit),
                ]
            })
            .collect(),
    });
    let mut names: Vec<&str> = f.series.iter().map(|s| s.name.as_str()).collect();
    names.dedup();
    for name in names {
        doc.push(Block::Chart(Chart {
            title: name.to_string(),
            start: f.start,
            end: f.end,
            lines: f
                .series
                .iter()
                .filter(|s| s.name == name)
                .map(|s| Line {
                    name: s.labels.clone(),
                    points: s.points.clone(),
                })
                .collect(),
            markers: Vec::new(),
            threshold: None,
        }));
    }
}

fn alerts(doc: &mut Doc, f: &Figures) {
    let a = &f.alerts;
    doc.heading("Alerts");
    let mut by: Vec<(String, String)> = vec![("Fired".into(), a.fired.to_string())];
    by.extend(
        a.by_severity
            .iter()
            .map(|(s, n)| (format!("severity {s}"), n.to_string())),
    );
    doc.push(Block::Facts(by));
    if !a.per_day.is_empty() {
        doc.push(Block::Chart(Chart {
            title: "Alerts fired per day".into(),
            start: f.start,
            end: f.end,
            lines: vec![Line {
                name: "fired".into(),
                points: a.per_day.clone(),
            }],
            markers: Vec::new(),
            threshold: None,
        }));
    }
    if a.noisiest.is_empty() {
        return;
    }
    doc.subheading("Noisiest alerts");
    doc.push(Block::Table {
        headers: [
            "Alert",
            "Fired",
            "Flaps",
            "Time firing",
            "Median",
            "Suggestion",
        ]
        .map(String::from)
        .to_vec(),
        rows: a
            .noisiest
            .iter()
            .map(|n| {
                vec![
                    n.alertname.clone(),
                    n.fires.to_string(),
                    n.flaps.to_string(),
                    span(n.firing_ms),
                    ms(n.median_ms),
                    n.suggestion.clone(),
                ]
            })
            .collect(),
    });
}

fn incidents(doc: &mut Doc, f: &Figures) {
    let i = &f.incidents;
    doc.heading("Incidents");
    let mut facts = vec![
        ("Opened".to_string(), i.opened.to_string()),
        ("MTTA (mean time to acknowledge)".into(), ms(i.mtta_ms)),
        ("MTTR (mean time to resolve)".into(), ms(i.mttr_ms)),
        (
            "Mitigated by medic before anyone answered".into(),
            i.auto_mitigated.to_string(),
        ),
    ];
    facts.extend(i.by_level.iter().map(|(l, n)| (l.clone(), n.to_string())));
    doc.push(Block::Facts(facts));
    if i.list.is_empty() {
        return;
    }
    doc.push(Block::Table {
        headers: [
            "#", "Level", "Title", "Status", "Opened", "TTA", "TTR", "Auto",
        ]
        .map(String::from)
        .to_vec(),
        rows: i
            .list
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.level.clone(),
                    r.title.clone(),
                    r.status.clone(),
                    utc(r.opened_at),
                    ms(r.time_to_acknowledge),
                    ms(r.time_to_resolve),
                    if r.auto_mitigated { "yes" } else { "" }.into(),
                ]
            })
            .collect(),
    });
}

fn repairs(doc: &mut Doc, f: &Figures) {
    let r = &f.repairs;
    doc.heading("Repairs");
    doc.push(Block::Facts(vec![
        ("Executions".into(), r.executions.to_string()),
        ("Verified fixes".into(), r.succeeded.to_string()),
        ("Failed (escalated)".into(), r.failed.to_string()),
        (
            "Success rate".into(),
            r.success_rate.map_or("-".into(), pct),
        ),
        ("Fault to verified fix, median".into(), ms(r.fix_median_ms)),
        ("Fault to verified fix, p90".into(), ms(r.fix_p90_ms)),
    ]));
    if r.actions.is_empty() {
        return;
    }
    doc.subheading("Actions ranked by verified success");
    doc.push(Block::Table {
        headers: ["Action", "Runs", "Verified", "Rate"]
            .map(String::from)
            .to_vec(),
        rows: r
            .actions
            .iter()
            .map(|a| {
                vec![
                    a.action.clone(),
                    a.runs.to_string(),
                    a.verified.to_string(),
                    pct(a.rate),
                ]
            })
            .collect(),
    });
}

fn anomalies(doc: &mut Doc, f: &Figures) {
    doc.heading("Anomalies");
    if f.anomalies.is_empty() {
        doc.paragraph(
            "None recorded by anomaly rules in the period (medic keeps the recent ones in memory).",
        );
        return;
    }
    doc.push(Block::Table {
        headers: ["Rule", "Anomalies", "Top score"]
            .map(String::from)
            .to_vec(),
        rows: f
            .anomalies
            .iter()
            .map(|a| {
                vec![
                    a.rule.clone(),
                    a.count.to_string(),
                    format!("{:.2}", a.top_score),
                ]
            })
            .collect(),
    });
}
