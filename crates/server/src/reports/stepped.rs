//! Long periods in bounded pieces: a query evaluated every `res` over a month is run as range
//! queries of six hours each, so no evaluation loads more than six hours of samples (a month of
//! 10,000 series at once would pass the engine's sample limit, and hold gigabytes).

use std::collections::BTreeMap;

use medic_model::Labels;

use super::gather::Points;
use crate::http::AppState;

/// The span of one range query.
const CHUNK_MS: i64 = 6 * 3_600_000;
/// More series than this from a configured query is an error: a report draws a handful.
pub const MAX_SERIES: usize = 50;
/// Jobs in the availability table.
pub const MAX_JOBS: usize = 2000;

/// `q` at every multiple of `res` in `[start, end]` (steps aligned to `res`, as a
/// dashboard's and a subquery's are), by series.
pub fn stepped(
    st: &AppState,
    q: &str,
    start: i64,
    end: i64,
    res: i64,
    max_series: usize,
) -> Result<Vec<(Labels, Points)>, String> {
    let res = res.max(1000);
    let mut from = start.div_euclid(res) * res;
    if from < start {
        from += res;
    }
    let mut out: BTreeMap<Labels, Points> = BTreeMap::new();
    while from <= end {
        let to = (from + CHUNK_MS - res).min(end);
        let part = st
            .engine
            .range(st.db.as_ref(), q, from, to, res)
            .map_err(|e| format!("{q}: {e}"))?;
        for s in part {
            out.entry(s.labels)
                .or_default()
                .extend(s.samples.iter().map(|p| (p.t, p.v)));
        }
        if out.len() > max_series {
            return Err(format!(
                "{q}: returns more than {max_series} series; aggregate it (sum by (job) (…)) for a report"
            ));
        }
        from = to + res;
    }
    Ok(out.into_iter().collect())
}

/// Mean, low and high of the finite values (NaN each when there is none).
pub fn stats(points: &Points) -> (f64, f64, f64) {
    let vals: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect();
    if vals.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (
        vals.iter().sum::<f64>() / vals.len() as f64,
        vals.iter().copied().fold(f64::INFINITY, f64::min),
        vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// At most `n` points: the mean of each of `n` equal runs (a chart needs no more).
pub fn downsample(points: &Points, n: usize) -> Points {
    if points.len() <= n || n == 0 {
        return points.clone();
    }
    let per = points.len().div_ceil(n);
    points
        .chunks(per)
        .map(|c| {
            let t = c[c.len() - 1].0;
            let vals: Vec<f64> = c.iter().map(|p| p.1).filter(|v| v.is_finite()).collect();
            let v = if vals.is_empty() {
                f64::NAN
            } else {
                vals.iter().sum::<f64>() / vals.len() as f64
            };
            (t, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_downsampling() {
        let p: Points = (0..10).map(|i| (i * 1000, i as f64)).collect();
        assert_eq!(stats(&p), (4.5, 0.0, 9.0));
        let mut with_gap = p.clone();
        with_gap[3].1 = f64::NAN;
        assert_eq!(stats(&with_gap).2, 9.0);
        assert!(stats(&Vec::new()).0.is_nan());
        let d = downsample(&p, 5);
        assert_eq!(
            d,
            vec![
                (1000, 0.5),
                (3000, 2.5),
                (5000, 4.5),
                (7000, 6.5),
                (9000, 8.5)
            ]
        );
        assert_eq!(downsample(&p, 20), p);
    }
}
