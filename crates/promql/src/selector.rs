//! Vector and matrix selectors: matchers, lookback, staleness, `offset` and `@`.

use medic_model::{is_stale_nan, HistogramSample, Labels, MatchType, Matcher, Sample};
use promql_parser::label::MatchOp;
use promql_parser::parser::{MatrixSelector, VectorSelector};

use crate::engine::{ms, Evaluator};
use crate::functions::extended::{self, Smoothed};
use crate::value::{RangeSeries, VectorSample};
use crate::Error;

/// The model's matchers for a selector (the metric name becomes a `__name__` matcher).
pub(crate) fn matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, Error> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(Error::Eval(
            "the `or` operator inside selectors is not supported".into(),
        ));
    }
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher::equal("__name__", name.as_str()));
    }
    for m in &vs.matchers.matchers {
        let kind = match m.op {
            MatchOp::Equal => MatchType::Equal,
            MatchOp::NotEqual => MatchType::NotEqual,
            MatchOp::Re(_) => MatchType::Regexp,
            MatchOp::NotRe(_) => MatchType::NotRegexp,
        };
        out.push(
            Matcher::new(kind, m.name.as_str(), m.value.as_str())
                .map_err(|e| Error::Eval(e.to_string()))?,
        );
    }
    Ok(out)
}

/// Index of the first sample with `t > after`.
fn first_after(samples: &[Sample], after: i64) -> usize {
    samples.partition_point(|s| s.t <= after)
}

/// The newest point of a series at or before `te`, float or histogram.
pub(crate) enum Latest<'a> {
    Float(Sample),
    Histogram(&'a HistogramSample),
}

impl Latest<'_> {
    /// Its timestamp (ms).
    pub(crate) fn t(&self) -> i64 {
        match self {
            Latest::Float(x) => x.t,
            Latest::Histogram(h) => h.t,
        }
    }
}

/// What an instant selector picks from a series at `te`: its newest point within the lookback,
/// none if that is a staleness marker.
pub(crate) fn latest(s: &RangeSeries, te: i64, lookback: i64) -> Option<Latest<'_>> {
    let float = first_after(&s.samples, te)
        .checked_sub(1)
        .map(|i| s.samples[i]);
    let hist = s
        .histograms
        .partition_point(|h| h.t <= te)
        .checked_sub(1)
        .map(|i| &s.histograms[i]);
    let picked = match (float, hist) {
        (Some(f), Some(h)) if f.t < h.t => Latest::Histogram(h),
        (None, Some(h)) => Latest::Histogram(h),
        (Some(f), _) => Latest::Float(f),
        (None, None) => return None,
    };
    let stale = match &picked {
        Latest::Float(x) => is_stale_nan(x.v),
        Latest::Histogram(h) => is_stale_nan(h.h.sum),
    };
    (picked.t() > te - lookback && !stale).then_some(picked)
}

/// A series' non-stale floats and histograms in `(from, to]` (what `smoothed` interpolates
/// between).
fn fresh_points(s: &RangeSeries, from: i64, to: i64) -> (Vec<Sample>, Vec<HistogramSample>) {
    let (a, b) = (first_after(&s.samples, from), first_after(&s.samples, to));
    let f = s.samples[a..b]
        .iter()
        .filter(|x| !is_stale_nan(x.v))
        .copied()
        .collect();
    let ha = s.histograms.partition_point(|h| h.t <= from);
    let hb = s.histograms.partition_point(|h| h.t <= to);
    let h = s.histograms[ha..hb]
        .iter()
        .filter(|x| !is_stale_nan(x.h.sum))
        .cloned()
        .collect();
    (f, h)
}

impl Evaluator<'_> {
    /// An instant vector selector at `t`: each series' newest sample in `(t' - lookback, t']`,
    /// unless that sample is a staleness marker.
    pub(crate) fn select_instant(
        &mut self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<VectorSample>, Error> {
        let series = self.series(vs)?;
        let te = self.shifted(t, &vs.at, &vs.offset);
        let lookback = self.opts.lookback_ms;
        let mut out = Vec::new();
        if vs.smoothed {
            for s in series.iter() {
                let (f, h) = fresh_points(s, te - lookback, te + lookback);
                match extended::smoothed_at(&f, &h, te) {
                    Some(Smoothed::Float(v)) => out.push(VectorSample::new(s.labels.clone(), t, v)),
                    Some(Smoothed::Histogram(h)) => out.push(VectorSample::histogram(
                        s.labels.clone(),
                        t,
                        std::sync::Arc::new(h),
                    )),
                    None => {
                        if let Some(a) = smoothed_refusal(&s.labels, &f, &h, te) {
                            self.annotate(a);
                        }
                    }
                }
            }
            return Ok(out);
        }
        for s in series.iter() {
            match latest(s, te, lookback) {
                Some(Latest::Float(x)) => out.push(VectorSample::new(s.labels.clone(), t, x.v)),
                Some(Latest::Histogram(h)) => {
                    out.push(VectorSample::histogram(s.labels.clone(), t, h.h.clone()))
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// A matrix selector at `t`: samples in `(t' - range, t']`, staleness markers left out.
    pub(crate) fn select_range(
        &mut self,
        m: &MatrixSelector,
        t: i64,
    ) -> Result<Vec<RangeSeries>, Error> {
        let vs = &m.vs;
        let series = self.series_without_stale(vs)?;
        let te = self.shifted(t, &vs.at, &vs.offset);
        let from = te - ms(&m.range);
        let lookback = self.opts.lookback_ms;
        let (lo, hi) = match (vs.anchored, vs.smoothed) {
            (true, _) => (from - lookback, te),
            (_, true) => (from - lookback, te + lookback),
            _ => (from, te),
        };
        let mut out = Vec::new();
        for s in series.iter() {
            let a = first_after(&s.samples, lo);
            let b = first_after(&s.samples, hi);
            let ha = s.histograms.partition_point(|h| h.t <= lo);
            let hb = s.histograms.partition_point(|h| h.t <= hi);
            let samples = if vs.anchored || vs.smoothed {
                extended::extend_floats(&s.samples[a..b], from, te, vs.smoothed)
            } else {
                s.samples[a..b].to_vec()
            };
            if !samples.is_empty() || hb > ha {
                out.push(RangeSeries {
                    labels: s.labels.clone(),
                    samples,
                    histograms: s.histograms[ha..hb].to_vec(),
                });
            }
        }
        Ok(out)
    }
}

/// Why `smoothed` gave no value at `t`, when Prometheus says so: floats and histograms in the
/// window, or neighbours of both bucket kinds.
fn smoothed_refusal(
    labels: &Labels,
    f: &[Sample],
    h: &[HistogramSample],
    t: i64,
) -> Option<crate::annotations::Annotation> {
    let metric = labels.get(medic_model::METRIC_NAME).unwrap_or("");
    if !f.is_empty() && !h.is_empty() {
        return Some(crate::annotations::mixed_floats_histograms(metric));
    }
    let i = h.partition_point(|s| s.t < t);
    let (prev, next) = (h.get(i.checked_sub(1)?)?, h.get(i)?);
    (next.t != t && prev.h.uses_custom_buckets() != next.h.uses_custom_buckets())
        .then(|| crate::annotations::mixed_exponential_custom(metric))
}
