//! Binary operators: arithmetic, comparison (filtering or `bool`), set operators, and vector
//! matching with `on`/`ignoring` and `group_left`/`group_right`, as Prometheus defines them.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use medic_model::histogram::TrimSide;
use medic_model::{FloatHistogram, Labels};
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::annotations::{self, Annotations};
use crate::engine::Evaluator;
use crate::value::{Value, VectorSample};
use crate::Error;

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// The histogram trim operators: they keep the metric name, and give nothing for floats.
fn is_trim(op: &str) -> bool {
    matches!(op, "</" | ">/")
}

/// Applies `op`; for comparisons returns `(keep, value)` semantics through `Option`.
fn arith(op: &str, l: f64, r: f64) -> Result<f64, Error> {
    Ok(match op {
        "+" => l + r,
        "-" => l - r,
        "*" => l * r,
        "/" => l / r,
        "%" => l % r,
        "^" => l.powf(r),
        "atan2" => l.atan2(r),
        other => return Err(Error::Eval(format!("operator {other:?} not allowed here"))),
    })
}

fn compare(op: &str, l: f64, r: f64) -> bool {
    match op {
        "==" => l == r,
        "!=" => l != r,
        ">" => l > r,
        "<" => l < r,
        ">=" => l >= r,
        "<=" => l <= r,
        _ => false,
    }
}

/// The result of an operator on two samples of which at least one is a histogram (Prometheus's
/// `vectorElemBinop`): `None` drops the pair (an operation histograms do not have, or buckets
/// that cannot be combined), noting why in `notes`.
fn histogram_elem(
    op: &str,
    l: (f64, Option<&Arc<FloatHistogram>>),
    r: (f64, Option<&Arc<FloatHistogram>>),
    notes: &mut Annotations,
) -> Option<Elem> {
    let kind = |h: Option<&Arc<FloatHistogram>>| if h.is_some() { "histogram" } else { "float" };
    let scaled = |h: &FloatHistogram, f: f64, div: bool| {
        let mut h = h.clone();
        if div {
            h.div(f);
        } else {
            h.mul(f);
        }
        h.compact();
        Elem::Histogram(Arc::new(h))
    };
    match (l.1, r.1, op) {
        (None, Some(h), "*") => Some(scaled(h, l.0, false)),
        (Some(h), None, "*") => Some(scaled(h, r.0, false)),
        (Some(h), None, "/") => Some(scaled(h, r.0, true)),
        (Some(a), Some(b), "+" | "-") => {
            let mut h = FloatHistogram::clone(a);
            let during = if op == "+" { "addition" } else { "subtraction" };
            match if op == "+" { h.add(b) } else { h.sub(b) } {
                Ok(combined) => {
                    if combined.custom_reconciled {
                        notes.add(annotations::custom_buckets_reconciled(during));
                    }
                }
                Err(_) => {
                    notes.add(annotations::mixed_exponential_custom(""));
                    return None;
                }
            }
            h.compact();
            Some(Elem::Histogram(Arc::new(h)))
        }
        (Some(h), None, "</" | ">/") => {
            let side = if op == "</" {
                TrimSide::Below
            } else {
                TrimSide::Above
            };
            Some(Elem::Trimmed(Arc::new(h.trim(r.0, side))))
        }
        (Some(a), Some(b), "==" | "!=") => {
            let equal = a.equals(b);
            Some(Elem::Compared(if op == "==" { equal } else { !equal }))
        }
        (_, _, "</" | ">/") => None,
        _ => {
            notes.add(annotations::incompatible_types(kind(l.1), op, kind(r.1)));
            None
        }
    }
}

/// What an operator gives for a pair with a histogram.
enum Elem {
    Histogram(Arc<FloatHistogram>),
    /// A trimmed histogram (its metric name stays).
    Trimmed(Arc<FloatHistogram>),
    /// A comparison of two histograms: whether the pair passes.
    Compared(bool),
}

/// Applies an operator to a pair with a histogram on a side: the sample to emit, if any,
/// built on `x` (the sample whose labels the result takes).
fn histogram_result(
    op: &str,
    mut x: VectorSample,
    l: (f64, Option<&Arc<FloatHistogram>>),
    r: (f64, Option<&Arc<FloatHistogram>>),
    return_bool: bool,
    notes: &mut Annotations,
) -> Option<VectorSample> {
    match histogram_elem(op, l, r, notes)? {
        Elem::Histogram(h) => {
            x.h = Some(h);
            x.v = 0.0;
            x.drop_name = true;
        }
        Elem::Trimmed(h) => {
            x.h = Some(h);
            x.v = 0.0;
        }
        Elem::Compared(keep) if return_bool => {
            x.h = None;
            x.v = if keep { 1.0 } else { 0.0 };
            x.drop_name = true;
        }
        Elem::Compared(true) => {
            // The left histogram passes the filter.
            x.h = l.1.cloned();
        }
        Elem::Compared(false) => return None,
    }
    Some(x)
}

/// Signature of `labels` for matching: the `on` labels, or all but the `ignoring` ones and
/// the metric name.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Labels {
    matching.map_or_else(
        || labels.without_metric_name(),
        |m| crate::aggregate::project(labels, m),
    )
}

impl Evaluator<'_> {
    pub(crate) fn binary(&mut self, b: &BinaryExpr, t: i64) -> Result<Value, Error> {
        let op = b.op.to_string();
        let op = op.as_str();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                if is_comparison(op) {
                    if !return_bool {
                        return Err(Error::Eval("comparisons between scalars must use BOOL modifier".into()));
                    }
                    return Ok(Value::Scalar(if compare(op, l, r) { 1.0 } else { 0.0 }));
                }
                Ok(Value::Scalar(arith(op, l, r)?))
            }
            (Value::Vector(v), Value::Scalar(s)) => {
                let out = self.vector_scalar(op, v, s, false, return_bool)?;
                crate::functions::check_unique_labels(&out)?;
                Ok(Value::Vector(out))
            }
            (Value::Scalar(s), Value::Vector(v)) => {
                let out = self.vector_scalar(op, v, s, true, return_bool)?;
                crate::functions::check_unique_labels(&out)?;
                Ok(Value::Vector(out))
            }
            (Value::Vector(l), Value::Vector(r)) => {
                let m = b.modifier.as_ref();
                match op {
                    "and" | "or" | "unless" => Ok(Value::Vector(set_op(op, l, r, m))),
                    _ => Ok(Value::Vector(vector_vector(
                        op,
                        l,
                        r,
                        m,
                        return_bool,
                        &mut self.annotations,
                    )?)),
                }
            }
            (l, r) => Err(Error::Eval(format!(
                "binary expression must contain only scalar and instant vector types, got {} and {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }

    fn vector_scalar(
        &mut self,
        op: &str,
        v: Vec<VectorSample>,
        s: f64,
        scalar_left: bool,
        return_bool: bool,
    ) -> Result<Vec<VectorSample>, Error> {
        let mut out = Vec::with_capacity(v.len());
        for mut x in v {
            if let Some(h) = x.h.clone() {
                let (l, r) = if scalar_left {
                    ((s, None), (0.0, Some(&h)))
                } else {
                    ((0.0, Some(&h)), (s, None))
                };
                out.extend(histogram_result(
                    op,
                    x,
                    l,
                    r,
                    return_bool,
                    &mut self.annotations,
                ));
                continue;
            }
            if is_trim(op) {
                continue;
            }
            let (l, r) = if scalar_left { (s, x.v) } else { (x.v, s) };
            if is_comparison(op) {
                let keep = compare(op, l, r);
                if return_bool {
                    x.v = if keep { 1.0 } else { 0.0 };
                    x.drop_name = true;
                } else if keep {
                    // The vector's value is kept, whichever side it was on.
                } else {
                    continue;
                }
            } else {
                x.v = arith(op, l, r)?;
                x.drop_name = true;
            }
            out.push(x);
        }
        Ok(out)
    }
}

fn set_op(
    op: &str,
    l: Vec<VectorSample>,
    r: Vec<VectorSample>,
    m: Option<&BinModifier>,
) -> Vec<VectorSample> {
    let matching = m.and_then(|m| m.matching.as_ref());
    let rsigs: HashSet<Labels> = r.iter().map(|x| signature(&x.labels, matching)).collect();
    match op {
        "and" => l
            .into_iter()
            .filter(|x| rsigs.contains(&signature(&x.labels, matching)))
            .collect(),
        "unless" => l
            .into_iter()
            .filter(|x| !rsigs.contains(&signature(&x.labels, matching)))
            .collect(),
        _ => {
            let lsigs: HashSet<Labels> = l.iter().map(|x| signature(&x.labels, matching)).collect();
            let mut out = l;
            out.extend(
                r.into_iter()
                    .filter(|x| !lsigs.contains(&signature(&x.labels, matching))),
            );
            out
        }
    }
}

/// One side's sample as an operand: its value and its histogram, if any.
type Operand<'a> = (f64, Option<&'a Arc<FloatHistogram>>);

/// A result's float value, or its histogram.
type PairValue = (f64, Option<Arc<FloatHistogram>>);

/// The value of `l op r` for a matched (or filled) pair; `None` drops the pair (a comparison
/// that fails without `bool`, or an operation histograms do not have).
fn pair_value(
    op: &str,
    l: Operand<'_>,
    r: Operand<'_>,
    return_bool: bool,
    notes: &mut Annotations,
) -> Result<Option<PairValue>, Error> {
    if l.1.is_some() || r.1.is_some() {
        return Ok(match histogram_elem(op, l, r, notes) {
            None => None,
            Some(Elem::Compared(keep)) if return_bool => Some((f64::from(u8::from(keep)), None)),
            Some(Elem::Compared(true)) => Some((0.0, l.1.cloned())),
            Some(Elem::Compared(false)) => None,
            Some(Elem::Histogram(h) | Elem::Trimmed(h)) => Some((0.0, Some(h))),
        });
    }
    if is_trim(op) {
        return Ok(None);
    }
    if !is_comparison(op) {
        return Ok(Some((arith(op, l.0, r.0)?, None)));
    }
    let keep = compare(op, l.0, r.0);
    Ok(if return_bool {
        Some((f64::from(u8::from(keep)), None))
    } else if keep {
        Some((l.0, None))
    } else {
        None
    })
}

/// How a pair's result is labelled: the many side's labels (all of them when grouping, the
/// `on` labels or all but the `ignoring` ones for one-to-one), plus the `group_left`/
/// `group_right` labels taken from the one side (removed when that side was filled in).
fn result_labels(
    many: &Labels,
    one: Option<&Labels>,
    matching: Option<&LabelModifier>,
    grouped: bool,
    include: &[String],
) -> Labels {
    let mut b = many.to_builder();
    if !grouped {
        match matching {
            Some(LabelModifier::Include(on)) => {
                let keep: HashSet<&str> = on.labels.iter().map(String::as_str).collect();
                b.retain(|l| keep.contains(&*l.name));
            }
            Some(LabelModifier::Exclude(ign)) => {
                for n in &ign.labels {
                    b.del(n);
                }
            }
            None => {}
        }
    }
    for name in include {
        match one.and_then(|o| o.get(name)) {
            Some(v) => b.set(name.as_str(), v),
            None => b.del(name),
        };
    }
    b.build()
}

fn vector_vector(
    op: &str,
    lhs: Vec<VectorSample>,
    rhs: Vec<VectorSample>,
    m: Option<&BinModifier>,
    return_bool: bool,
    notes: &mut Annotations,
) -> Result<Vec<VectorSample>, Error> {
    let matching = m.and_then(|m| m.matching.as_ref());
    let card = m.map(|m| &m.card);
    let (include, one_to_many, many_to_one) = match card {
        Some(VectorMatchCardinality::ManyToOne(l)) => (l.labels.clone(), false, true),
        Some(VectorMatchCardinality::OneToMany(l)) => (l.labels.clone(), true, false),
        _ => (Vec::new(), false, false),
    };
    let grouped = one_to_many || many_to_one;
    // `fill_right` stands in for a missing one side and `fill_left` for a missing many side —
    // with `group_right` too, where the one side is the left: Prometheus's behaviour, which
    // its tests pin down.
    let fill = m.map(|m| m.fill_values.clone()).unwrap_or_default();
    let (fill_one, fill_many) = (fill.rhs, fill.lhs);
    // The "one" side is indexed; with group_right the sides swap.
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut index: HashMap<Labels, &VectorSample> = HashMap::new();
    for x in &one {
        let sig = signature(&x.labels, matching);
        if index.insert(sig.clone(), x).is_some() {
            let side = if one_to_many { "left" } else { "right" };
            return Err(Error::Eval(format!(
                "found duplicate series for the match group {sig} on the {side} hand-side of the operation: {}; many-to-many matching not allowed: matching labels must be unique on one side",
                x.labels
            )));
        }
    }
    let drop_name = !(is_comparison(op) || is_trim(op)) || return_bool;
    let mut out = Vec::new();
    let mut seen_one_to_one: HashSet<Labels> = HashSet::new();
    let mut seen_results: HashSet<Labels> = HashSet::new();
    let mut matched: HashSet<Labels> = HashSet::new();
    for x in &many {
        let sig = signature(&x.labels, matching);
        let o = index.get(&sig).copied();
        let one_operand: Operand<'_> = match (o, fill_one) {
            (Some(o), _) => (o.v, o.h.as_ref()),
            (None, Some(f)) => (f, None),
            (None, None) => continue,
        };
        if o.is_some() {
            matched.insert(sig.clone());
            if !grouped && !seen_one_to_one.insert(sig.clone()) {
                return Err(Error::Eval(format!(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right); found duplicate series for the match group {sig} on the left hand-side of the operation"
                )));
            }
        }
        // Operands in the operator's order: with group_right the many side is on the right.
        let many_operand: Operand<'_> = (x.v, x.h.as_ref());
        let (l, r) = if one_to_many {
            (one_operand, many_operand)
        } else {
            (many_operand, one_operand)
        };
        let Some((value, h)) = pair_value(op, l, r, return_bool, notes)? else {
            continue;
        };
        let labels = result_labels(&x.labels, o.map(|o| &o.labels), matching, grouped, &include);
        let key = if drop_name {
            labels.without_metric_name()
        } else {
            labels.clone()
        };
        if !seen_results.insert(key) && grouped {
            return Err(Error::Eval(format!("multiple matches for labels: grouping labels must ensure unique matches; duplicate result {labels}")));
        }
        out.push(VectorSample {
            labels,
            t: x.t,
            v: value,
            h,
            drop_name: drop_name || x.drop_name,
        });
    }
    // One-side samples no many-side sample matched, with the many side filled in: labelled by
    // their match group.
    if let Some(f) = fill_many {
        for o in &one {
            let sig = signature(&o.labels, matching);
            if matched.contains(&sig) {
                continue;
            }
            let one_operand: Operand<'_> = (o.v, o.h.as_ref());
            let (l, r) = if one_to_many {
                (one_operand, (f, None))
            } else {
                ((f, None), one_operand)
            };
            if let Some((value, h)) = pair_value(op, l, r, return_bool, notes)? {
                out.push(VectorSample {
                    labels: sig,
                    t: o.t,
                    v: value,
                    h,
                    drop_name: true,
                });
            }
        }
    }
    Ok(out)
}
