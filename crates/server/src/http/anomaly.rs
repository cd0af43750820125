//! The anomaly API under `/api/v1/medic/anomalies`: events, baselines and the report.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use medic_model::{Clock as _, Labels, Matcher};
use medic_rules::{AnomalyEvent, SeriesView};
use serde_json::{json, Value};

use super::error::{medic_err, medic_ok};
use super::params::params;
use super::AppState;

fn labels_match(labels: &Labels, sets: &[Vec<Matcher>]) -> bool {
    sets.is_empty()
        || sets.iter().any(|ms| {
            ms.iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
        })
}

/// Filters shared by the endpoints: `rule`, `match[]` (selectors over the series' labels).
struct Filter {
    rule: Option<String>,
    selectors: Vec<Vec<Matcher>>,
}

impl Filter {
    fn take(&mut self, k: &str, v: &str) -> Result<bool, String> {
        match k {
            "rule" => self.rule = Some(v.to_string()),
            "match[]" => self
                .selectors
                .push(medic_model::parse_selector(v).map_err(|e| format!("match[]: {e}"))?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn keeps(&self, rule: &str, labels: &Labels) -> bool {
        self.rule.as_deref().is_none_or(|r| r == rule) && labels_match(labels, &self.selectors)
    }
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn event_json(e: &AnomalyEvent) -> Value {
    json!({
        "rule": e.rule,
        "labels": e.labels,
        "start": secs(e.start),
        "end": e.end.map(secs),
        "score": e.score,
        "peak": e.peak,
        "value": e.value,
        "baseline": e.baseline,
        "lower": e.lower,
        "upper": e.upper,
        "test": e.test,
    })
}

/// `GET /api/v1/medic/anomalies?min_score=&since=&until=&rule=&match[]=&limit=`: recent
/// anomalies, newest first.
pub async fn get_anomalies(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let mut f = Filter {
        rule: None,
        selectors: Vec::new(),
    };
    let (mut min_score, mut since, mut until, mut limit) = (0.0, i64::MIN, i64::MAX, 100usize);
    for (k, v) in params(&q) {
        match f.take(&k, &v) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => return medic_err(StatusCode::BAD_REQUEST, e),
        }
        let bad =
            |what: &str| medic_err(StatusCode::BAD_REQUEST, format!("{k}: {v:?} is not {what}"));
        match k.as_str() {
            "min_score" => match v.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => min_score = x,
                _ => return bad("a score in [0, 1]"),
            },
            "since" | "until" => match medic_model::parse_api_time(&v) {
                Some(t) if k == "since" => since = t,
                Some(t) => until = t,
                None => return bad("a time"),
            },
            "limit" => match v.parse() {
                Ok(n) => limit = n,
                Err(_) => return bad("a number"),
            },
            other => {
                return medic_err(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {other:?} (want min_score, since, until, rule, match[], limit)"),
                )
            }
        }
    }
    let events = st.rules.anomaly_events();
    let out: Vec<Value> = events
        .iter()
        .rev()
        .filter(|e| {
            e.peak >= min_score
                && e.start <= until
                && e.end.is_none_or(|end| end >= since)
                && f.keeps(&e.rule, &e.labels)
        })
        .take(limit)
        .map(event_json)
        .collect();
    medic_ok(Value::Array(out))
}

fn series_json(v: &SeriesView) -> Value {
    let d = &v.series.detector;
    let t = d.last_t.max(0);
    let b = d.baseline(&v.params, t);
    let linear = d.trend.linear(t);
    json!({
        "rule": v.rule,
        "labels": v.series.labels,
        "points": d.n,
        "warm": d.n >= u64::from(v.params.warmup),
        "last": {
            "time": secs(t),
            "value": d.last_v,
            "score": d.last.score,
            "baseline": d.last.baseline,
            "lower": d.last.lower,
            "upper": d.last.upper,
            "anomalous": d.last.anomalous,
        },
        "baseline": b,
        "trend": {
            "holt_per_hour": d.trend.holt_slope,
            "linear_per_hour": linear.map(|(s, _)| s),
            "forecast_1h": d.trend.holt(t + 3_600_000),
            "forecast_24h": d.trend.holt(t + 86_400_000),
        },
        "threshold": v.params.threshold,
        "state_bytes": d.state_bytes(),
    })
}

/// `GET /api/v1/medic/anomalies/baseline?rule=&match[]=`: each matching series' baseline —
/// level, spread, seasonal profiles, band, trend and forecasts.
pub async fn get_baseline(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let mut f = Filter {
        rule: None,
        selectors: Vec::new(),
    };
    for (k, v) in params(&q) {
        match f.take(&k, &v) {
            Ok(true) => {}
            Ok(false) => {
                return medic_err(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {k:?} (want rule, match[])"),
                )
            }
            Err(e) => return medic_err(StatusCode::BAD_REQUEST, e),
        }
    }
    let out: Vec<Value> = st
        .rules
        .anomaly_series()
        .iter()
        .filter(|v| f.keeps(&v.rule, &v.series.labels))
        .map(series_json)
        .collect();
    medic_ok(Value::Array(out))
}

/// `GET /api/v1/medic/anomalies/report`: per anomaly rule, how its series stand.
pub async fn get_report(State(st): State<Arc<AppState>>) -> Response {
    let series = st.rules.anomaly_series();
    let events = st.rules.anomaly_events();
    let day_ago = medic_model::SystemClock.now_ms() - 86_400_000;
    let mut rules: Vec<String> = st
        .rules
        .groups()
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter(|r| r.anomaly)
        .map(|r| r.name.clone())
        .collect();
    rules.sort();
    rules.dedup();
    let out: Vec<Value> = rules
        .iter()
        .map(|rule| {
            let mine: Vec<&SeriesView> = series.iter().filter(|s| &s.rule == rule).collect();
            let warm = mine
                .iter()
                .filter(|s| s.series.detector.n >= u64::from(s.params.warmup))
                .count();
            let anomalous: Vec<&&SeriesView> = mine
                .iter()
                .filter(|s| s.series.detector.last.anomalous)
                .collect();
            let mut top: Vec<&&SeriesView> = mine.iter().collect();
            top.sort_by(|a, b| {
                b.series
                    .detector
                    .last
                    .score
                    .total_cmp(&a.series.detector.last.score)
            });
            let bytes: usize = mine.iter().map(|s| s.series.detector.state_bytes()).sum();
            json!({
                "rule": rule,
                "series": mine.len(),
                "warm": warm,
                "anomalous": anomalous.len(),
                "anomalies_24h": events.iter().filter(|e| &e.rule == rule && e.start >= day_ago).count(),
                "threshold": mine.first().map(|s| s.params.threshold),
                "state_bytes": bytes,
                "top": top.iter().take(5).map(|s| json!({
                    "labels": s.series.labels,
                    "score": s.series.detector.last.score,
                    "value": s.series.detector.last_v,
                    "baseline": s.series.detector.last.baseline,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    medic_ok(Value::Array(out))
}
