//! What a playbook would do for an alert, without doing it: the trigger match, the target,
//! the evidence it would collect, the diagnosis over evidence given in the alert file, the
//! ranked actions with every template expanded, verification and notification. This is
//! `medic heal dry-run PLAYBOOK --alert FILE`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::action;
use crate::evidence::{action_plan, diagnose, plan_text, variables};
use crate::playbook::*;

/// The alert file: labels and annotations as an alert carries them, and optionally the
/// evidence to diagnose with (by collector name, in the shapes the engine collects).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFile {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub evidence: BTreeMap<String, Json>,
}

/// The plan as text, and whether the playbook would act on this alert.
pub fn dry_run(pb: &Playbook, alert: &AlertFile) -> (String, bool) {
    let mut s = String::new();
    let mut acts = true;
    let _ = writeln!(s, "playbook {} ({})", pb.name, pb.file.display());
    if !pb.description.is_empty() {
        let _ = writeln!(s, "  {}", pb.description);
    }
    let labels =
        medic_model::Labels::from_pairs(alert.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    acts &= write_trigger(&mut s, pb, &labels);
    if !pb.enabled {
        let _ = writeln!(s, "guard: the playbook is disabled; nothing would run");
        acts = false;
    }
    let scope = match pb.scope(&alert.labels, &alert.annotations, "dry-run") {
        Ok(sc) => sc,
        Err(ScopeError::Refused(e)) => {
            let _ = writeln!(s, "refused: {e}");
            return (s, false);
        }
        Err(e) => {
            let _ = writeln!(s, "error: {e}");
            return (s, false);
        }
    };
    let group = pb.group_of(&scope).unwrap_or_else(|e| format!("<{e}>"));
    let _ = writeln!(s, "target: {}   group: {group}", scope.target);
    for (k, v) in &scope.params {
        let _ = writeln!(s, "param {k} = {v:?}");
    }
    write_guards(&mut s, pb);
    write_collect(&mut s, pb, &scope, alert);
    acts &= write_diagnosis(&mut s, pb, &scope, alert);
    write_verify(&mut s, pb, &scope);
    (s, acts)
}

/// Whether the trigger matches the alert, written out.
fn write_trigger(s: &mut String, pb: &Playbook, labels: &medic_model::Labels) -> bool {
    let mut acts = true;
    match &pb.trigger {
        Trigger::Alert(ms) => {
            let sel: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
            if pb.matches_alert(labels) {
                let _ = writeln!(
                    s,
                    "trigger: the alert {labels} matches {{{}}}",
                    sel.join(", ")
                );
            } else {
                let failing: Vec<String> = ms
                    .iter()
                    .filter(|m| !m.matches(labels.get(&m.name).unwrap_or("")))
                    .map(|m| m.to_string())
                    .collect();
                let _ = writeln!(
                    s,
                    "trigger: the alert {labels} does NOT match: {} fails",
                    failing.join(", ")
                );
                acts = false;
            }
        }
        Trigger::Condition { query, for_ } => {
            let _ = writeln!(s, "trigger: condition {query} holding for {}; the alert's labels stand for one result series", Dur(*for_));
        }
    }
    acts
}

fn write_guards(s: &mut String, pb: &Playbook) {
    let g = &pb.guards;
    let mut guards = vec![
        "enabled".to_string(),
        "paused".into(),
        "maintenance".into(),
        "resolved".into(),
        "lock (one execution per target)".into(),
    ];
    if g.cooldown > 0 {
        guards.push(format!("cooldown {}", Dur(g.cooldown)));
    }
    if let Some(r) = g.rate_limit {
        guards.push(format!("rate_limit {} per {}", r.max, r.per));
    }
    match &g.blast_radius {
        Some(BlastRadius::Count(n)) => guards.push(format!("blast_radius {n} at once")),
        Some(BlastRadius::Percent { percent, .. }) => {
            guards.push(format!("blast_radius {percent}% of the group"))
        }
        None => {}
    }
    if let Some(b) = g.circuit_breaker {
        guards.push(format!(
            "circuit_breaker {} failures in {}",
            b.failures, b.within
        ));
    }
    let _ = writeln!(s, "guards: {}", guards.join(", "));
    if pb.dry_run {
        let _ = writeln!(
            s,
            "the playbook is in dry-run mode: it records but never acts"
        );
    }
}

fn write_collect(s: &mut String, pb: &Playbook, scope: &Scope, alert: &AlertFile) {
    let _ = writeln!(s, "collect:");
    for c in &pb.collect {
        let what = match &c.kind {
            CollectKind::Query(t) => format!(
                "query {}",
                t.expand(scope).unwrap_or_else(|e| format!("<{e}>"))
            ),
            CollectKind::Range { query, range, step } => format!(
                "range query {} over {} every {}",
                query.expand(scope).unwrap_or_else(|e| format!("<{e}>")),
                Dur(*range),
                Dur(*step)
            ),
            CollectKind::Exec(spec) => match action::command(spec, scope) {
                Ok(cmd) => plan_text(&serde_json::json!({"exec": cmd})),
                Err(e) => format!("<{e}>"),
            },
            CollectKind::Http(spec) => match action::request(spec, scope) {
                Ok(r) => format!("{} {}", r.method, r.url),
                Err(e) => format!("<{e}>"),
            },
            CollectKind::Logs {
                query,
                range,
                limit,
            } => format!(
                "logs {} over the last {}, at most {limit} lines",
                query.expand(scope).unwrap_or_else(|e| format!("<{e}>")),
                Dur(*range)
            ),
        };
        let given = if alert.evidence.contains_key(&c.name) {
            " (given in the alert file)"
        } else {
            ""
        };
        let _ = writeln!(s, "  {}: {what}{given}", c.name);
    }
}

/// The diagnosis over the given evidence and the ranked actions; whether a cause matched.
fn write_diagnosis(s: &mut String, pb: &Playbook, scope: &Scope, alert: &AlertFile) -> bool {
    let mut acts = true;
    let vars = variables(scope, &alert.evidence);
    let _ = writeln!(s, "diagnose:");
    let cause = match diagnose(pb, &vars) {
        Ok(d) => {
            for (name, why) in &d.rejected {
                let _ = writeln!(s, "  {name}: no — {why}");
            }
            let support: Vec<String> = d.support.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                s,
                "  {}: YES — {} [{}]",
                d.cause,
                d.when,
                support.join(", ")
            );
            Some(d.cause)
        }
        Err(rejected) => {
            for (name, why) in &rejected {
                let _ = writeln!(s, "  {name}: no — {why}");
            }
            let _ = writeln!(s, "  no cause matched: medic would escalate to people");
            acts = false;
            None
        }
    };
    if let Some(cause) = cause {
        let c = pb
            .diagnose
            .iter()
            .find(|c| c.name == cause)
            .expect("diagnosed cause exists");
        let _ = writeln!(
            s,
            "actions (in order; trust may re-rank them by their record):"
        );
        for (i, name) in c.actions.iter().enumerate() {
            let a = &pb.actions[name];
            let plan = action_plan(a, scope);
            let approval = match a.approval {
                Approval::Never => "runs by itself",
                Approval::Always => "needs approval",
                Approval::Untrusted => "needs approval until trusted",
            };
            let _ = writeln!(s, "  {}. {name} ({approval}): {}", i + 1, plan_text(&plan));
            if let Some(rb) = plan.get("rollback") {
                let _ = writeln!(s, "     rollback: {}", plan_text(rb));
            }
        }
    }
    acts
}

fn write_verify(s: &mut String, pb: &Playbook, scope: &Scope) {
    let v = &pb.verify;
    let check = match &v.check {
        VerifyCheck::Query(t) => format!(
            "query {} returns a result",
            t.expand(scope).unwrap_or_else(|e| format!("<{e}>"))
        ),
        VerifyCheck::AlertResolved => "the alert resolves".into(),
        VerifyCheck::Exec(spec) => match action::command(spec, scope) {
            Ok(cmd) => format!("{} succeeds", plan_text(&serde_json::json!({"exec": cmd}))),
            Err(e) => format!("<{e}>"),
        },
        VerifyCheck::Http(spec) => match action::request(spec, scope) {
            Ok(r) => format!("{} {} answers as expected", r.method, r.url),
            Err(e) => format!("<{e}>"),
        },
    };
    let _ = writeln!(
        s,
        "verify: {check} within {} (every {}{})",
        Dur(v.within),
        Dur(v.interval),
        if v.after > 0 {
            format!(", starting after {}", Dur(v.after))
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "on failure: rollback if defined, then the next action; when none is left, escalate to {}",
        if pb.notify.escalate.is_empty() {
            pb.notify.receivers.join(", ")
        } else {
            pb.notify.escalate.join(", ")
        }
    );
    if !pb.notify.receivers.is_empty() {
        let _ = writeln!(s, "notify: {}", pb.notify.receivers.join(", "));
    }
}
