//! Log queries: the selected streams through the pipeline, regrouped by the labels each entry
//! ends with, limited to the first `limit` entries in the query's direction.

use std::collections::BTreeMap;

use super::ast::LogExpr;
use super::pipeline::{LabelMap, Pipeline, ERROR_DETAILS};
use super::{Direction, EvalError, LogSource, Selection};
use crate::entry::Stream;

/// One stream of a log query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultStream {
    pub labels: LabelMap,
    /// `(ts_ns, line)`, in the query's direction.
    pub entries: Vec<(i64, String)>,
}

/// Runs a log query over `[start, end)` (nanoseconds).
pub fn query_logs(
    src: &dyn LogSource,
    expr: &LogExpr,
    start: i64,
    end: i64,
    limit: usize,
    direction: Direction,
) -> Result<Vec<ResultStream>, EvalError> {
    let streams = src.select(&Selection {
        matchers: &expr.matchers,
        start,
        end,
        needles: expr.required_substrings(),
        lines: true,
    })?;
    Ok(run(&streams, expr, limit, direction))
}

/// The pipeline over already-selected streams (also used by tail and the rules).
pub fn run(
    streams: &[Stream],
    expr: &LogExpr,
    limit: usize,
    direction: Direction,
) -> Vec<ResultStream> {
    let pipeline = Pipeline::new(&expr.stages);
    // Every stream contributes at most `limit` entries from its end of the range.
    let mut picked: Vec<(i64, usize, String)> = Vec::new();
    let mut keys: BTreeMap<LabelMap, usize> = BTreeMap::new();
    let mut key_list: Vec<LabelMap> = Vec::new();
    for s in streams {
        let stream_labels: LabelMap = s
            .labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        let mut taken = 0;
        let mut visit = |e: &crate::entry::Entry| -> bool {
            if pipeline.filters_only && e.metadata.is_empty() {
                if pipeline.keep_line(&e.line) {
                    let k = key_of(&mut keys, &mut key_list, &stream_labels);
                    picked.push((e.ts, k, e.line.clone()));
                    taken += 1;
                }
            } else {
                let mut labels = stream_labels.clone();
                for (k, v) in &e.metadata {
                    labels.insert(k.clone(), v.clone());
                }
                if let Some((line, mut labels)) =
                    pipeline.run(e.ts, &e.line, labels, &stream_labels)
                {
                    labels.remove(ERROR_DETAILS);
                    let k = key_of(&mut keys, &mut key_list, &labels);
                    picked.push((e.ts, k, line));
                    taken += 1;
                }
            }
            taken < limit
        };
        match direction {
            Direction::Forward => {
                for e in &s.entries {
                    if !visit(e) {
                        break;
                    }
                }
            }
            Direction::Backward => {
                for e in s.entries.iter().rev() {
                    if !visit(e) {
                        break;
                    }
                }
            }
        }
    }
    // Equal timestamps are ordered by their stream's labels, so answers do not depend on the
    // order the store returned streams in.
    match direction {
        Direction::Forward => picked.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| key_list[a.1].cmp(&key_list[b.1]))
        }),
        Direction::Backward => picked.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| key_list[a.1].cmp(&key_list[b.1]))
        }),
    }
    picked.truncate(limit);
    let mut out: Vec<Option<ResultStream>> = vec![None; key_list.len()];
    for (ts, k, line) in picked {
        out[k]
            .get_or_insert_with(|| ResultStream {
                labels: key_list[k].clone(),
                entries: Vec::new(),
            })
            .entries
            .push((ts, line));
    }
    let mut out: Vec<ResultStream> = out.into_iter().flatten().collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn key_of(
    keys: &mut BTreeMap<LabelMap, usize>,
    list: &mut Vec<LabelMap>,
    labels: &LabelMap,
) -> usize {
    if let Some(k) = keys.get(labels) {
        return *k;
    }
    list.push(labels.clone());
    keys.insert(labels.clone(), list.len() - 1);
    list.len() - 1
}

/// Formats a label set as Loki does: `{a="1", b="2"}`.
pub fn format_labels(labels: &LabelMap) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
        .collect();
    format!("{{{}}}", parts.join(", "))
}
