//! An external metrics backend for the rules: a Prometheus-compatible store (VictoriaMetrics,
//! Prometheus, Thanos, Mimir) whose HTTP API answers the rules' PromQL in place of the embedded
//! engine (`query.backend` in medic.yml). The rules' own writes (recording rules, `ALERTS`,
//! anomaly series) still go to medic's store, which sends them on by remote write.

use std::sync::Arc;

use medic_model::{InstantQuery, Sample};
use medic_promql::{RangeSeries, VectorSample};

use crate::rule::EvalError;

/// The backend's queries, as the heal engine asks them too.
#[derive(Clone)]
pub struct QueryBackend(pub Arc<dyn InstantQuery>);

impl std::fmt::Debug for QueryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryBackend")
    }
}

impl QueryBackend {
    /// `query` at `t` (ms) as an instant vector stamped `t`; a scalar is one series without
    /// labels, as the embedded engine gives it.
    pub fn instant(&self, query: &str, t: i64) -> Result<Vec<VectorSample>, EvalError> {
        let series = self
            .0
            .instant(query, t)
            .map_err(|e| EvalError(e.to_string()))?;
        Ok(series
            .into_iter()
            .filter_map(|s| {
                let (_, v) = *s.samples.last()?;
                Some(VectorSample::new(s.labels, t, v))
            })
            .collect())
    }

    /// `query` at every `step` from `start` to `end` (ms, inclusive).
    pub fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let series = self
            .0
            .range(query, start, end, step)
            .map_err(|e| EvalError(e.to_string()))?;
        Ok(series
            .into_iter()
            .map(|s| {
                RangeSeries::floats(
                    s.labels,
                    s.samples
                        .into_iter()
                        .map(|(t, v)| Sample { t, v })
                        .collect(),
                )
            })
            .collect())
    }
}
