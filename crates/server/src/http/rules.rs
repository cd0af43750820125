//! `/api/v1/rules`, `/api/v1/alerts` and `/-/reload`, in Prometheus's shapes: rule health,
//! `evaluationTime` in seconds, `lastEvaluation` and `activeAt` as RFC 3339, alert values
//! formatted as Go's `strconv.FormatFloat(v, 'e', -1, 64)` (`"1e+00"`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medic_rules::{Alert, AlertState, GroupStatus, RuleStatus};
use serde_json::{json, Map, Value};

use super::AppState;
use super::{ApiError, Params};

/// Go's zero `time.Time`, which Prometheus prints for "never".
use medic_model::format_rfc3339_nano as go_time;

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: the shortest exact digits, exponent with a
/// sign and at least two digits.
pub fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

fn alert_json(a: &Alert) -> Value {
    let mut m = Map::new();
    m.insert("labels".into(), json!(a.public_labels()));
    m.insert("annotations".into(), json!(a.annotations));
    m.insert("state".into(), json!(a.state.as_str()));
    m.insert("activeAt".into(), json!(go_time(a.active_at)));
    if a.keep_firing_since != 0 {
        m.insert(
            "keepFiringSince".into(),
            json!(go_time(a.keep_firing_since)),
        );
    }
    m.insert("value".into(), json!(format_float_e(a.value)));
    Value::Object(m)
}

fn health(r: &RuleStatus) -> &'static str {
    if r.health.last_eval == 0 {
        "unknown"
    } else if r.health.last_error.is_some() {
        "err"
    } else {
        "ok"
    }
}

fn rule_json(r: &RuleStatus, with_alerts: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(r.name));
    m.insert("query".into(), json!(r.query));
    match &r.alerting {
        Some(a) => {
            m.insert("state".into(), json!(a.state.as_str()));
            m.insert("duration".into(), json!(a.hold.as_secs_f64()));
            m.insert(
                "keepFiringFor".into(),
                json!(a.keep_firing_for.as_secs_f64()),
            );
            if let Some(w) = &a.keep_firing_while {
                m.insert("keepFiringWhile".into(), json!(w));
            }
            m.insert("labels".into(), json!(r.labels));
            m.insert("annotations".into(), json!(a.annotations));
            if with_alerts {
                m.insert(
                    "alerts".into(),
                    Value::Array(a.alerts.iter().map(alert_json).collect()),
                );
            }
            m.insert("type".into(), json!("alerting"));
            if r.anomaly {
                // medic: an anomaly rule (its alerts are those of an alerting rule).
                m.insert("anomaly".into(), json!(true));
            }
        }
        None => {
            if !r.labels.is_empty() {
                m.insert("labels".into(), json!(r.labels));
            }
            m.insert("type".into(), json!("recording"));
        }
    }
    m.insert("health".into(), json!(health(r)));
    if let Some(e) = &r.health.last_error {
        m.insert("lastError".into(), json!(e));
    }
    m.insert(
        "evaluationTime".into(),
        json!(r.health.duration.as_secs_f64()),
    );
    m.insert("lastEvaluation".into(), json!(go_time(r.health.last_eval)));
    Value::Object(m)
}

/// `GET /api/v1/rules`: `type=alert|record`, `rule_name[]`, `rule_group[]`, `file[]`,
/// `exclude_alerts=true`, as in Prometheus.
pub async fn rules(State(st): State<Arc<AppState>>, p: Params) -> Result<Response, ApiError> {
    let kind = match p.get("type").unwrap_or("") {
        "" => None,
        "alert" => Some(true),
        "record" => Some(false),
        other => {
            return Err(ApiError::bad_data(format!(
                "unsupported type {other:?}: use \"alert\" or \"record\""
            )))
        }
    };
    let exclude_alerts = match p.get("exclude_alerts").unwrap_or("false") {
        "true" | "1" => true,
        "false" | "0" | "" => false,
        other => {
            return Err(ApiError::bad_data(format!(
                "exclude_alerts: {other:?} is not a boolean"
            )))
        }
    };
    let set = |k: &str| -> HashSet<String> { p.all(k).into_iter().map(String::from).collect() };
    let (names, groups_wanted, files) = (set("rule_name[]"), set("rule_group[]"), set("file[]"));
    let mut groups = Vec::new();
    for g in st.rules.groups() {
        if !groups_wanted.is_empty() && !groups_wanted.contains(&g.name) {
            continue;
        }
        if !files.is_empty() && !files.contains(&g.file.display().to_string()) {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| kind.is_none_or(|alert| alert == r.alerting.is_some()))
            .filter(|r| names.is_empty() || names.contains(&r.name))
            .map(|r| rule_json(r, !exclude_alerts))
            .collect();
        if rules.is_empty() && (kind.is_some() || !names.is_empty()) {
            continue;
        }
        groups.push(group_json(&g, rules));
    }
    Ok(super::success(json!({ "groups": groups })))
}

fn group_json(g: &GroupStatus, rules: Vec<Value>) -> Value {
    json!({
        "name": g.name,
        "file": g.file.display().to_string(),
        "rules": rules,
        "interval": g.interval.as_secs_f64(),
        "limit": g.limit,
        "evaluationTime": g.last_duration.as_secs_f64(),
        "lastEvaluation": go_time(g.last_eval),
    })
}

/// `GET /api/v1/alerts`: every pending and firing alert.
pub async fn alerts(State(st): State<Arc<AppState>>) -> Response {
    let alerts: Vec<Value> = st
        .rules
        .groups()
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter_map(|r| r.alerting.as_ref())
        .flat_map(|a| a.alerts.iter())
        .filter(|a| a.state != AlertState::Inactive)
        .map(alert_json)
        .collect();
    super::success(json!({ "alerts": alerts }))
}

/// `POST /-/reload` (and `PUT`): re-reads the config file and the rule files. On failure the
/// previous rules keep running and the answer is 500 with the reason, as in Prometheus.
pub async fn reload(State(st): State<Arc<AppState>>) -> Response {
    match st.reloader.reload().await {
        Ok(s) => (
            StatusCode::OK,
            format!(
                "reloaded: {} rule files, {} groups, {} rules\n",
                s.files, s.groups, s.rules
            ),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_as_go_does() {
        // Expected values from Go: fmt.Println(strconv.FormatFloat(v, 'e', -1, 64)).
        assert_eq!(format_float_e(1.0), "1e+00");
        assert_eq!(format_float_e(0.0), "0e+00");
        assert_eq!(format_float_e(1234.5), "1.2345e+03");
        assert_eq!(format_float_e(-0.00012), "-1.2e-04");
        assert_eq!(format_float_e(1e100), "1e+100");
        assert_eq!(format_float_e(f64::INFINITY), "+Inf");
        assert_eq!(format_float_e(f64::NAN), "NaN");
    }

    #[test]
    fn times_format_as_go_rfc3339nano() {
        assert_eq!(go_time(0), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(go_time(1_700_000_000_100), "2023-11-14T22:13:20.1Z");
        assert_eq!(go_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
