//! The demo's monitor: polls medic's alerts and executions and prints what changed on the timeline.

use medic_heal::kinds::StepKind;

use super::scenario::Demo;
use super::*;

/// Polls medic's APIs and prints what changed: alerts firing and resolved, executions and their
/// steps.
/// What the monitor has printed of each execution's steps.
type Printed = HashMap<String, Vec<(StepKind, String, StepState)>>;

pub(super) fn spawn_monitor(d: Arc<Demo>) {
    tokio::spawn(async move {
        let mut printed = Printed::new();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let alerts = get_json(&d.client, &d.medic.url("/api/v1/alerts")).await;
            let execs = get_json(
                &d.client,
                &d.medic.url("/api/v1/medic/heal/executions?limit=200"),
            )
            .await;
            let (Some(alerts), Some(execs)) = (alerts, execs) else {
                d.medic_unreachable();
                continue;
            };
            let now = now_ms();
            d.medic_reachable(now);
            d.show_alerts(&alerts, now);
            d.show_executions(&execs, &mut printed, now);
        }
    });
}

impl Demo {
    fn medic_unreachable(&self) {
        let mut s = self.seen.lock().unwrap();
        if s.medic_down_since.is_none() {
            s.medic_down_since = Some(now_ms());
        }
    }

    fn medic_reachable(&self, now: i64) {
        if let Some(since) = self.seen.lock().unwrap().medic_down_since.take() {
            if now - since > 1000 {
                self.timeline.event(
                    "●",
                    format!(
                        "medic answers again (it was unreachable for {:.1}s)",
                        (now - since) as f64 / 1000.0
                    ),
                );
            }
        }
    }

    /// Alerts that began or stopped firing.
    fn show_alerts(&self, alerts: &Value, now: i64) {
        let mut firing_now = HashSet::new();
        for a in alerts["data"]["alerts"].as_array().into_iter().flatten() {
            if a["state"] != "firing" {
                continue;
            }
            let key = alert_key(&a["labels"]);
            firing_now.insert(key.clone());
            let new = {
                let mut s = self.seen.lock().unwrap();
                if s.firing.contains_key(&key) {
                    false
                } else {
                    s.firing.insert(key.clone(), now);
                    s.fired.push((key.clone(), now));
                    true
                }
            };
            if new {
                let at = a["activeAt"]
                    .as_str()
                    .and_then(medic_model::parse_rfc3339)
                    .unwrap_or(now);
                self.timeline.event_at(
                    at,
                    "🔔",
                    format!(
                        "alert {} firing: {}",
                        a["labels"]["alertname"].as_str().unwrap_or("?"),
                        a["annotations"]["summary"].as_str().unwrap_or("")
                    ),
                );
            }
        }
        let gone: Vec<String> = {
            let mut s = self.seen.lock().unwrap();
            let gone: Vec<String> = s
                .firing
                .keys()
                .filter(|k| !firing_now.contains(*k))
                .cloned()
                .collect();
            for k in &gone {
                s.firing.remove(k);
            }
            gone
        };
        for k in gone {
            self.timeline.event("🔕", format!("alert {k} resolved"));
        }
    }

    /// New executions, steps that changed, executions that ended.
    fn show_executions(&self, execs: &Value, printed: &mut Printed, now: i64) {
        let list: Vec<Execution> = execs["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| serde_json::from_value(e.clone()).ok())
            .collect();
        for e in list.iter().rev() {
            self.show_execution(e, printed.entry(e.id.clone()).or_default(), now);
        }
    }

    fn show_execution(
        &self,
        e: &Execution,
        old: &mut Vec<(StepKind, String, StepState)>,
        now: i64,
    ) {
        if old.is_empty() {
            self.timeline.event_at(
                e.created_at,
                "▶",
                format!(
                    "medic: playbook {} for {} (alert {})",
                    e.playbook,
                    e.target,
                    e.trigger
                        .labels
                        .get("alertname")
                        .map_or("-", String::as_str)
                ),
            );
        }
        for (i, s) in e.steps.iter().enumerate() {
            let now_state = (s.kind, s.name.clone(), s.state);
            if old.get(i) == Some(&now_state) {
                continue;
            }
            if let Some(line) = describe_step(e, s) {
                let at = match s.state {
                    StepState::Started => s.started_at,
                    _ => s.ended_at.unwrap_or(s.started_at),
                };
                self.timeline.event_at(at, line.0, format!("  {}", line.1));
            }
            if i < old.len() {
                old[i] = now_state;
            } else {
                old.push(now_state);
            }
        }
        let mut s = self.seen.lock().unwrap();
        let was_final = s.executions.get(&e.id).is_some_and(|p| p.status.is_final());
        s.executions.insert(e.id.clone(), e.clone());
        drop(s);
        if e.status.is_final() && !was_final {
            let took = e
                .finished_at
                .map(|f| format!(" in {:.1}s", (f - e.created_at) as f64 / 1000.0))
                .unwrap_or_default();
            let mark = match e.status {
                Status::Succeeded => "✅",
                Status::Vetoed => "⛔",
                _ => "❌",
            };
            self.timeline.event_at(
                e.finished_at.unwrap_or(now),
                mark,
                format!(
                    "  {} {}{took}: {}",
                    e.playbook,
                    e.status.as_str(),
                    e.summary.lines().next().unwrap_or("")
                ),
            );
        }
    }
}

/// A timeline line for a step, when it is worth one.
pub(super) fn describe_step(
    e: &Execution,
    s: &medic_heal::journal::Step,
) -> Option<(&'static str, String)> {
    let took = s
        .ended_at
        .map(|t| format!(" ({:.1}s)", (t - s.started_at) as f64 / 1000.0))
        .unwrap_or_default();
    let first_line = s.message.lines().next().unwrap_or("").to_string();
    Some(match (s.kind.as_str(), s.state) {
        ("guard", StepState::Failed) => ("⛔", format!("guard {}: {first_line}", s.name)),
        ("guard", _) => return None,
        ("collect", StepState::Succeeded) => ("🔎", format!("evidence: {}{took}", s.name)),
        ("collect", _) => return None,
        ("diagnose", StepState::Succeeded) => (
            "🔎",
            match &e.diagnosis {
                Some(d) if !d.description.is_empty() => {
                    format!("cause: {} — {}", d.cause, d.description)
                }
                _ => first_line,
            },
        ),
        ("diagnose", StepState::Failed) => ("?", format!("no diagnosis: {first_line}")),
        ("action", StepState::Started) => ("⚙", format!("action {} …", s.name)),
        ("action", st) => ("⚙", format!("action {} {}{took}", s.name, st.as_str())),
        ("verify", StepState::Started) => ("⏱", "verifying …".to_string()),
        ("verify", StepState::Succeeded) => ("✔", format!("verified: {first_line}")),
        ("verify", _) => ("✗", format!("verification: {first_line}")),
        ("rollback", StepState::Started) => return None,
        ("rollback", st) => ("↩", format!("rollback of {} {}{took}", s.name, st.as_str())),
        ("escalate", _) => ("📟", format!("escalated: {first_line}")),
        ("resume", _) => ("↻", format!("resumed after a restart: {first_line}")),
        ("notify", StepState::Succeeded) => ("✉", format!("reported to {}", s.name)),
        (_, StepState::Started) => return None,
        (k, st) => ("·", format!("{k} {} {}", s.name, st.as_str())),
    })
}

pub(super) async fn get_json(c: &reqwest::Client, url: &str) -> Option<Value> {
    let r = c.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Shared view of medic's state, refreshed by the monitor.
#[derive(Default)]
pub(super) struct Seen {
    /// Firing alerts now: key → first seen firing (ms).
    pub(super) firing: HashMap<String, i64>,
    /// Every time an alert was seen firing first: (key, ms).
    pub(super) fired: Vec<(String, i64)>,
    pub(super) executions: BTreeMap<String, Execution>,
    pub(super) medic_down_since: Option<i64>,
}

pub(super) fn alert_key(labels: &Value) -> String {
    format!(
        "{}/{}",
        labels["alertname"].as_str().unwrap_or("?"),
        labels["instance"]
            .as_str()
            .or(labels["job"].as_str())
            .unwrap_or("")
    )
}
