//! Aggregation operators: `sum avg min max count group stddev stdvar topk bottomk quantile
//! count_values` with `by`/`without`, using Prometheus's numerics (Kahan–Neumaier sums,
//! incremental means and variances).

use std::collections::HashMap;

use medic_model::{Labels, LabelsBuilder, METRIC_NAME};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use crate::annotations::{self, Annotations};
use crate::engine::Evaluator;
use crate::value::{Value, VectorSample};
use crate::Error;

/// Neumaier's improvement of Kahan summation, exactly as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Mean with Kahan summation, switching to an incremental mean if the sum overflows.
pub(crate) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c, mut count, mut mean, mut incremental) = (0.0, 0.0, 0.0, 0.0, false);
    for v in values {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if count == 1.0 || !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        let (m, nc) = kahan_inc(v / count, q * mean, q * c);
        mean = m;
        c = nc;
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// Population variance, incremental with Kahan compensation (Prometheus's stdvar).
pub(crate) fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - (mean + c_mean);
        let (m, cm) = kahan_inc(delta / count, mean, c_mean);
        mean = m;
        c_mean = cm;
        let (a, ca) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
        aux = a;
        c_aux = ca;
    }
    (aux + c_aux) / count
}

/// Orders values ascending (or descending), NaN last either way, as Prometheus's `topk`,
/// `bottomk`, `sort` and `sort_desc` do.
pub(crate) fn cmp_nan_last(a: f64, b: f64, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            let o = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
            if descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// The φ-quantile of `values` by linear interpolation (Prometheus's `quantile`).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaNs sort first, as in Prometheus.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let w = rank - rank.floor();
    values[lower as usize] * (1.0 - w) + values[upper as usize] * w
}

/// The labels a `by (…)`/`on (…)` modifier keeps, or all but those a `without (…)`/`ignoring (…)`
/// modifier names and the metric name. Aggregation groups and vector matching share this.
pub(crate) fn project(labels: &Labels, modifier: &LabelModifier) -> Labels {
    match modifier {
        LabelModifier::Include(keep) => {
            let mut b = LabelsBuilder::new();
            for n in &keep.labels {
                if let Some(v) = labels.get(n) {
                    b.set(n.as_str(), v);
                }
            }
            b.build()
        }
        LabelModifier::Exclude(drop) => {
            let mut b = labels.to_builder();
            b.del(METRIC_NAME);
            for n in &drop.labels {
                b.del(n);
            }
            b.build()
        }
    }
}

/// The group of a sample: its projection, or one group for all without a modifier.
fn group_labels(labels: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    modifier.map_or_else(Labels::empty, |m| project(labels, m))
}

/// A vector's samples by group, groups in order of first appearance (for stable output).
struct Groups {
    order: Vec<Labels>,
    members: HashMap<Labels, Vec<VectorSample>>,
}

impl Groups {
    fn of(
        input: Vec<VectorSample>,
        modifier: Option<&LabelModifier>,
        label: Option<&str>,
    ) -> Groups {
        let mut g = Groups {
            order: Vec::new(),
            members: HashMap::new(),
        };
        for s in input {
            let mut key = group_labels(&s.labels, modifier);
            if let Some(l) = label {
                let mut b = key.to_builder();
                match &s.h {
                    Some(h) => b.set(l, h.to_string()),
                    None => b.set(l, crate::value::format_value(s.v)),
                };
                key = b.build();
            }
            match g.members.get_mut(&key) {
                Some(v) => v.push(s),
                None => {
                    g.order.push(key.clone());
                    g.members.insert(key, vec![s]);
                }
            }
        }
        g
    }

    /// Each group with its members, in order.
    fn into_iter(mut self) -> impl Iterator<Item = (Labels, Vec<VectorSample>)> {
        self.order.into_iter().map(move |k| {
            let m = self.members.remove(&k).unwrap_or_default();
            (k, m)
        })
    }
}

fn scalar_param(param: &Option<Value>, name: &str) -> Result<f64, Error> {
    match param {
        Some(Value::Scalar(v)) => Ok(*v),
        _ => Err(Error::Eval(format!("{name} requires a scalar parameter"))),
    }
}

/// The label `count_values` writes the value into.
fn count_values_label(op: &str, param: &Option<Value>) -> Result<Option<String>, Error> {
    match (op, param) {
        ("count_values", Some(Value::String(s))) => {
            if !medic_model::is_valid_label_name(s) {
                return Err(Error::Eval(format!("invalid label name {s:?}")));
            }
            Ok(Some(s.clone()))
        }
        ("count_values", _) => Err(Error::Eval(
            "count_values requires a string parameter".into(),
        )),
        _ => Ok(None),
    }
}

/// `topk`, `bottomk`, `limitk`: the first k members of each group (by value, NaN last, for
/// topk/bottomk; in input order for limitk).
fn select_k(
    op: &str,
    k: f64,
    groups: Groups,
    t: i64,
    notes: &mut Annotations,
) -> Result<Value, Error> {
    if k.is_nan() {
        return Err(Error::Eval("Parameter value is NaN".into()));
    }
    let k = if k >= 1.0 {
        k.min(i64::MAX as f64) as usize
    } else {
        0
    };
    let mut out = Vec::new();
    for (_, mut members) in groups.into_iter() {
        if op != "limitk" {
            // Histograms have no order: topk and bottomk leave them out.
            if members.iter().any(|m| !m.is_float()) {
                notes.add(annotations::histogram_ignored_in_aggregation(op));
            }
            members.retain(VectorSample::is_float);
            members.sort_by(|x, y| cmp_nan_last(x.v, y.v, op == "topk"));
        }
        out.extend(members.into_iter().take(k).map(|mut s| {
            s.t = t;
            s
        }));
    }
    Ok(Value::Vector(out))
}

/// `limit_ratio`: a series is kept by where its label hash falls in [0, 1), as Prometheus's
/// HashRatioSampler does, so the same series are kept at every step and a ratio r and its
/// complement r-1 partition the input.
fn limit_ratio(r: f64, groups: Groups, t: i64) -> Result<Value, Error> {
    if r.is_nan() {
        return Err(Error::Eval("Ratio value is NaN".into()));
    }
    let r = r.clamp(-1.0, 1.0);
    let mut out = Vec::new();
    if r == 0.0 {
        return Ok(Value::Vector(out));
    }
    for (_, members) in groups.into_iter() {
        for mut s in members {
            let offset = s.labels.prometheus_hash() as f64 / u64::MAX as f64;
            let keep = if r >= 0.0 {
                offset < r
            } else {
                offset >= 1.0 + r
            };
            if keep {
                s.t = t;
                out.push(s);
            }
        }
    }
    Ok(Value::Vector(out))
}

/// One value per group.
fn fold(op: &str, param: &Option<Value>, members: &[VectorSample]) -> Result<f64, Error> {
    if let Some(v) = simple_fold(op, members.iter().map(|s| s.v)) {
        return Ok(v);
    }
    let vals = || members.iter().map(|s| s.v);
    Ok(match op {
        "count" | "count_values" => members.len() as f64,
        "quantile" => {
            let q = scalar_param(param, "quantile")?;
            let mut v: Vec<f64> = vals().collect();
            quantile(q, &mut v)
        }
        other => {
            return Err(Error::Eval(format!(
                "aggregation {other:?} is not supported yet"
            )))
        }
    })
}

/// `sum` or `avg` of a group of histograms: `None` if a member is a float or the buckets
/// cannot be combined (noted in `notes`).
fn histogram_fold(
    op: &str,
    members: &[VectorSample],
    notes: &mut Annotations,
) -> Option<medic_model::FloatHistogram> {
    let hs: Option<Vec<&medic_model::FloatHistogram>> =
        members.iter().map(|m| m.h.as_deref()).collect();
    let Some(hs) = hs else {
        notes.add(annotations::mixed_floats_histograms_aggregation());
        return None;
    };
    let (h, sum_notes) = if op == "avg" {
        crate::functions::histogram::mean(&hs)
    } else {
        crate::functions::histogram::sum(&hs)
    };
    // The name an earlier function dropped is not shown, as in Prometheus.
    let metric = members
        .iter()
        .find(|m| !m.drop_name)
        .and_then(|m| m.labels.get(medic_model::METRIC_NAME))
        .unwrap_or("");
    sum_notes.annotate(notes, metric, "aggregation");
    h
}

/// The aggregations whose value depends on the members' values alone, in order (`None` for
/// the others): shared by the step-by-step evaluator and the whole-range one.
pub(crate) fn simple_fold(op: &str, vals: impl Iterator<Item = f64> + Clone) -> Option<f64> {
    Some(match op {
        "sum" => {
            let (s, c) = vals.fold((0.0, 0.0), |(s, c), v| kahan_inc(v, s, c));
            s + c
        }
        "avg" => mean(vals),
        "count" => vals.count() as f64,
        "group" => 1.0,
        "min" => vals.fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
        "max" => vals.fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
        "stdvar" => variance(vals),
        "stddev" => variance(vals).sqrt(),
        _ => return None,
    })
}

impl Evaluator<'_> {
    pub(crate) fn aggregate(&mut self, a: &AggregateExpr, t: i64) -> Result<Value, Error> {
        let op = a.op.to_string().to_lowercase();
        let param = match &a.param {
            Some(p) => Some(self.eval(p, t)?),
            None => None,
        };
        let input = self.eval_vector(&a.expr, t)?;
        let label = count_values_label(&op, &param)?;
        let groups = Groups::of(input, a.modifier.as_ref(), label.as_deref());
        match &op[..] {
            "topk" | "bottomk" | "limitk" => {
                let k = scalar_param(&param, &op)?;
                return select_k(&op, k, groups, t, &mut self.annotations);
            }
            "limit_ratio" => {
                let r = scalar_param(&param, &op)?;
                if !r.is_nan() && !(-1.0..=1.0).contains(&r) {
                    self.annotate(annotations::invalid_ratio(r, r.clamp(-1.0, 1.0)));
                }
                return limit_ratio(r, groups, t);
            }
            "quantile" => {
                let q = scalar_param(&param, &op)?;
                if !(0.0..=1.0).contains(&q) {
                    self.annotate(annotations::invalid_quantile(q));
                }
            }
            _ => {}
        }
        let mut out = Vec::new();
        for (g, mut members) in groups.into_iter() {
            // The group drops its name if any member's name was marked for removal.
            let drop_name = members.iter().any(|m| m.drop_name);
            let mut sample = VectorSample::new(g, t, 0.0);
            sample.drop_name = drop_name;
            if members.iter().any(|m| m.h.is_some()) {
                match &op[..] {
                    "sum" | "avg" => {
                        // All histograms, or no value (a mix of floats and histograms, or of
                        // exponential and custom buckets, has none).
                        match histogram_fold(&op, &members, &mut self.annotations) {
                            Some(h) => sample.h = Some(std::sync::Arc::new(h)),
                            None => continue,
                        }
                        out.push(sample);
                        continue;
                    }
                    "count" | "group" | "count_values" => {}
                    // The others ignore histograms.
                    _ => {
                        self.annotate(annotations::histogram_ignored_in_aggregation(&op));
                        members.retain(VectorSample::is_float);
                        if members.is_empty() {
                            continue;
                        }
                    }
                }
            }
            sample.v = fold(&op, &param, &members)?;
            out.push(sample);
        }
        Ok(Value::Vector(out))
    }
}
