//! Annotations: the warnings and infos a query's result carries, with Prometheus's texts
//! (`util/annotations`), so dashboards and the `.test` files see the same words.
//!
//! A warning says the result may be wrong (a bucket label that is not a number, a mix of float
//! and histogram samples); an info says it may not mean what was meant (`rate` of something not
//! named like a counter, a histogram left out of an aggregation). Each text is kept once.
//! Prometheus appends the position in the query (`(1:6)`); medic's parser does not keep
//! positions, so the texts end without it.

use std::collections::BTreeSet;

/// Warnings and infos of one query, each once, in text order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    warnings: BTreeSet<String>,
    infos: BTreeSet<String>,
}

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotation {
    /// The result may be wrong.
    Warning(String),
    /// The result may not mean what was meant.
    Info(String),
}

impl Annotations {
    /// Keeps `a` (once).
    pub fn add(&mut self, a: Annotation) {
        match a {
            Annotation::Warning(w) => self.warnings.insert(w),
            Annotation::Info(i) => self.infos.insert(i),
        };
    }

    /// Keeps every annotation of `other`.
    pub fn merge(&mut self, other: Annotations) {
        self.warnings.extend(other.warnings);
        self.infos.extend(other.infos);
    }

    /// The warnings' texts.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.warnings.iter().map(String::as_str)
    }

    /// The infos' texts.
    pub fn infos(&self) -> impl Iterator<Item = &str> {
        self.infos.iter().map(String::as_str)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty() && self.infos.is_empty()
    }
}

fn warn(text: String) -> Annotation {
    Annotation::Warning(format!("PromQL warning: {text}"))
}

fn info(text: String) -> Annotation {
    Annotation::Info(format!("PromQL info: {text}"))
}

/// `" for metric name \"x\""`, or nothing for no name.
fn for_metric(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" for metric name {}", quoted(name))
    }
}

/// A string as Go's `%q` writes it.
pub(crate) fn quoted(s: &str) -> String {
    medic_template::fmt::quote(s)
}

/// A number as Go's `%g` writes it (`NaN`, `+Inf`, `1.1`, `-1`, `1e+06`).
fn go_g(v: f64) -> String {
    medic_template::fmt::format_g(v, None, false)
}

/// `quantile`, `quantile_over_time`, `histogram_quantile` with `q` outside [0, 1].
pub(crate) fn invalid_quantile(q: f64) -> Annotation {
    warn(format!(
        "quantile value should be between 0 and 1, got {}",
        go_g(q)
    ))
}

/// `limit_ratio` with a ratio outside [-1, 1].
pub(crate) fn invalid_ratio(r: f64, to: f64) -> Annotation {
    warn(format!(
        "ratio value should be between -1 and 1, got {}, capping to {}",
        go_g(r),
        go_g(to)
    ))
}

/// A classic histogram bucket whose `le` is missing or not a number.
pub(crate) fn bad_bucket_label(metric: &str, le: &str) -> Annotation {
    warn(format!(
        "bucket label \"le\" is missing or has a malformed value of {}{}",
        quoted(le),
        for_metric(metric)
    ))
}

/// A function that takes floats or histograms met both in one series' range.
pub(crate) fn mixed_floats_histograms(metric: &str) -> Annotation {
    warn(format!(
        "encountered a mix of histograms and floats for metric name {}",
        quoted(metric)
    ))
}

/// An aggregation met floats and histograms in one group.
pub(crate) fn mixed_floats_histograms_aggregation() -> Annotation {
    warn("encountered a mix of histograms and floats for aggregation".into())
}

/// `histogram_quantile` over a group with both classic buckets and a native histogram.
pub(crate) fn mixed_classic_native(metric: &str) -> Annotation {
    warn(format!(
        "vector contains a mix of classic and native histograms{}",
        for_metric(metric)
    ))
}

/// `rate`/`increase` over a gauge histogram.
pub(crate) fn histogram_not_counter(metric: &str) -> Annotation {
    warn(format!(
        "this native histogram metric is not a counter: {}",
        quoted(metric)
    ))
}

/// `delta`/`idelta` over a counter histogram.
pub(crate) fn histogram_not_gauge(metric: &str) -> Annotation {
    warn(format!(
        "this native histogram metric is not a gauge: {}",
        quoted(metric)
    ))
}

/// Exponential and custom-bucket histograms combined.
pub(crate) fn mixed_exponential_custom(metric: &str) -> Annotation {
    warn(format!(
        "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {}",
        quoted(metric)
    ))
}

/// Histograms with conflicting counter-reset hints summed.
pub(crate) fn counter_reset_collision(during: &str) -> Annotation {
    warn(format!(
        "conflicting counter resets during histogram {during}"
    ))
}

/// Custom-bucket histograms with different bounds combined over their common bounds.
pub(crate) fn custom_buckets_reconciled(during: &str) -> Annotation {
    info(format!(
        "mismatched custom buckets were reconciled during {during}"
    ))
}

/// `sort*` in a range query.
pub(crate) fn sort_in_range_query() -> Annotation {
    warn("sort is ineffective for range queries since results are always ordered by labels".into())
}

/// `rate`/`increase` over floats whose name does not look like a counter's.
pub(crate) fn possible_non_counter(metric: &str) -> Annotation {
    info(format!(
        "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
        quoted(metric)
    ))
}

/// Classic buckets that had to be made monotonic.
pub(crate) fn forced_monotonicity(metric: &str) -> Annotation {
    info(format!(
        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile){}",
        for_metric(metric)
    ))
}

/// A binary operator between sample types it has no meaning for.
pub(crate) fn incompatible_types(lhs: &str, op: &str, rhs: &str) -> Annotation {
    info(format!(
        "incompatible sample types encountered for binary operator {}: {lhs} {op} {rhs}",
        quoted(op)
    ))
}

/// An aggregation that ignores histograms met one.
pub(crate) fn histogram_ignored_in_aggregation(op: &str) -> Annotation {
    info(format!("ignored histogram in {op} aggregation"))
}

/// A float-only range function met a range with floats and histograms.
pub(crate) fn histogram_ignored_in_mixed_range(metric: &str) -> Annotation {
    info(format!(
        "ignored histograms in a range containing both floats and histograms for metric name {}",
        quoted(metric)
    ))
}

/// `histogram_quantile` over a histogram with NaN observations.
pub(crate) fn quantile_nan_result(metric: &str) -> Annotation {
    info(format!(
        "input to histogram_quantile has NaN observations, result is NaN{}",
        for_metric(metric)
    ))
}

/// The same, when the NaN observations only push the result up.
pub(crate) fn quantile_nan_skew(metric: &str) -> Annotation {
    info(format!(
        "input to histogram_quantile has NaN observations, result is skewed higher{}",
        for_metric(metric)
    ))
}

/// `histogram_fraction` over a histogram with NaN observations.
pub(crate) fn fraction_nans(metric: &str) -> Annotation {
    info(format!(
        "input to histogram_fraction has NaN observations, which are excluded from all fractions{}",
        for_metric(metric)
    ))
}

/// Whether a metric name looks like a counter's.
pub(crate) fn counter_like(name: &str) -> bool {
    ["_total", "_sum", "_count", "_bucket"]
        .iter()
        .any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_prometheus_texts() {
        // From Prometheus's util/annotations tests and promqltest files.
        assert_eq!(
            invalid_ratio(1.1, 1.0),
            Annotation::Warning(
                "PromQL warning: ratio value should be between -1 and 1, got 1.1, capping to 1"
                    .into()
            )
        );
        assert_eq!(
            invalid_quantile(f64::NAN),
            Annotation::Warning(
                "PromQL warning: quantile value should be between 0 and 1, got NaN".into()
            )
        );
        assert_eq!(
            bad_bucket_label("series", "Hello World"),
            Annotation::Warning("PromQL warning: bucket label \"le\" is missing or has a malformed value of \"Hello World\" for metric name \"series\"".into())
        );
        assert_eq!(
            incompatible_types("histogram", "==", "float"),
            Annotation::Info("PromQL info: incompatible sample types encountered for binary operator \"==\": histogram == float".into())
        );
        assert_eq!(go_g(-1.0), "-1");
        assert_eq!(go_g(1e6), "1e+06");
        assert_eq!(go_g(1e21), "1e+21");
        assert_eq!(go_g(f64::INFINITY), "+Inf");
    }

    #[test]
    fn each_text_is_kept_once() {
        let mut a = Annotations::default();
        a.add(sort_in_range_query());
        a.add(sort_in_range_query());
        a.add(possible_non_counter("x"));
        assert_eq!(a.warnings().count(), 1);
        assert_eq!(a.infos().collect::<Vec<_>>(), [
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"x\""
        ]);
        assert!(!a.is_empty());
    }
}
