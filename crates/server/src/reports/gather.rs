//! A report's figures over one period, read from the store (PromQL), the alert history, the
//! incidents, the heal journal and the anomaly rules. Runs queries: call off the async threads.

use std::collections::BTreeMap;

use medic_alert::state::{EventKind, HistoryQuery};
use medic_heal::journal::{ExecutionQuery, Status as ExecStatus, StepState};
use medic_heal::kinds::StepKind;
use medic_model::Labels;
use medic_promql::Value as PromValue;
use medic_report::period::Period;
use serde::Serialize;

use crate::config::ReportSeries;
use crate::http::AppState;

/// (Unix ms, value) points of one line.
pub type Points = Vec<(i64, f64)>;

/// Most alerts listed as the noisiest, jobs drawn, lines per series chart.
const NOISIEST: usize = 10;
const MAX_LINES: usize = 8;
/// Points of a trend chart.
const TREND_POINTS: i64 = 240;

#[derive(Debug, Clone, Serialize)]
pub struct SloFigure {
    pub id: String,
    pub service: String,
    pub objective: f64,
    /// 1 − the mean 5m error ratio over the period.
    pub attainment: f64,
    /// Of the SLO period's error budget, spent in this period.
    pub budget_spent: f64,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Availability {
    pub job: String,
    /// Mean of `up` over the period.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesFigure {
    pub name: String,
    pub unit: String,
    pub labels: String,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    #[serde(skip)]
    pub points: Points,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoisyAlert {
    pub alertname: String,
    pub fires: u64,
    pub flaps: u64,
    /// Total time firing within the period, ms.
    pub firing_ms: i64,
    pub median_ms: Option<i64>,
    pub suggestion: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct AlertFigures {
    pub fired: u64,
    pub by_severity: BTreeMap<String, u64>,
    pub noisiest: Vec<NoisyAlert>,
    /// Firings per day (day start ms, count).
    #[serde(skip)]
    pub per_day: Points,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub id: u64,
    pub level: String,
    pub title: String,
    pub status: String,
    pub opened_at: i64,
    pub time_to_acknowledge: Option<i64>,
    pub time_to_resolve: Option<i64>,
    pub auto_mitigated: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct IncidentFigures {
    pub opened: u64,
    pub by_level: BTreeMap<String, u64>,
    /// Means over those acknowledged / resolved, ms.
    pub mtta_ms: Option<i64>,
    pub mttr_ms: Option<i64>,
    pub auto_mitigated: u64,
    pub list: Vec<IncidentRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionRank {
    pub action: String,
    pub runs: u64,
    /// Runs whose execution's fix was verified.
    pub verified: u64,
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RepairFigures {
    pub executions: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Succeeded ÷ (succeeded + failed); none when nothing acted.
    pub success_rate: Option<f64>,
    pub actions: Vec<ActionRank>,
    /// From the alert's start to the verified fix, over the succeeded ones, ms.
    pub fix_median_ms: Option<i64>,
    pub fix_p90_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnomalyFigure {
    pub rule: String,
    pub count: u64,
    pub top_score: f64,
}

/// Everything a report says.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub name: String,
    pub title: String,
    pub period: String,
    pub start: i64,
    pub end: i64,
    pub timezone: String,
    pub generated_at: i64,
    pub slos: Vec<SloFigure>,
    pub availability: Vec<Availability>,
    pub series: Vec<SeriesFigure>,
    pub alerts: AlertFigures,
    pub incidents: IncidentFigures,
    pub repairs: RepairFigures,
    pub anomalies: Vec<AnomalyFigure>,
    /// `up` by job over the period, for the trend chart.
    #[serde(skip)]
    pub availability_trend: Vec<(String, Points)>,
    /// Figures that could not be computed, and why (shown in the report).
    pub errors: Vec<String>,
}

/// What one report asks for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub name: &'a str,
    pub title: Option<&'a str>,
    pub timezone: &'a str,
    pub series: &'a [ReportSeries],
}

/// The figures of `req` over `period`.
pub fn gather(st: &AppState, req: &Request<'_>, period: &Period, now: i64) -> Figures {
    let (start, end) = (period.start_ms(), period.end_ms());
    let title = req
        .title
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}: {}", req.name, period.label));
    let mut errors = Vec::new();
    let (availability, availability_trend) = availability(st, start, end, &mut errors);
    let series = req
        .series
        .iter()
        .flat_map(|s| series(st, s, start, end, &mut errors))
        .collect();
    Figures {
        name: req.name.to_string(),
        title,
        period: period.label.clone(),
        start,
        end,
        timezone: req.timezone.to_string(),
        generated_at: now,
        slos: slos(st, start, end),
        availability,
        series,
        alerts: alerts(st, start, end),
        incidents: incidents(st, start, end),
        repairs: repairs(st, start, end),
        anomalies: anomalies(st, start, end),
        availability_trend,
        errors,
    }
}

fn instant(st: &AppState, q: &str, t: i64) -> Vec<(Labels, f64)> {
    match st.engine.instant(st.db.as_ref(), q, t) {
        Ok(PromValue::Vector(v)) => v
            .into_iter()
            .filter(|s| s.h.is_none())
            .map(|s| (s.labels, s.v))
            .collect(),
        Ok(PromValue::Scalar(v)) => vec![(Labels::empty(), v)],
        _ => Vec::new(),
    }
}

/// The period as a PromQL range, whole seconds.
fn window(start: i64, end: i64) -> String {
    format!("{}s", ((end - start) / 1000).max(1))
}

fn by_id(st: &AppState, q: &str, t: i64) -> BTreeMap<String, f64> {
    instant(st, q, t)
        .into_iter()
        .filter_map(|(l, v)| Some((l.get("sloth_id")?.to_string(), v)))
        .collect()
}

/// SLO attainment from Sloth's recorded series (medic-generated or Sloth's own rules).
fn slos(st: &AppState, start: i64, end: i64) -> Vec<SloFigure> {
    let w = window(start, end);
    // The query evaluates at `end` over `(start, end]`; the series' last sample before `end`.
    let t = end - 1;
    let ratios = instant(
        st,
        &format!("avg_over_time(slo:sli_error:ratio_rate5m[{w}])"),
        t,
    );
    let objectives = by_id(st, &format!("last_over_time(slo:objective:ratio[{w}])"), t);
    let days = by_id(st, &format!("last_over_time(slo:time_period:days[{w}])"), t);
    let mut out: Vec<SloFigure> = ratios
        .into_iter()
        .filter_map(|(l, ratio)| {
            let id = l.get("sloth_id")?.to_string();
            let objective = *objectives.get(&id)?;
            let period_ms = days.get(&id).copied().unwrap_or(30.0) * 86_400_000.0;
            let budget = (1.0 - objective) * period_ms;
            let spent = if budget > 0.0 {
                ratio * (end - start) as f64 / budget
            } else {
                f64::NAN
            };
            Some(SloFigure {
                service: l.get("sloth_service").unwrap_or("").to_string(),
                attainment: 1.0 - ratio,
                budget_spent: spent,
                met: 1.0 - ratio >= objective,
                objective,
                id,
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The resolution of availability and series figures: 5m, or 1m for periods up to a day.
fn resolution(start: i64, end: i64) -> i64 {
    if end - start <= 86_400_000 {
        60_000
    } else {
        300_000
    }
}

/// Availability by job: `avg by (job) (avg_over_time(up[res]))` every `res` — windows that
/// tile the period, so each scrape counts once — its mean and its trend.
fn availability(
    st: &AppState,
    start: i64,
    end: i64,
    errors: &mut Vec<String>,
) -> (Vec<Availability>, Vec<(String, Points)>) {
    let res = resolution(start, end);
    let lines = match super::stepped::stepped(
        st,
        &format!("avg by (job) (avg_over_time(up[{}s]))", res / 1000),
        start,
        end,
        res,
        super::stepped::MAX_JOBS,
    ) {
        Ok(l) => l,
        Err(e) => {
            errors.push(format!("availability: {e}"));
            return (Vec::new(), Vec::new());
        }
    };
    let mut figures: Vec<Availability> = lines
        .iter()
        .map(|(l, p)| Availability {
            job: l.get("job").unwrap_or("").to_string(),
            ratio: super::stepped::stats(p).0,
        })
        .collect();
    figures.sort_by(|a, b| a.ratio.total_cmp(&b.ratio).then_with(|| a.job.cmp(&b.job)));
    // The least available first: those are the ones to see.
    let mut trend: Vec<(String, Points)> = figures
        .iter()
        .take(MAX_LINES)
        .filter_map(|a| {
            let (_, p) = lines
                .iter()
                .find(|(l, _)| l.get("job").unwrap_or("") == a.job)?;
            Some((
                a.job.clone(),
                super::stepped::downsample(p, TREND_POINTS as usize),
            ))
        })
        .collect();
    trend.truncate(MAX_LINES);
    (figures, trend)
}

/// A configured series every `resolution`: its mean, low and high, and its trend.
fn series(
    st: &AppState,
    s: &ReportSeries,
    start: i64,
    end: i64,
    errors: &mut Vec<String>,
) -> Vec<SeriesFigure> {
    let res = resolution(start, end);
    let lines =
        match super::stepped::stepped(st, &s.query, start, end, res, super::stepped::MAX_SERIES) {
            Ok(l) => l,
            Err(e) => {
                errors.push(format!("series {:?}: {e}", s.name));
                return Vec::new();
            }
        };
    lines
        .into_iter()
        .take(MAX_LINES)
        .map(|(l, points)| {
            let (mean, min, max) = super::stepped::stats(&points);
            SeriesFigure {
                name: s.name.clone(),
                unit: s.unit.clone(),
                labels: l.to_string(),
                mean,
                min,
                max,
                points: super::stepped::downsample(&points, TREND_POINTS as usize),
            }
        })
        .collect()
}

/// Alert counts by severity and the noisiest alerts, from the alert history.
fn alerts(st: &AppState, start: i64, end: i64) -> AlertFigures {
    let q = HistoryQuery {
        kinds: vec![EventKind::Firing, EventKind::Resolved, EventKind::Flapping],
        since: Some(start),
        until: Some(end - 1),
        limit: 200_000,
        ..Default::default()
    };
    let mut events = st.alerts.history(&q).unwrap_or_default();
    events.sort_by_key(|e| e.at);
    let holds = crate::incidents::report::rule_holds(st);
    let mut f = AlertFigures::default();
    #[derive(Default)]
    struct Acc {
        fires: u64,
        flaps: u64,
        durations: Vec<i64>,
    }
    let mut per_name: BTreeMap<String, Acc> = BTreeMap::new();
    let mut open: BTreeMap<String, i64> = BTreeMap::new();
    let mut per_day: BTreeMap<i64, f64> = BTreeMap::new();
    for e in &events {
        let name = e.labels.get("alertname").unwrap_or("").to_string();
        if name == "MedicIncident" || name == "MedicHeal" {
            continue;
        }
        let fp = e.fingerprint.map(|f| f.to_string()).unwrap_or_default();
        let acc = per_name.entry(name).or_default();
        match e.kind {
            EventKind::Firing => {
                acc.fires += 1;
                f.fired += 1;
                let sev = e.labels.get("severity").unwrap_or("none").to_string();
                *f.by_severity.entry(sev).or_default() += 1;
                *per_day
                    .entry(e.at - e.at.rem_euclid(86_400_000))
                    .or_default() += 1.0;
                open.insert(fp, e.at);
            }
            EventKind::Resolved => {
                if let Some(t) = open.remove(&fp) {
                    acc.durations.push(e.at - t);
                }
            }
            EventKind::Flapping => acc.flaps += 1,
            _ => {}
        }
    }
    // Still firing at the end: counted up to it.
    for e in &events {
        let fp = e.fingerprint.map(|f| f.to_string()).unwrap_or_default();
        if let Some(t) = open.remove(&fp) {
            let name = e.labels.get("alertname").unwrap_or("").to_string();
            if let Some(acc) = per_name.get_mut(&name) {
                acc.durations.push(end - t);
            }
        }
    }
    let period = end - start;
    let mut noisy: Vec<NoisyAlert> = per_name
        .into_iter()
        .filter(|(_, a)| a.fires > 0)
        .map(|(alertname, mut a)| {
            a.durations.sort_unstable();
            let median = a.durations.get(a.durations.len() / 2).copied();
            let firing_ms: i64 = a.durations.iter().sum();
            let hold = holds.get(&alertname).map(|(_, h)| *h);
            NoisyAlert {
                suggestion: suggest(a.fires, a.flaps, median, firing_ms, period, hold),
                alertname,
                fires: a.fires,
                flaps: a.flaps,
                firing_ms,
                median_ms: median,
            }
        })
        .collect();
    noisy.sort_by(|a, b| b.fires.cmp(&a.fires).then(b.flaps.cmp(&a.flaps)));
    noisy.truncate(NOISIEST);
    f.noisiest = noisy;
    // Every day of the period, quiet ones as 0, so the chart is a line and starts at 0.
    let day = 86_400_000;
    let mut d = start - start.rem_euclid(day);
    while d < end {
        per_day.entry(d).or_insert(0.0);
        d += day;
    }
    f.per_day = per_day.into_iter().collect();
    f
}

/// What to change about a noisy alert, from how it fires.
fn suggest(
    fires: u64,
    flaps: u64,
    median: Option<i64>,
    firing_ms: i64,
    period: i64,
    hold: Option<i64>,
) -> String {
    let min = 60_000;
    if flaps > 0 {
        return "flaps: add hysteresis (`keep_firing_for`, or medic's `keep_firing_while`) so it does not resolve and fire again".into();
    }
    if period > 0 && firing_ms * 2 >= period {
        return "fires most of the time: fix the cause, or silence it while you do; an alert always on is not heard".into();
    }
    match median {
        Some(m) if fires >= 5 && m < 5 * min => format!(
            "fires often and briefly (median {}): a longer `for` than {} would keep the blips out",
            medic_report::time::span(m),
            hold.map_or("now".to_string(), medic_report::time::span)
        ),
        _ if fires >= 20 => "fires often: check its threshold against the normal range, or route it as a ticket rather than a page".into(),
        _ => "-".into(),
    }
}

fn incidents(st: &AppState, start: i64, end: i64) -> IncidentFigures {
    let filter = crate::incidents::ListFilter {
        since: Some(start),
        limit: usize::MAX,
        ..Default::default()
    };
    let now = st.incidents.now_ms();
    let mut f = IncidentFigures::default();
    let (mut tta, mut ttr) = (Vec::new(), Vec::new());
    for i in st.incidents.list(&filter).into_iter().rev() {
        if i.opened_at >= end {
            continue;
        }
        let fig = i.figures(now);
        f.opened += 1;
        *f.by_level.entry(i.level.to_string()).or_default() += 1;
        f.auto_mitigated += u64::from(i.auto_mitigated);
        tta.extend(fig.time_to_acknowledge);
        ttr.extend(fig.time_to_resolve);
        f.list.push(IncidentRow {
            id: i.id,
            level: i.level.to_string(),
            title: i.title.clone(),
            status: i.status.to_string(),
            opened_at: i.opened_at,
            time_to_acknowledge: fig.time_to_acknowledge,
            time_to_resolve: fig.time_to_resolve,
            auto_mitigated: i.auto_mitigated,
        });
    }
    let mean = |v: &[i64]| (!v.is_empty()).then(|| v.iter().sum::<i64>() / v.len() as i64);
    f.mtta_ms = mean(&tta);
    f.mttr_ms = mean(&ttr);
    f
}

fn repairs(st: &AppState, start: i64, end: i64) -> RepairFigures {
    let q = ExecutionQuery {
        since: Some(start),
        until: Some(end - 1),
        limit: 100_000,
        ..Default::default()
    };
    let execs = st.heal.executions(&q).unwrap_or_default();
    let mut f = RepairFigures {
        executions: execs.len() as u64,
        ..Default::default()
    };
    let mut ranks: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut fixes = Vec::new();
    for e in &execs {
        let ok = e.status == ExecStatus::Succeeded;
        match e.status {
            ExecStatus::Succeeded => f.succeeded += 1,
            ExecStatus::Failed => f.failed += 1,
            _ => {}
        }
        for a in &e.actions_run {
            let r = ranks.entry(a.clone()).or_default();
            r.0 += 1;
            r.1 += u64::from(ok);
        }
        if ok {
            let verified = e
                .steps
                .iter()
                .filter(|s| s.kind == StepKind::Verify && s.state == StepState::Succeeded)
                .filter_map(|s| s.ended_at)
                .max();
            let from = if e.trigger.starts_at > 0 {
                e.trigger.starts_at
            } else {
                e.created_at
            };
            fixes.extend(verified.map(|v| v - from));
        }
    }
    let acted = f.succeeded + f.failed;
    f.success_rate = (acted > 0).then(|| f.succeeded as f64 / acted as f64);
    let mut actions: Vec<ActionRank> = ranks
        .into_iter()
        .map(|(action, (runs, verified))| ActionRank {
            rate: verified as f64 / runs.max(1) as f64,
            action,
            runs,
            verified,
        })
        .collect();
    actions.sort_by(|a, b| b.verified.cmp(&a.verified).then(b.rate.total_cmp(&a.rate)));
    f.actions = actions;
    fixes.sort_unstable();
    let pick = |q: f64| {
        fixes
            .get(((fixes.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    if !fixes.is_empty() {
        f.fix_median_ms = pick(0.5);
        f.fix_p90_ms = pick(0.9);
    }
    f
}

fn anomalies(st: &AppState, start: i64, end: i64) -> Vec<AnomalyFigure> {
    let mut per: BTreeMap<String, AnomalyFigure> = BTreeMap::new();
    for e in st.rules.anomaly_events() {
        if e.start < start || e.start >= end {
            continue;
        }
        let a = per.entry(e.rule.clone()).or_insert(AnomalyFigure {
            rule: e.rule.clone(),
            count: 0,
            top_score: 0.0,
        });
        a.count += 1;
        a.top_score = a.top_score.max(e.peak.max(e.score));
    }
    let mut out: Vec<AnomalyFigure> = per.into_values().collect();
    out.sort_by_key(|a| std::cmp::Reverse(a.count));
    out
}
