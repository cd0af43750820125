//! Vector and matrix selectors: matchers, lookback, staleness, `offset` and `@`.

use medic_model::{is_stale_nan, HistogramSample, MatchType, Matcher, Sample};
use promql_parser::label::MatchOp;
use promql_parser::parser::{MatrixSelector, VectorSelector};

use crate::engine::{ms, Evaluator};
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
        let mut out = Vec::new();
        for s in series.iter() {
            let a = first_after(&s.samples, from);
            let b = first_after(&s.samples, te);
            let ha = s.histograms.partition_point(|h| h.t <= from);
            let hb = s.histograms.partition_point(|h| h.t <= te);
            if b > a || hb > ha {
                out.push(RangeSeries {
                    labels: s.labels.clone(),
                    samples: s.samples[a..b].to_vec(),
                    histograms: s.histograms[ha..hb].to_vec(),
                });
            }
        }
        Ok(out)
    }
}
