//! Evidence and diagnosis, shared by the engine and `medic heal dry-run`: what a query result
//! looks like to diagnosis expressions, the variables they see, the first cause that holds, and
//! what an action would do with its templates expanded.

use std::collections::BTreeMap;

use medic_model::QuerySeries;
use serde_json::{json, Value as Json};

use crate::action;
use crate::journal::Diagnosis;
use crate::playbook::*;

/// Labels as a sorted map.
pub fn labels_map(l: &medic_model::Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// Evidence from a query result, as diagnosis expressions see it: `value` (the first
/// series' latest value, or null), `empty`, `series` (labels and value, or values for a
/// range) and, for ranges, `min`, `max`, `avg`, `first`, `last`, `delta` of the first series.
pub fn query_evidence(r: &[QuerySeries], range: bool) -> Json {
    let series: Vec<Json> = r
        .iter()
        .take(100)
        .map(|s| {
            let labels = labels_map(&s.labels);
            if range {
                json!({"labels": labels, "values": s.samples.iter().map(|&(_, v)| num(v)).collect::<Vec<_>>()})
            } else {
                json!({"labels": labels, "value": s.samples.last().map(|&(_, v)| num(v))})
            }
        })
        .collect();
    let first: Vec<f64> = r
        .first()
        .map(|s| {
            s.samples
                .iter()
                .map(|&(_, v)| v)
                .filter(|v| v.is_finite())
                .collect()
        })
        .unwrap_or_default();
    let mut out = json!({
        "value": first.last().map(|&v| num(v)),
        "empty": r.is_empty(),
        "series": series,
    });
    if range && !first.is_empty() {
        let min = first.iter().copied().fold(f64::INFINITY, f64::min);
        let max = first.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = first.iter().sum::<f64>() / first.len() as f64;
        out["min"] = num(min);
        out["max"] = num(max);
        out["avg"] = num(avg);
        out["first"] = num(first[0]);
        out["last"] = num(*first.last().expect("not empty"));
        out["delta"] = num(first.last().expect("not empty") - first[0]);
    }
    out
}

fn num(v: f64) -> Json {
    serde_json::Number::from_f64(v)
        .map(Json::Number)
        .unwrap_or(Json::Null)
}

/// The variables diagnosis expressions see.
pub fn variables(scope: &Scope, evidence: &BTreeMap<String, Json>) -> BTreeMap<String, Json> {
    let mut v = evidence.clone();
    v.insert("labels".into(), json!(scope.labels));
    v.insert("annotations".into(), json!(scope.annotations));
    v.insert("params".into(), json!(scope.params));
    v.insert("target".into(), json!(scope.target));
    v.insert("execution".into(), json!(scope.execution));
    v
}

/// The first cause whose condition holds, or why none did.
pub fn diagnose(
    pb: &Playbook,
    vars: &BTreeMap<String, Json>,
) -> Result<Diagnosis, Vec<(String, String)>> {
    let mut rejected = Vec::new();
    for c in &pb.diagnose {
        match c.when.eval_bool(vars) {
            Ok(true) => {
                return Ok(Diagnosis {
                    cause: c.name.clone(),
                    description: c.description.clone(),
                    when: c.when.source().to_string(),
                    support: c.when.support(vars),
                    rejected,
                })
            }
            Ok(false) => rejected.push((c.name.clone(), format!("{} is false", c.when.source()))),
            Err(e) => rejected.push((c.name.clone(), format!("{}: {e}", c.when.source()))),
        }
    }
    Err(rejected)
}

/// What an action would do, with its templates expanded.
pub fn action_plan(a: &Action, scope: &Scope) -> Json {
    let main = match &a.kind {
        ActionKind::Exec(s) => match action::command(s, scope) {
            Ok(c) => json!({"exec": c}),
            Err(e) => json!({"error": e}),
        },
        ActionKind::Http(s) => match action::request(s, scope) {
            Ok(r) => json!({"http": r}),
            Err(e) => json!({"error": e}),
        },
        ActionKind::Wait(ms) => json!({"wait": Dur(*ms).to_string()}),
        ActionKind::Steps(steps) => json!({
            "steps": steps
                .iter()
                .map(|s| json!({"name": s.name, "plan": action_plan(s, scope)}))
                .collect::<Vec<_>>()
        }),
        ActionKind::Notify { receivers, message } => {
            json!({"notify": {"receivers": receivers, "message": message.expand(scope).unwrap_or_else(|e| e)}})
        }
    };
    match &a.rollback {
        Some(rb) => {
            let mut m = main;
            m["rollback"] = action_plan(rb, scope);
            m
        }
        None => main,
    }
}

/// One line for an action plan.
pub fn plan_text(plan: &Json) -> String {
    if let Some(argv) = plan.pointer("/exec/argv").and_then(Json::as_array) {
        let args: Vec<String> = argv
            .iter()
            .map(|a| {
                let s = a.as_str().unwrap_or("");
                if !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
                {
                    s.to_string()
                } else {
                    format!("'{}'", s.replace('\'', "'\\''"))
                }
            })
            .collect();
        return format!("exec {}", args.join(" "));
    }
    if let Some(h) = plan.get("http") {
        return format!(
            "{} {}",
            h["method"].as_str().unwrap_or(""),
            h["url"].as_str().unwrap_or("")
        );
    }
    if let Some(w) = plan.get("wait") {
        return format!("wait {}", w.as_str().unwrap_or(""));
    }
    if let Some(n) = plan.get("notify") {
        return format!("notify {}", n["receivers"]);
    }
    if let Some(steps) = plan.get("steps").and_then(Json::as_array) {
        let parts: Vec<String> = steps
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s["name"].as_str().unwrap_or(""),
                    plan_text(&s["plan"])
                )
            })
            .collect();
        return format!("steps {}", parts.join(", then "));
    }
    plan.get("error")
        .and_then(Json::as_str)
        .map(|e| format!("(cannot expand: {e})"))
        .unwrap_or_default()
}
