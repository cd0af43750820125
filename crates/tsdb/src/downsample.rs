//! Downsampling: raw samples to per-interval aggregates, as Thanos does, so that `rate`,
//! `increase`, `*_over_time` and `histogram_quantile` stay correct on months of data.
//!
//! A downsampled block (`BlockMeta::resolution_ms` > 0) holds, for each raw series, five series
//! with the extra label `__aggr__`:
//!
//! - `count`, `sum`, `min`, `max`: of the samples in each interval of `resolution` (intervals
//!   aligned to the epoch), stamped with the interval's last raw timestamp;
//! - `counter`: the first raw sample, each sample right before a counter reset, and the last
//!   sample of each interval. The increase between any two of its points is the raw series'
//!   exact increase, resets included, so `rate` and `increase` over it differ from raw ones only
//!   by where the window's ends fall (extrapolation).
//!
//! Staleness markers are left out of every aggregate. Which aggregate a query reads is decided
//! by the function around the selector ([`Aggr::for_function`]).

use medic_model::{is_stale_nan, Labels, Sample};

/// The label that names the aggregate of a downsampled series.
pub const AGGR_LABEL: &str = "__aggr__";

/// An aggregate stored in a downsampled block, or one computed from them (`Avg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggr {
    /// Samples per interval.
    Count,
    /// Sum per interval.
    Sum,
    /// Minimum per interval.
    Min,
    /// Maximum per interval.
    Max,
    /// The counter's points (first, before each reset, last per interval).
    Counter,
    /// `sum / count` per interval: what a plain selector or other functions read.
    Avg,
}

impl Aggr {
    /// The five stored aggregates, in the order [`aggregate`] returns them.
    pub const STORED: [Aggr; 5] = [Aggr::Count, Aggr::Sum, Aggr::Min, Aggr::Max, Aggr::Counter];

    /// The value of `__aggr__`.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggr::Count => "count",
            Aggr::Sum => "sum",
            Aggr::Min => "min",
            Aggr::Max => "max",
            Aggr::Counter => "counter",
            Aggr::Avg => "avg",
        }
    }

    /// The aggregate a PromQL function reads from downsampled data (Thanos's choice):
    /// counters for the rate family, the matching aggregate for `*_over_time`, the average for
    /// everything else.
    pub fn for_function(func: Option<&str>) -> Aggr {
        match func.unwrap_or("") {
            "rate" | "increase" | "irate" | "resets" | "xrate" | "xincrease" => Aggr::Counter,
            "min_over_time" => Aggr::Min,
            "max_over_time" => Aggr::Max,
            "sum_over_time" => Aggr::Sum,
            "count_over_time" => Aggr::Count,
            _ => Aggr::Avg,
        }
    }
}

/// The five aggregates of one series' samples at `resolution` ms, in [`Aggr::STORED`] order.
pub fn aggregate(samples: &[Sample], resolution: i64) -> [Vec<Sample>; 5] {
    let mut out: [Vec<Sample>; 5] = Default::default();
    let res = resolution.max(1);
    let mut window: Option<i64> = None;
    let (mut count, mut sum, mut min, mut max, mut last) = (0u64, 0.0, f64::NAN, f64::NAN, None);
    let mut prev: Option<Sample> = None;
    let mut counter_last: Option<i64> = None;
    let flush = |out: &mut [Vec<Sample>; 5], t: i64, count: u64, sum: f64, min: f64, max: f64| {
        out[0].push(Sample { t, v: count as f64 });
        out[1].push(Sample { t, v: sum });
        out[2].push(Sample { t, v: min });
        out[3].push(Sample { t, v: max });
    };
    for &s in samples.iter().filter(|s| !is_stale_nan(s.v)) {
        let w = s.t.div_euclid(res);
        if window.is_some_and(|cur| cur != w) {
            let end: Sample = last.expect("a window with samples");
            flush(&mut out, end.t, count, sum, min, max);
            if counter_last != Some(end.t) {
                out[4].push(end);
                counter_last = Some(end.t);
            }
            (count, sum, min, max) = (0, 0.0, f64::NAN, f64::NAN);
        }
        window = Some(w);
        match prev {
            None => {
                out[4].push(s);
                counter_last = Some(s.t);
            }
            Some(p) if s.v < p.v && counter_last != Some(p.t) => {
                out[4].push(p);
                counter_last = Some(p.t);
            }
            _ => {}
        }
        count += 1;
        sum += s.v;
        min = if min.is_nan() { s.v } else { min.min(s.v) };
        max = if max.is_nan() { s.v } else { max.max(s.v) };
        last = Some(s);
        prev = Some(s);
    }
    if let Some(end) = last.filter(|_| count > 0) {
        flush(&mut out, end.t, count, sum, min, max);
        if counter_last != Some(end.t) {
            out[4].push(end);
        }
    }
    out
}

/// The series of a downsampled block made from one raw series: its labels with `__aggr__`
/// added, sorted, with their samples.
pub fn downsampled_series(
    labels: &Labels,
    samples: &[Sample],
    resolution: i64,
) -> Vec<(Labels, Vec<Sample>)> {
    let aggs = aggregate(samples, resolution);
    let mut out: Vec<(Labels, Vec<Sample>)> = Aggr::STORED
        .iter()
        .zip(aggs)
        .filter(|(_, s)| !s.is_empty())
        .map(|(a, s)| (with_aggr(labels, *a), s))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `labels` with `__aggr__="<a>"`.
pub fn with_aggr(labels: &Labels, a: Aggr) -> Labels {
    let mut pairs: Vec<(String, String)> = labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    pairs.push((AGGR_LABEL.to_string(), a.as_str().to_string()));
    Labels::from_pairs(pairs)
}

/// `labels` without `__aggr__`.
pub fn without_aggr(labels: &Labels) -> Labels {
    Labels::from_pairs(
        labels
            .iter()
            .filter(|l| &*l.name != AGGR_LABEL)
            .map(|l| (l.name.to_string(), l.value.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn intervals_hold_count_sum_min_max_at_their_last_timestamp() {
        let raw = [s(0, 1.0), s(30, 5.0), s(59, 3.0), s(60, 2.0), s(90, 4.0)];
        let [count, sum, min, max, _] = aggregate(&raw, 60);
        assert_eq!(count, [s(59, 3.0), s(90, 2.0)]);
        assert_eq!(sum, [s(59, 9.0), s(90, 6.0)]);
        assert_eq!(min, [s(59, 1.0), s(90, 2.0)]);
        assert_eq!(max, [s(59, 5.0), s(90, 4.0)]);
    }

    #[test]
    fn the_counter_keeps_its_first_point_every_reset_and_each_interval_end() {
        // 10 → 25 (reset) 3 → 8 | 9 → 12 (reset) 1 | 4
        let raw = [
            s(0, 10.0),
            s(10, 25.0),
            s(20, 3.0),
            s(30, 8.0),
            s(100, 9.0),
            s(110, 12.0),
            s(120, 1.0),
            s(200, 4.0),
        ];
        let counter = &aggregate(&raw, 100)[4];
        assert_eq!(
            counter,
            &[
                s(0, 10.0),
                s(10, 25.0),
                s(30, 8.0),
                s(110, 12.0),
                s(120, 1.0),
                s(200, 4.0)
            ]
        );
        // The increase the rate family computes over the points equals the raw one:
        // (25-10) + 8 + (9-8)+(12-9) + 1 + (4-1) = 15+8+4+1+3 = 31.
        let increase = |pts: &[Sample]| -> f64 {
            pts.windows(2)
                .map(|w| {
                    if w[1].v < w[0].v {
                        w[1].v
                    } else {
                        w[1].v - w[0].v
                    }
                })
                .sum()
        };
        assert_eq!(increase(&raw), 31.0);
        assert_eq!(increase(counter), 31.0);
    }

    #[test]
    fn staleness_markers_are_left_out() {
        let stale = medic_model::STALE_NAN;
        let raw = [s(0, 1.0), s(10, stale), s(20, 2.0)];
        let [count, sum, ..] = aggregate(&raw, 100);
        assert_eq!(count, [s(20, 2.0)]);
        assert_eq!(sum, [s(20, 3.0)]);
    }
}
