//! `info(v, [selector])` (Prometheus 3's experimental join with info metrics): each series of
//! `v` gains the data labels of the info series that share its identifying labels (`instance`,
//! `job`) at that time — `target_info` unless the selector names other metrics by `__name__`
//! (`__name__` exclusions alone choose among the `*_info` metrics).
//! The selector's other matchers choose which data labels to add and which info series count.

use std::collections::BTreeMap;

use medic_model::{Labels, Matcher, METRIC_NAME};
use promql_parser::parser::Expr;

use super::strip_parens;
use crate::engine::Evaluator;
use crate::value::Value;
use crate::Error;

/// The labels that tie a series to its info series.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// One info series at the evaluation time: its labels and the time of its newest sample.
struct InfoSeries {
    labels: Labels,
    t: i64,
}

impl Evaluator<'_> {
    pub(crate) fn call_info(&mut self, args: &[&Expr], t: i64) -> Result<Value, Error> {
        let base = self.eval_vector(args[0], t)?;
        let matchers = match args.get(1).map(|a| strip_parens(a)) {
            None => Vec::new(),
            Some(Expr::VectorSelector(vs)) => crate::selector::matchers(vs)?,
            Some(_) => {
                return Err(Error::Eval(
                    "info(): the second argument must be a series selector".into(),
                ))
            }
        };
        let (mut names, data): (Vec<Matcher>, Vec<Matcher>) =
            matchers.into_iter().partition(|m| m.name == METRIC_NAME);
        let positive_name = |m: &Matcher| {
            matches!(
                m.kind,
                medic_model::MatchType::Equal | medic_model::MatchType::Regexp
            )
        };
        if names.is_empty() {
            names.push(Matcher::equal(METRIC_NAME, "target_info"));
        } else if !names.iter().any(positive_name) {
            // Only exclusions: they choose among the info metrics (`*_info`), not among all.
            names.push(
                Matcher::new(medic_model::MatchType::Regexp, METRIC_NAME, ".+_info")
                    .map_err(|e| Error::Eval(e.to_string()))?,
            );
        }
        let mut wanted = names.clone();
        wanted.extend(data.iter().cloned());
        let infos: Vec<InfoSeries> = self
            .latest_at(&wanted, t)?
            .into_iter()
            .map(|(labels, t)| InfoSeries { labels, t })
            .collect();
        let accepts_empty = data.iter().all(|m| m.matches(""));
        let positive = names.iter().any(positive_name);
        let mut out = Vec::with_capacity(base.len());
        for mut s in base {
            let name = s.labels.metric_name().unwrap_or("");
            // Info series themselves (named by the positive `__name__` matchers and passing
            // the negative ones) are left as they are.
            if positive && names.iter().all(|m| m.matches(name)) {
                out.push(s);
                continue;
            }
            match enrich(&s.labels, &infos, &data)? {
                Some(labels) => {
                    s.labels = labels;
                    out.push(s);
                }
                None if accepts_empty => out.push(s),
                None => {}
            }
        }
        Ok(Value::Vector(out))
    }
}

/// The series' labels with the data labels of its info series; `None` if none matches.
fn enrich(
    labels: &Labels,
    infos: &[InfoSeries],
    data: &[Matcher],
) -> Result<Option<Labels>, Error> {
    let ids: Vec<(&str, &str)> = IDENTIFYING
        .iter()
        .filter_map(|n| labels.get(n).map(|v| (*n, v)))
        .collect();
    if ids.is_empty() {
        return Ok(None);
    }
    // Per info metric, the series with the newest sample (overlapping series of one metric
    // are a change over time, not a conflict).
    let mut by_metric: BTreeMap<&str, &InfoSeries> = BTreeMap::new();
    for info in infos {
        if !ids.iter().all(|(n, v)| info.labels.get(n) == Some(*v)) {
            continue;
        }
        let metric = info.labels.metric_name().unwrap_or("");
        match by_metric.get(metric) {
            Some(prev) if prev.t >= info.t => {}
            _ => {
                by_metric.insert(metric, info);
            }
        }
    }
    if by_metric.is_empty() {
        return Ok(None);
    }
    let mut added: BTreeMap<&str, &str> = BTreeMap::new();
    for info in by_metric.values() {
        for l in info.labels.iter() {
            let n: &str = &l.name;
            if n == METRIC_NAME || IDENTIFYING.contains(&n) || labels.get(n).is_some() {
                continue;
            }
            if !data.is_empty() && !data.iter().any(|m| m.name == n) {
                continue;
            }
            match added.insert(n, &l.value) {
                Some(other) if other != &*l.value => {
                    return Err(Error::Eval(format!(
                    "info(): conflicting label {n}: {other:?} and {:?} from different info metrics",
                    &*l.value
                )))
                }
                _ => {}
            }
        }
    }
    let mut b = labels.to_builder();
    for (n, v) in added {
        b.set(n, v);
    }
    Ok(Some(b.build()))
}

#[cfg(test)]
mod tests {
    use crate::Engine;

    #[test]
    fn only_the_data_label_selector_of_info_may_match_everything() {
        assert!(Engine::parse(r#"info(up, {data=~".*"})"#).is_ok());
        for q in [
            r#"{job=~".*"}"#,
            r#"rate({job=""}[5m])"#,
            r#"sum({x=~".*"})"#,
            r#"info({data=~".*"}, {data=~".*"})"#,
            r#"up + on() group_left info(up, {a=~".*"}) * {b=""}"#,
        ] {
            let e = Engine::parse(q).expect_err(q).to_string();
            assert!(e.contains("at least one non-empty matcher"), "{q}: {e}");
        }
    }
}
