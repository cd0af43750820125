//! Metric queries, evaluated step by step: a range aggregation turns the entries of each output
//! label set in the window `(t - offset - range, t - offset]` into a sample, then vector
//! aggregations and binary operations work on each step's vector.

use std::collections::{BTreeMap, HashMap};

use super::ast::*;
use super::logs::format_labels;
use super::pipeline::{convert, label_filter, LabelMap, Pipeline, ERROR, ERROR_DETAILS};
use super::{EvalError, LogSource, Selection};

/// One sample of a step's vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: LabelMap,
    pub value: f64,
}

/// A step's vector.
pub type Vector = Vec<Sample>;

/// The steps of a query, in nanoseconds: `start, start+step, … <= end`.
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Steps {
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        let step = self.step.max(1);
        (0..)
            .map(move |i| self.start + i * step)
            .take_while(move |t| *t <= self.end)
    }

    fn count(&self) -> usize {
        ((self.end - self.start) / self.step.max(1) + 1).max(0) as usize
    }
}

/// At most this many steps per query, as in Loki (`max_query_points`).
pub const MAX_STEPS: usize = 11_000;

/// Evaluates a metric query at every step.
pub fn eval(
    src: &dyn LogSource,
    expr: &MetricExpr,
    steps: Steps,
) -> Result<Vec<Vector>, EvalError> {
    if steps.count() > MAX_STEPS {
        return Err(EvalError::Limit(format!(
            "exceeded maximum resolution of {MAX_STEPS} points per time series. Try increasing the value of the step parameter"
        )));
    }
    Ok(match expr {
        MetricExpr::Literal(n) | MetricExpr::VectorLit(n) => steps
            .times()
            .map(|_| {
                vec![Sample {
                    labels: LabelMap::new(),
                    value: *n,
                }]
            })
            .collect(),
        MetricExpr::Range(r) => range_agg(src, r, steps)?,
        MetricExpr::Vector(v) => {
            let inner = eval(src, &v.expr, steps)?;
            inner.into_iter().map(|vec| vector_agg(v, vec)).collect()
        }
        MetricExpr::Binary(b) => binary(src, b, steps)?,
        MetricExpr::LabelReplace(l) => {
            let inner = eval(src, &l.expr, steps)?;
            inner
                .into_iter()
                .map(|vec| vec.into_iter().map(|s| label_replace(l, s)).collect())
                .collect()
        }
    })
}

/// Whether the expression evaluates to a scalar (a number without labels).
pub fn is_scalar(expr: &MetricExpr) -> bool {
    match expr {
        MetricExpr::Literal(_) => true,
        MetricExpr::Binary(b) => is_scalar(&b.lhs) && is_scalar(&b.rhs),
        _ => false,
    }
}

fn range_agg(src: &dyn LogSource, r: &RangeAgg, steps: Steps) -> Result<Vec<Vector>, EvalError> {
    let range = (r.range_secs * 1e9) as i64;
    let offset = (r.offset_secs * 1e9) as i64;
    let streams = src.select(&Selection {
        matchers: &r.log.matchers,
        start: steps.start - offset - range + 1,
        end: steps.end - offset + 1,
        needles: r.log.required_substrings(),
        lines: !(r.log.stages.is_empty()
            && r.unwrap.is_none()
            && matches!(r.op, RangeOp::Count | RangeOp::Rate | RangeOp::Absent)),
    })?;
    let series = extract(&streams, r)?;
    let mut out = Vec::with_capacity(steps.count());
    let mut cursors = vec![(0usize, 0usize); series.len()];
    for t in steps.times() {
        let (lo, hi) = (t - offset - range, t - offset);
        let mut vec = Vector::new();
        for (i, (labels, points)) in series.iter().enumerate() {
            let (a, b) = &mut cursors[i];
            while *a < points.len() && points[*a].0 <= lo {
                *a += 1;
            }
            *b = (*b).max(*a);
            while *b < points.len() && points[*b].0 <= hi {
                *b += 1;
            }
            let window = &points[*a..*b];
            if window.is_empty() {
                continue;
            }
            if let Some(value) = aggregate(r, window) {
                vec.push(Sample {
                    labels: labels.clone(),
                    value,
                });
            }
        }
        if r.op == RangeOp::Absent {
            vec = if vec.is_empty() {
                vec![Sample {
                    labels: absent_labels(&r.log),
                    value: 1.0,
                }]
            } else {
                Vector::new()
            };
        }
        out.push(vec);
    }
    Ok(out)
}

fn absent_labels(log: &LogExpr) -> LabelMap {
    log.matchers
        .iter()
        .filter(|m| m.kind == medic_model::MatchType::Equal)
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect()
}

/// The `(ts, value)` points of every output label set, sorted by time.
#[allow(clippy::type_complexity)]
fn extract(
    streams: &[crate::entry::Stream],
    r: &RangeAgg,
) -> Result<Vec<(LabelMap, Vec<(i64, f64)>)>, EvalError> {
    let pipeline = Pipeline::new(&r.log.stages);
    let mut by_labels: HashMap<LabelMap, Vec<(i64, f64)>> = HashMap::new();
    for s in streams {
        let stream_labels: LabelMap = s
            .labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        if pipeline.filters_only
            && r.unwrap.is_none()
            && s.entries.iter().all(|e| e.metadata.is_empty())
        {
            let points = by_labels.entry(stream_labels.clone()).or_default();
            for e in &s.entries {
                if pipeline.keep_line(&e.line) {
                    points.push((e.ts, plain_value(r.op, &e.line)));
                }
            }
            continue;
        }
        for e in &s.entries {
            let mut labels = stream_labels.clone();
            for (k, v) in &e.metadata {
                labels.insert(k.clone(), v.clone());
            }
            let Some((line, mut labels)) = pipeline.run(e.ts, &e.line, labels, &stream_labels)
            else {
                continue;
            };
            let value = match &r.unwrap {
                None => plain_value(r.op, &line),
                Some(u) => {
                    let raw = labels.remove(&u.label).unwrap_or_default();
                    let v = convert(&raw, u.conv);
                    if v.is_none() && !labels.contains_key(ERROR) {
                        labels.insert(ERROR.into(), "SampleExtractionErr".into());
                    }
                    if !u.post_filters.iter().all(|f| label_filter(f, &mut labels)) {
                        continue;
                    }
                    match v {
                        Some(v) => v,
                        None if labels.contains_key(ERROR) => f64::NAN,
                        None => continue,
                    }
                }
            };
            labels.remove(ERROR_DETAILS);
            if let Some(kind) = labels.get(ERROR) {
                return Err(EvalError::Pipeline {
                    kind: kind.clone(),
                    series: format_labels(&labels),
                });
            }
            // A grouping pools the samples of each group before the function runs.
            let labels = match &r.grouping {
                Some(g) => group_key(&labels, Some(g)),
                None => labels,
            };
            by_labels.entry(labels).or_default().push((e.ts, value));
        }
    }
    let mut out: Vec<_> = by_labels
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .collect();
    for (_, p) in &mut out {
        p.sort_by_key(|x| x.0);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn plain_value(op: RangeOp, line: &str) -> f64 {
    match op {
        RangeOp::Bytes | RangeOp::BytesRate => line.len() as f64,
        _ => 1.0,
    }
}

fn aggregate(r: &RangeAgg, w: &[(i64, f64)]) -> Option<f64> {
    let n = w.len() as f64;
    let sum: f64 = w.iter().map(|p| p.1).sum();
    Some(match r.op {
        RangeOp::Count | RangeOp::Absent => n,
        RangeOp::Bytes | RangeOp::Sum => sum,
        RangeOp::Rate | RangeOp::BytesRate => sum / r.range_secs,
        RangeOp::RateCounter => {
            let mut inc = 0.0;
            for pair in w.windows(2) {
                let d = pair[1].1 - pair[0].1;
                inc += if d < 0.0 { pair[1].1 } else { d };
            }
            inc / r.range_secs
        }
        RangeOp::Avg => sum / n,
        RangeOp::Min => w.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
        RangeOp::Max => w.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
        RangeOp::First => w[0].1,
        RangeOp::Last => w[w.len() - 1].1,
        RangeOp::Stdvar | RangeOp::Stddev => {
            let mean = sum / n;
            let var = w.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / n;
            if r.op == RangeOp::Stddev {
                var.sqrt()
            } else {
                var
            }
        }
        RangeOp::Quantile => {
            let mut v: Vec<f64> = w.iter().map(|p| p.1).collect();
            quantile(r.param.unwrap_or(0.5), &mut v)
        }
    })
}

/// Prometheus's `quantile`: linear interpolation between the closest ranks.
fn quantile(q: f64, v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = q * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let w = rank - lo as f64;
    v[lo] * (1.0 - w) + v[hi] * w
}

fn group_key(labels: &LabelMap, g: Option<&Grouping>) -> LabelMap {
    match g {
        None => LabelMap::new(),
        Some(g) if g.without => labels
            .iter()
            .filter(|(k, _)| !g.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(g) => labels
            .iter()
            .filter(|(k, _)| g.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn vector_agg(v: &VectorAgg, vec: Vector) -> Vector {
    match v.op {
        VectorOp::Sort | VectorOp::SortDesc => {
            let mut vec = vec;
            vec.sort_by(|a, b| a.value.total_cmp(&b.value));
            if v.op == VectorOp::SortDesc {
                vec.reverse();
            }
            vec
        }
        VectorOp::Topk | VectorOp::Bottomk => {
            let k = v.param.unwrap_or(1.0) as usize;
            let mut groups: BTreeMap<LabelMap, Vector> = BTreeMap::new();
            for s in vec {
                groups
                    .entry(group_key(&s.labels, v.grouping.as_ref()))
                    .or_default()
                    .push(s);
            }
            let mut out = Vector::new();
            for (_, mut g) in groups {
                g.sort_by(|a, b| a.value.total_cmp(&b.value));
                if v.op == VectorOp::Topk {
                    g.reverse();
                }
                g.truncate(k);
                out.extend(g);
            }
            out
        }
        op => {
            let mut groups: BTreeMap<LabelMap, Vec<f64>> = BTreeMap::new();
            for s in vec {
                groups
                    .entry(group_key(&s.labels, v.grouping.as_ref()))
                    .or_default()
                    .push(s.value);
            }
            groups
                .into_iter()
                .map(|(labels, vals)| Sample {
                    labels,
                    value: reduce(op, &vals),
                })
                .collect()
        }
    }
}

fn reduce(op: VectorOp, vals: &[f64]) -> f64 {
    let n = vals.len() as f64;
    let sum: f64 = vals.iter().sum();
    match op {
        VectorOp::Sum => sum,
        VectorOp::Avg => sum / n,
        VectorOp::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
        VectorOp::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        VectorOp::Count => n,
        VectorOp::Stdvar | VectorOp::Stddev => {
            let mean = sum / n;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            if op == VectorOp::Stddev {
                var.sqrt()
            } else {
                var
            }
        }
        _ => f64::NAN,
    }
}

fn binary(src: &dyn LogSource, b: &Binary, steps: Steps) -> Result<Vec<Vector>, EvalError> {
    let lhs = eval(src, &b.lhs, steps)?;
    let rhs = eval(src, &b.rhs, steps)?;
    let (ls, rs) = (is_scalar(&b.lhs), is_scalar(&b.rhs));
    Ok(lhs
        .into_iter()
        .zip(rhs)
        .map(|(l, r)| match (ls, rs) {
            (true, true) => arith(b.op, l[0].value, r[0].value, true)
                .map(|value| {
                    vec![Sample {
                        labels: LabelMap::new(),
                        value,
                    }]
                })
                .unwrap_or_default(),
            (false, true) => scalar_op(b, l, r[0].value, false),
            (true, false) => scalar_op(b, r, l[0].value, true),
            (false, false) => vector_op(b, l, r),
        })
        .collect())
}

/// The value of `a op b`; for a comparison, `None` when it is false (filtering), or 0/1 with
/// `bool`.
fn arith(op: BinOp, a: f64, b: f64, return_bool: bool) -> Option<f64> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Cmp(c) => {
            let t = c.apply(a, b);
            if return_bool {
                f64::from(u8::from(t))
            } else if t {
                a
            } else {
                return None;
            }
        }
        BinOp::And | BinOp::Or | BinOp::Unless => a,
    })
}

fn scalar_op(b: &Binary, vec: Vector, scalar: f64, scalar_left: bool) -> Vector {
    vec.into_iter()
        .filter_map(|s| {
            let (x, y) = if scalar_left {
                (scalar, s.value)
            } else {
                (s.value, scalar)
            };
            let v = arith(b.op, x, y, b.return_bool)?;
            // A filtering comparison keeps the vector's own value.
            let v = if matches!(b.op, BinOp::Cmp(_)) && !b.return_bool {
                s.value
            } else {
                v
            };
            Some(Sample {
                labels: s.labels,
                value: v,
            })
        })
        .collect()
}

fn signature(labels: &LabelMap, matching: &Option<(bool, Vec<String>)>) -> LabelMap {
    match matching {
        None => labels.clone(),
        Some((false, on)) => labels
            .iter()
            .filter(|(k, _)| on.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some((true, ign)) => labels
            .iter()
            .filter(|(k, _)| !ign.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn vector_op(b: &Binary, l: Vector, r: Vector) -> Vector {
    let rsig: HashMap<LabelMap, &Sample> = r
        .iter()
        .map(|s| (signature(&s.labels, &b.matching), s))
        .collect();
    match b.op {
        BinOp::And => l
            .into_iter()
            .filter(|s| rsig.contains_key(&signature(&s.labels, &b.matching)))
            .collect(),
        BinOp::Unless => l
            .into_iter()
            .filter(|s| !rsig.contains_key(&signature(&s.labels, &b.matching)))
            .collect(),
        BinOp::Or => {
            let lsigs: std::collections::HashSet<LabelMap> = l
                .iter()
                .map(|s| signature(&s.labels, &b.matching))
                .collect();
            let mut out = l;
            out.extend(
                r.into_iter()
                    .filter(|s| !lsigs.contains(&signature(&s.labels, &b.matching))),
            );
            out
        }
        _ => l
            .into_iter()
            .filter_map(|s| {
                let sig = signature(&s.labels, &b.matching);
                let other = rsig.get(&sig)?;
                let v = arith(b.op, s.value, other.value, b.return_bool)?;
                let labels = match &b.matching {
                    Some((false, _)) => sig,
                    _ => s.labels,
                };
                Some(Sample { labels, value: v })
            })
            .collect(),
    }
}

fn label_replace(l: &LabelReplace, mut s: Sample) -> Sample {
    let src = s.labels.get(&l.src).cloned().unwrap_or_default();
    if let Some(c) = l.regex.captures(&src) {
        let mut dst = String::new();
        c.expand(&l.replacement, &mut dst);
        if dst.is_empty() {
            s.labels.remove(&l.dst);
        } else {
            s.labels.insert(l.dst.clone(), dst);
        }
    }
    s
}
