//! Everything else: `time timestamp vector scalar absent absent_over_time sort sort_desc
//! sort_by_label sort_by_label_desc label_replace label_join histogram_quantile` and the date
//! functions.

use std::collections::{HashMap, HashSet};

use medic_model::{is_valid_label_name, FloatHistogram, Labels, LabelsBuilder, METRIC_NAME};
use promql_parser::parser::Expr;

use super::strip_parens;
use crate::annotations::Annotations;
use crate::engine::Evaluator;
use crate::value::{Value, VectorSample};
use crate::Error;

/// Labels an `absent()` result carries: the equality matchers of the selector.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match strip_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(m) => &m.vs,
        _ => return Labels::empty(),
    };
    let mut b = LabelsBuilder::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for m in &vs.matchers.matchers {
        *seen.entry(m.name.as_str()).or_default() += 1;
    }
    for m in &vs.matchers.matchers {
        if matches!(m.op, promql_parser::label::MatchOp::Equal)
            && m.name != METRIC_NAME
            && seen[m.name.as_str()] == 1
        {
            b.set(m.name.as_str(), m.value.as_str());
        }
    }
    b.build()
}

/// Civil date of a Unix time in seconds: (year, month, day, hour, minute, day of week, day of year).
fn civil(secs: f64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let s = secs.floor() as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let d = doy_mar - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let dow = (days + 4).rem_euclid(7);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let doy = cum[(m - 1) as usize] + d + i64::from(leap && m > 2);
    (y, m, d, sod / 3600, sod % 3600 / 60, dow, doy)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Sorts classic buckets `(upper bound, cumulative count)`, merges equal bounds and makes the
/// counts monotonic, as Prometheus does before interpolating. `None` without a `+Inf` bucket.
fn prepare_buckets(buckets: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    prepare_buckets_noting(buckets).map(|(b, _)| b)
}

/// [`prepare_buckets`], also saying whether a count had to be raised to keep them monotonic.
fn prepare_buckets_noting(buckets: &mut [(f64, f64)]) -> Option<(Vec<(f64, f64)>, bool)> {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return None;
    }
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    let mut max = f64::NEG_INFINITY;
    let mut forced = false;
    for b in merged.iter_mut() {
        if b.1 < max {
            b.1 = max;
            forced = true;
        } else {
            max = b.1;
        }
    }
    Some((merged, forced))
}

/// `histogram_quantile` over classic buckets; `forced` is set when the counts had to be made
/// monotonic.
fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)], forced: &mut bool) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let Some((merged, fixed)) = prepare_buckets_noting(buckets) else {
        return f64::NAN;
    };
    *forced |= fixed;
    if merged.len() < 2 {
        return f64::NAN;
    }
    let total = merged[merged.len() - 1].1;
    if total == 0.0 || total.is_nan() {
        return f64::NAN;
    }
    let rank = q * total;
    let i = merged
        .iter()
        .position(|b| b.1 >= rank)
        .unwrap_or(merged.len() - 1);
    if i == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if i == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (start, count_before) = if i == 0 {
        (0.0, 0.0)
    } else {
        (merged[i - 1].0, merged[i - 1].1)
    };
    let end = merged[i].0;
    let count = merged[i].1 - count_before;
    let rank = rank - count_before;
    start + (end - start) * (rank / count)
}

/// `histogram_fraction` over classic buckets: the share of observations in `[lower, upper]`,
/// interpolating linearly inside buckets (Prometheus's `BucketFraction`).
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    let Some(b) = prepare_buckets(buckets) else {
        return f64::NAN;
    };
    let count = b[b.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, &(ub, c)) in b.iter().enumerate() {
        let lb = if i > 0 {
            b[i - 1].0
        } else if ub > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        // No interpolation inside an infinitely wide bucket: a bound falling there takes
        // the bucket's edge that includes none of its observations.
        let interp_lower = |v: f64| {
            if lb.is_infinite() {
                c
            } else {
                rank + (c - rank) * (v - lb) / (ub - lb)
            }
        };
        let interp_upper = |v: f64| {
            if lb.is_infinite() {
                rank
            } else {
                rank + (c - rank) * (v - lb) / (ub - lb)
            }
        };
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = interp_lower(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = interp_upper(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = c;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

impl Evaluator<'_> {
    pub(crate) fn call_misc(
        &mut self,
        name: &str,
        args: &[&Expr],
        t: i64,
    ) -> Result<Option<Value>, Error> {
        let v = match name {
            "time" => Value::Scalar(t as f64 / 1000.0),
            // The query's own parameters, in seconds.
            "step" => Value::Scalar(self.step as f64 / 1000.0),
            "range" => Value::Scalar((self.end - self.start) as f64 / 1000.0),
            "start" => Value::Scalar(self.start as f64 / 1000.0),
            "end" => Value::Scalar(self.end as f64 / 1000.0),
            "min_of" | "max_of" => {
                let mut acc: Option<f64> = None;
                for a in args {
                    let v = self.eval_scalar(a, t)?;
                    acc = Some(match acc {
                        None => v,
                        Some(x) if x.is_nan() || v.is_nan() => f64::NAN,
                        Some(x) if name == "min_of" => x.min(v),
                        Some(x) => x.max(v),
                    });
                }
                Value::Scalar(acc.unwrap_or(f64::NAN))
            }
            "vector" => {
                let v = self.eval_scalar(args[0], t)?;
                Value::Vector(vec![VectorSample {
                    h: None,
                    drop_name: false,
                    labels: Labels::empty(),
                    t,
                    v,
                }])
            }
            "scalar" => {
                // The one float of the vector; histograms do not count.
                let v = self.eval_vector(args[0], t)?;
                let mut floats = v.iter().filter(|s| s.is_float());
                Value::Scalar(match (floats.next(), floats.next()) {
                    (Some(s), None) => s.v,
                    _ => f64::NAN,
                })
            }
            "timestamp" => self.misc_timestamp(args, t)?,
            "absent" | "absent_over_time" => self.misc_absent(name, args, t)?,
            "sort" | "sort_desc" => {
                let mut v = self.eval_vector(args[0], t)?;
                // Histograms have no order: sorting leaves them out.
                v.retain(VectorSample::is_float);
                v.sort_by(|a, b| crate::aggregate::cmp_nan_last(a.v, b.v, name == "sort_desc"));
                Value::Vector(v)
            }
            "sort_by_label" | "sort_by_label_desc" => self.misc_sort_by_label(name, args, t)?,
            "label_replace" => self.misc_label_replace(args, t)?,
            "label_join" => self.misc_label_join(args, t)?,
            "histogram_quantile" | "histogram_fraction" => {
                self.misc_histogram_quantile(name, args, t)?
            }
            "histogram_quantiles" => self.misc_histogram_quantiles(args, t)?,
            "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year"
            | "days_in_month" | "month" | "year" => self.misc_minute(name, args, t)?,
            _ => return Ok(None),
        };
        Ok(Some(v))
    }

    fn misc_sort_by_label(&mut self, name: &str, args: &[&Expr], t: i64) -> Result<Value, Error> {
        Ok({
            let mut names = Vec::new();
            for a in &args[1..] {
                match self.eval(a, t)? {
                    Value::String(s) => names.push(s),
                    other => {
                        return Err(Error::Eval(format!(
                            "expected string, got {}",
                            other.type_name()
                        )))
                    }
                }
            }
            let mut v = self.eval_vector(args[0], t)?;
            v.sort_by(|a, b| {
                let mut o = std::cmp::Ordering::Equal;
                for n in &names {
                    o = natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if o != std::cmp::Ordering::Equal {
                        break;
                    }
                }
                if o == std::cmp::Ordering::Equal {
                    o = a.labels.cmp(&b.labels);
                }
                if name == "sort_by_label_desc" {
                    o.reverse()
                } else {
                    o
                }
            });
            Value::Vector(v)
        })
    }

    fn misc_histogram_quantiles(&mut self, args: &[&Expr], t: i64) -> Result<Value, Error> {
        Ok({
            // histogram_quantiles(v, "label", q1, q2, …): one series per histogram and
            // quantile, the quantile in the given label.
            let dst = self.string_args(&args[1..2], t)?.remove(0);
            if !medic_model::is_valid_label_name(&dst) {
                return Err(Error::Eval(format!("invalid label name {dst:?}")));
            }
            let qs = args[2..]
                .iter()
                .map(|a| self.eval_scalar(a, t))
                .collect::<Result<Vec<f64>, Error>>()?;
            let input = self.eval_vector(args[0], t)?;
            let (order, groups, native, unnamed) = bucket_groups(input, &mut self.annotations);
            let mut out = Vec::with_capacity((order.len() + native.len()) * qs.len());
            for &q in &qs {
                self.note_quantile(q);
                let label = format_quantile_label(q);
                for s in &native {
                    let h = s.h.as_deref().expect("native samples hold histograms");
                    let mut lb = s.labels.to_builder();
                    lb.set(dst.as_str(), label.clone());
                    let v = super::histogram::quantile(q, h);
                    self.note_nan_observations("histogram_quantile", s, h, v);
                    out.push(super::unnamed(&lb.build(), t, v));
                }
                for g in &order {
                    let mut b = groups[g].clone();
                    let mut lb = g.to_builder();
                    lb.set(dst.as_str(), label.clone());
                    let mut forced = false;
                    let v = bucket_quantile(q, &mut b, &mut forced);
                    self.note_forced_monotonicity(!unnamed.contains(g), forced, g);
                    out.push(VectorSample {
                        h: None,
                        drop_name: true,
                        labels: lb.build(),
                        t,
                        v,
                    });
                }
            }
            // Names are dropped when evaluation finishes, which fails on label sets that
            // then collide (two histograms differing only in name, or `label` clashing).
            super::check_unique_labels(&out)?;
            Value::Vector(out)
        })
    }

    fn misc_minute(&mut self, name: &str, args: &[&Expr], t: i64) -> Result<Value, Error> {
        Ok({
            let inputs: Vec<VectorSample> = if args.is_empty() {
                vec![VectorSample {
                    h: None,
                    drop_name: false,
                    labels: Labels::empty(),
                    t,
                    v: t as f64 / 1000.0,
                }]
            } else {
                self.eval_vector(args[0], t)?
                    .into_iter()
                    .map(|s| VectorSample {
                        drop_name: true,
                        ..s
                    })
                    .collect()
            };
            Value::Vector(
                inputs
                    .into_iter()
                    .filter(VectorSample::is_float)
                    .map(|mut s| {
                        if !s.v.is_finite() {
                            return s;
                        }
                        let (y, mo, d, h, mi, dow, doy) = civil(s.v);
                        s.v = match name {
                            "minute" => mi,
                            "hour" => h,
                            "day_of_week" => dow,
                            "day_of_month" => d,
                            "day_of_year" => doy,
                            "days_in_month" => days_in_month(y, mo),
                            "month" => mo,
                            _ => y,
                        } as f64;
                        s
                    })
                    .collect(),
            )
        })
    }

    fn misc_timestamp(&mut self, args: &[&Expr], t: i64) -> Result<Value, Error> {
        Ok({
            // The timestamp of the sample each series' selector picked.
            let e = strip_parens(args[0]);
            let vec = match e {
                Expr::VectorSelector(vs) => {
                    let series = self.series(vs)?;
                    let te = self.shifted(t, &vs.at, &vs.offset);
                    let lookback = self.opts.lookback_ms;
                    series
                        .iter()
                        .filter_map(|s| {
                            let last = crate::selector::latest(s, te, lookback)?;
                            Some(super::unnamed(&s.labels, t, last.t() as f64 / 1000.0))
                        })
                        .collect()
                }
                _ => self
                    .eval_vector(e, t)?
                    .into_iter()
                    .map(|s| VectorSample {
                        h: None,
                        drop_name: true,
                        labels: s.labels.clone(),
                        t,
                        v: s.t as f64 / 1000.0,
                    })
                    .collect(),
            };
            Value::Vector(vec)
        })
    }

    fn misc_absent(&mut self, name: &str, args: &[&Expr], t: i64) -> Result<Value, Error> {
        Ok({
            let empty = if name == "absent" {
                self.eval_vector(args[0], t)?.is_empty()
            } else {
                self.range_arg(args[0], t)?.is_empty()
            };
            Value::Vector(if empty {
                vec![VectorSample {
                    h: None,
                    drop_name: false,
                    labels: absent_labels(args[0]),
                    t,
                    v: 1.0,
                }]
            } else {
                Vec::new()
            })
        })
    }

    fn misc_label_replace(&mut self, args: &[&Expr], t: i64) -> Result<Value, Error> {
        Ok({
            let strs = self.string_args(&args[1..], t)?;
            let (dst, repl, src, re) = (&strs[0], &strs[1], &strs[2], &strs[3]);
            let regex = regex::Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
                Error::Eval(format!(
                    "invalid regular expression in label_replace(): {re}: {e}"
                ))
            })?;
            check_destination(dst, "label_replace")?;
            let v = self.eval_vector(args[0], t)?;
            let mut out = Vec::with_capacity(v.len());
            for mut s in v {
                let val = s.labels.get(src).unwrap_or("").to_string();
                // Bounded before expanding: each `$` may stand for the whole value.
                if repl.len() + repl.matches('$').count() * val.len() > MAX_CREATED_LABEL_VALUE {
                    return Err(too_long(
                        "label_replace",
                        repl.len() + repl.matches('$').count() * val.len(),
                    ));
                }
                if let Some(caps) = regex.captures(&val) {
                    let mut res = String::new();
                    caps.expand(repl, &mut res);
                    check_created_value(&res, "label_replace")?;
                    set_label(&mut s, dst, res);
                }
                out.push(s);
            }
            super::check_unique_labels(&out)?;
            Value::Vector(out)
        })
    }

    fn misc_label_join(&mut self, args: &[&Expr], t: i64) -> Result<Value, Error> {
        Ok({
            let strs = self.string_args(&args[1..], t)?;
            let (dst, sep) = (&strs[0], &strs[1]);
            check_destination(dst, "label_join")?;
            let v = self.eval_vector(args[0], t)?;
            let mut out = Vec::with_capacity(v.len());
            for mut s in v {
                let joined: Vec<&str> = strs[2..]
                    .iter()
                    .map(|n| s.labels.get(n).unwrap_or(""))
                    .collect();
                let size: usize = joined.iter().map(|j| j.len()).sum::<usize>()
                    + sep.len() * joined.len().saturating_sub(1);
                if size > MAX_CREATED_LABEL_VALUE {
                    return Err(too_long("label_join", size));
                }
                let joined = joined.join(sep);
                set_label(&mut s, dst, joined);
                out.push(s);
            }
            super::check_unique_labels(&out)?;
            Value::Vector(out)
        })
    }

    fn misc_histogram_quantile(
        &mut self,
        name: &str,
        args: &[&Expr],
        t: i64,
    ) -> Result<Value, Error> {
        Ok({
            let params: Vec<f64> = if name == "histogram_quantile" {
                vec![self.eval_scalar(args[0], t)?]
            } else {
                vec![self.eval_scalar(args[0], t)?, self.eval_scalar(args[1], t)?]
            };
            let v = self.eval_vector(args[params.len()], t)?;
            let (order, mut groups, native, unnamed) = bucket_groups(v, &mut self.annotations);
            if name == "histogram_quantile" {
                self.note_quantile(params[0]);
            }
            let mut out = Vec::new();
            for s in native {
                let h = s.h.as_deref().expect("native samples hold histograms");
                let v = if name == "histogram_quantile" {
                    super::histogram::quantile(params[0], h)
                } else {
                    super::histogram::fraction(params[0], params[1], h)
                };
                self.note_nan_observations(name, &s, h, v);
                out.push(super::unnamed(&s.labels, t, v));
            }
            for g in order {
                let mut b = groups.remove(&g).unwrap_or_default();
                let mut forced = false;
                let v = if name == "histogram_quantile" {
                    bucket_quantile(params[0], &mut b, &mut forced)
                } else {
                    bucket_fraction(params[0], params[1], &mut b)
                };
                self.note_forced_monotonicity(!unnamed.contains(&g), forced, &g);
                out.push(VectorSample {
                    drop_name: true,
                    labels: g,
                    t,
                    h: None,
                    v,
                });
            }
            Value::Vector(out)
        })
    }

    /// A quantile outside [0, 1] (or NaN) is noted.
    fn note_quantile(&mut self, q: f64) {
        if !(0.0..=1.0).contains(&q) {
            self.annotate(crate::annotations::invalid_quantile(q));
        }
    }

    /// Classic buckets whose counts had to be made monotonic are noted.
    fn note_forced_monotonicity(&mut self, named: bool, forced: bool, group: &Labels) {
        if forced {
            let metric = match named {
                true => group.get(medic_model::METRIC_NAME).unwrap_or(""),
                false => "",
            };
            self.annotate(crate::annotations::forced_monotonicity(metric));
        }
    }

    /// A native histogram with NaN observations (a NaN sum, a count above its buckets') is
    /// noted: for a quantile, whether the result became NaN or only skewed higher.
    fn note_nan_observations(&mut self, name: &str, s: &VectorSample, h: &FloatHistogram, v: f64) {
        use crate::annotations as a;
        if !h.sum.is_nan() {
            return;
        }
        let in_buckets: f64 = h.buckets().iter().map(|b| b.count).sum();
        if h.count <= in_buckets {
            return;
        }
        let metric = shown_name(s);
        self.annotate(match name {
            "histogram_fraction" => a::fraction_nans(metric),
            _ if v.is_nan() => a::quantile_nan_result(metric),
            _ => a::quantile_nan_skew(metric),
        });
    }

    fn string_args(&mut self, args: &[&Expr], t: i64) -> Result<Vec<String>, Error> {
        args.iter()
            .map(|a| match self.eval(a, t)? {
                Value::String(s) => Ok(s),
                other => Err(Error::Eval(format!(
                    "expected string, got {}",
                    other.type_name()
                ))),
            })
            .collect()
    }
}

fn check_destination(dst: &str, function: &str) -> Result<(), Error> {
    if is_valid_label_name(dst) {
        Ok(())
    } else {
        Err(Error::Eval(format!(
            "invalid destination label name in {function}(): {dst}"
        )))
    }
}

/// Sets label `dst` (an empty value removes it). A metric name set explicitly is kept even if an
/// earlier function marked the name for removal.
/// Classic histogram buckets grouped by series without `le` (keeping the metric name, which
/// the result then drops, as in Prometheus: two histograms differing only in name collide in the
/// output), in order of first appearance, as (upper bound, count) pairs. Series without a
/// parsable `le` are ignored.
/// Native histograms come back apart, as they are. Last, the groups whose name an earlier
/// function dropped (annotations name no metric for them, as in Prometheus).
type BucketGroups = (
    Vec<Labels>,
    HashMap<Labels, Vec<(f64, f64)>>,
    Vec<VectorSample>,
    HashSet<Labels>,
);

/// The metric name a sample shows in annotations: none once a function dropped it.
fn shown_name(s: &VectorSample) -> &str {
    if s.drop_name {
        ""
    } else {
        s.labels.get(medic_model::METRIC_NAME).unwrap_or("")
    }
}

fn bucket_groups(v: Vec<VectorSample>, notes: &mut Annotations) -> BucketGroups {
    let mut groups: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
    let mut order = Vec::new();
    let mut native = Vec::new();
    let mut unnamed = HashSet::new();
    for s in v {
        if s.h.is_some() {
            native.push(s);
            continue;
        }
        let Some(Ok(ub)) = s.labels.get("le").map(parse_le) else {
            let le = s.labels.get("le").unwrap_or("");
            notes.add(crate::annotations::bad_bucket_label(shown_name(&s), le));
            continue;
        };
        let mut b = s.labels.to_builder();
        b.del("le");
        let g = b.build();
        if s.drop_name {
            unnamed.insert(g.clone());
        }
        if !groups.contains_key(&g) {
            order.push(g.clone());
        }
        groups.entry(g).or_default().push((ub, s.v));
    }
    // A native histogram and classic buckets of the same series: Prometheus answers neither.
    let clash: Vec<Labels> = native
        .iter()
        .filter(|s| groups.contains_key(&s.labels))
        .map(|s| {
            notes.add(crate::annotations::mixed_classic_native(shown_name(s)));
            s.labels.clone()
        })
        .collect();
    if !clash.is_empty() {
        native.retain(|s| !clash.contains(&s.labels));
        order.retain(|g| !clash.contains(g));
        for c in &clash {
            groups.remove(c);
        }
    }
    (order, groups, native, unnamed)
}

/// A quantile as `histogram_quantiles` writes it into a label: integers keep one decimal
/// (`0.0`, `1.0`), others their shortest form (`0.25`, `-0.1`), and `NaN`/`+Inf`/`-Inf`.
fn format_quantile_label(q: f64) -> String {
    if q.is_finite() && q.fract() == 0.0 {
        format!("{q:.1}")
    } else {
        crate::value::format_value(q)
    }
}

fn set_label(s: &mut VectorSample, dst: &str, value: String) {
    let mut b = s.labels.to_builder();
    b.set(dst, value);
    s.labels = b.build();
    if dst == METRIC_NAME {
        s.drop_name = false;
    }
}

/// Natural order, as Prometheus's `sort_by_label`: runs of digits compare by number
/// (`"2" < "10"`), everything else byte by byte.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (x, y) = (&a[si..i], &b[sj..j]);
            let (xt, yt) = (trim_zeros(x), trim_zeros(y));
            let o = xt.len().cmp(&yt.len()).then_with(|| xt.cmp(yt));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().position(|c| *c != b'0').unwrap_or(d.len());
    &d[k..]
}

fn parse_le(s: &str) -> Result<f64, ()> {
    match s {
        "+Inf" | "Inf" | "inf" | "+inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().map_err(|_| ()),
    }
}

/// The longest label value `label_join` and `label_replace` may make (64 KiB): a separator or
/// replacement of a few megabytes repeated over many series and labels would otherwise cost
/// gigabytes. Prometheus has no such limit; no real label comes near it.
pub(crate) const MAX_CREATED_LABEL_VALUE: usize = 64 << 10;

fn too_long(func: &str, size: usize) -> Error {
    Error::Eval(format!(
        "{func}(): the label value it would make is {size} bytes, over the limit of {MAX_CREATED_LABEL_VALUE}"
    ))
}

fn check_created_value(v: &str, func: &str) -> Result<(), Error> {
    if v.len() > MAX_CREATED_LABEL_VALUE {
        return Err(too_long(func, v.len()));
    }
    Ok(())
}
