//! Reports for people: what medic saw, concluded, did and verified.

use serde_json::Value as Json;

use crate::journal::Execution;
use crate::kinds::{NotifyEvent, StepKind};

/// The title of a notification about `e`.
pub fn title(e: &Execution, event: NotifyEvent) -> String {
    match event {
        NotifyEvent::Success => format!("medic repaired {}: {}", e.target, e.playbook),
        NotifyEvent::Failure => format!(
            "medic could not repair {}: {} (escalated)",
            e.target, e.playbook
        ),
        NotifyEvent::Approval => {
            format!("medic asks approval to repair {}: {}", e.target, e.playbook)
        }
        NotifyEvent::Vetoed => {
            format!("medic did not repair {}: {} (vetoed)", e.target, e.playbook)
        }
        NotifyEvent::DryRun => format!("medic dry run for {}: {}", e.target, e.playbook),
        NotifyEvent::CircuitBreaker => {
            format!("medic paused {}: circuit breaker opened", e.playbook)
        }
        NotifyEvent::Started => format!("medic is repairing {}: {}", e.target, e.playbook),
        other => format!("medic {other}: {} for {}", e.playbook, e.target),
    }
}

/// The first `n` lines of a `logs:` collector's evidence as `<time> <line>` (each cut at 200
/// characters); `None` for other evidence.
pub fn log_excerpt(v: &Json, n: usize) -> Option<Vec<String>> {
    let lines = v.get("lines")?.as_array()?;
    Some(
        lines
            .iter()
            .take(n)
            .map(|l| {
                let text: String = l["line"].as_str().unwrap_or("").chars().take(200).collect();
                format!("{} {}", l["ts"].as_str().unwrap_or(""), text)
            })
            .collect(),
    )
}

/// What medic saw, concluded, did and verified, as text for people.
pub fn report(e: &Execution, url: &str) -> String {
    let mut s = String::new();
    s.push_str(&format!("{}\n\n", e.summary));
    let labels: Vec<String> = e
        .trigger
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    s.push_str(&format!(
        "Saw: {} trigger {{{}}}\n",
        e.trigger.kind,
        labels.join(", ")
    ));
    for (k, v) in &e.evidence {
        if let Some(lines) = log_excerpt(v, 5) {
            s.push_str(&format!("  {k} = {} log lines\n", v["count"]));
            for l in lines {
                s.push_str(&format!("    {l}\n"));
            }
            continue;
        }
        let short = match v.get("value") {
            Some(val) if !val.is_null() => val.to_string(),
            _ => match v.get("stdout").and_then(Json::as_str) {
                Some(out) => out.trim().chars().take(120).collect(),
                None => match v.get("status") {
                    Some(st) => format!("HTTP {st}"),
                    None => v.to_string().chars().take(120).collect(),
                },
            },
        };
        s.push_str(&format!("  {k} = {short}\n"));
    }
    match &e.diagnosis {
        Some(d) => {
            let support: Vec<String> = d.support.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            s.push_str(&format!(
                "Concluded: {} because {} ({})\n",
                d.cause,
                d.when,
                support.join("; ")
            ));
        }
        None => s.push_str("Concluded: nothing\n"),
    }
    let did: Vec<String> = e
        .steps
        .iter()
        .filter(|st| {
            matches!(
                st.kind,
                StepKind::Action | StepKind::Rollback | StepKind::Approval | StepKind::Guard
            )
        })
        .map(|st| format!("  {} {} {:?}: {}", st.kind, st.name, st.state, st.message))
        .collect();
    s.push_str(&format!("Did:\n{}\n", did.join("\n")));
    if let Some(v) = e.steps.iter().rev().find(|st| st.kind == StepKind::Verify) {
        s.push_str(&format!("Verified: {}\n", v.message));
    }
    if !url.is_empty() {
        s.push_str(&format!(
            "\nExecution: {}/api/v1/medic/heal/executions/{}\n",
            url.trim_end_matches('/'),
            e.id
        ));
    } else {
        s.push_str(&format!("\nExecution: {}\n", e.id));
    }
    s
}
