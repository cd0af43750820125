//! The range-query result cache against no cache: a dashboard refreshing every 15 s over the
//! same irregular data as `whole_range.rs`, with samples written into the past between and
//! during refreshes, gets the same series, timestamps and values, bit for bit, as evaluating
//! each request whole — while most of its steps come from the cache.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use medic_model::{
    ChangeObserver, Labels, Matcher, MemStorage, Querier, Queryable, Sample, SeriesSet,
    StorageError,
};
use medic_promql::{CacheOutcome, Engine, ResultCache};

use super::whole_range::{same, store};

const MIN: i64 = 60_000;

fn late_series(i: i64) -> Labels {
    Labels::from_pairs([
        ("__name__", "requests_total"),
        ("job", "api"),
        ("instance", if i % 2 == 0 { "i0" } else { "late" }),
    ])
}

/// Refreshes `query` over a `window` ending at `now` for `now` from 25 to 60 minutes every
/// 15 s; every 7th refresh first writes a sample 12 minutes into the past and reports it, as
/// the store does on commit. Returns how many refreshes took steps from the cache.
fn dashboard(s: &MemStorage, cache: &ResultCache, query: &str, window: i64, step: i64) -> usize {
    let engine = Engine::default();
    let expr = Engine::parse(query).unwrap();
    let mut reused = 0;
    for (i, now) in (25 * MIN..=60 * MIN).step_by(15_000).enumerate() {
        if i % 7 == 6 {
            let t = now - 12 * MIN + 1_234;
            s.add(late_series(i as i64), &[Sample::new(t, 1e6 + i as f64)]);
            cache.changed_from(t);
        }
        // Grafana aligns start and end to the step.
        let (start, end) = ((now - window) / step * step, now / step * step);
        let (got, outcome) = cache
            .range(&engine, s, &expr, start, end, step, now)
            .unwrap();
        let want = engine.range_expr(s, &expr, start, end, step).unwrap();
        if let Err(e) = same(&got, &want) {
            panic!("{query} step {step} at now={now} ({outcome:?}): {e}");
        }
        reused += matches!(outcome, CacheOutcome::Hit | CacheOutcome::Partial) as usize;
    }
    reused
}

#[test]
fn a_refreshing_dashboard_gets_what_it_would_without_the_cache() {
    let cache = ResultCache::new(64 << 20, Duration::from_secs(300));
    let queries = [
        "rate(requests_total[5m])",
        "sum by (job) (rate(requests_total[1m]))",
        "topk(3, rate(requests_total[5m]))",
        "rate(errors_total[5m]) / on (job, instance) rate(requests_total[5m])",
        "max_over_time(rate(requests_total[1m])[10m:30s])",
        "avg_over_time(requests_total[2m] offset 3m)",
        "count without (instance) (requests_total > 100)",
        "time() - timestamp(requests_total)",
        "sum(increase(requests_total[10m])) * 2",
    ];
    let mut checked = 0;
    for q in queries {
        for (window, step) in [(20 * MIN, 15_000), (30 * MIN, 60_000), (15 * MIN, 37_000)] {
            let s = store();
            let reused = dashboard(&s, &cache, q, window, step);
            checked += 1;
            // Step-aligned refreshes reuse the cache whenever no late write cut it to nothing.
            assert!(reused > 100, "{q} step {step}: only {reused} of 141 reused");
        }
    }
    assert_eq!(checked, 27);
    assert!(cache.bytes() > 0);
}

#[test]
fn a_query_whose_steps_depend_on_its_range_is_never_cached() {
    let s = store();
    let cache = ResultCache::new(64 << 20, Duration::from_secs(300));
    let engine = Engine::default();
    for q in [
        "rate(requests_total[5m] @ end())",
        "requests_total offset -2m",
        "max_over_time(rate(requests_total[1m])[10m:1m] @ start())",
        "requests_total @ 1200",
        // Interpolates towards the next sample, up to a lookback after the step.
        "requests_total smoothed",
    ] {
        let expr = Engine::parse(q).unwrap();
        assert!(!medic_promql::cache::cacheable(&expr), "{q}");
        for start in [10 * MIN, 11 * MIN] {
            let (got, outcome) = cache
                .range(
                    &engine,
                    &s,
                    &expr,
                    start,
                    start + 20 * MIN,
                    60_000,
                    60 * MIN,
                )
                .unwrap();
            assert_eq!(outcome, CacheOutcome::Bypass, "{q}");
            let want = engine
                .range_expr(&s, &expr, start, start + 20 * MIN, 60_000)
                .unwrap();
            same(&got, &want).unwrap();
        }
    }
    assert_eq!(cache.bytes(), 0);
}

/// A store that, once armed, writes a sample into the past right after a query has read its
/// data, and reports it: the write lands while the result is being computed.
struct WritesWhileReading<'a> {
    store: MemStorage,
    cache: &'a ResultCache,
    armed: AtomicBool,
    at: i64,
}

struct Reading<'a> {
    inner: Box<dyn Querier>,
    outer: &'a WritesWhileReading<'a>,
}

impl Queryable for WritesWhileReading<'_> {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        let inner = self.store.querier(mint, maxt)?;
        // The querier must not borrow `self` beyond the call: read eagerly here.
        let reading = Reading { inner, outer: self };
        let all = reading.snapshot();
        Ok(Box::new(Snapshot(all)))
    }
}

impl Reading<'_> {
    fn snapshot(&self) -> Vec<medic_model::Series> {
        let m = [Matcher::new(medic_model::MatchType::Regexp, "__name__", ".+").unwrap()];
        let series: Vec<_> = self.inner.select(&m).unwrap().map(Result::unwrap).collect();
        if self.outer.armed.swap(false, Ordering::SeqCst) {
            let t = self.outer.at;
            self.outer.store.add(late_series(0), &[Sample::new(t, 5e9)]);
            self.outer.cache.changed_from(t);
        }
        series
    }
}

/// The series read before the write, filtered per select.
struct Snapshot(Vec<medic_model::Series>);

impl Querier for Snapshot {
    fn select(&self, matchers: &[Matcher]) -> Result<Box<dyn SeriesSet>, StorageError> {
        let hits: Vec<_> = self
            .0
            .iter()
            .filter(|s| {
                matchers
                    .iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .cloned()
            .map(Ok)
            .collect();
        Ok(Box::new(hits.into_iter()))
    }

    fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    fn label_values(&self, _: &str, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }
}

#[test]
fn a_write_landing_while_a_result_is_computed_is_not_hidden_by_the_cache() {
    let cache = ResultCache::new(64 << 20, Duration::from_secs(300));
    let racy = WritesWhileReading {
        store: store(),
        cache: &cache,
        armed: AtomicBool::new(false),
        at: 30 * MIN + 500,
    };
    let engine = Engine::default();
    let expr = Engine::parse("sum(rate(requests_total[5m]))").unwrap();
    let now = 50 * MIN;
    let (start, end, step) = (20 * MIN, 50 * MIN, 15_000);
    cache
        .range(&engine, &racy, &expr, start, end, step, now)
        .unwrap();
    // The next refresh computes its tail while the late write lands.
    racy.armed.store(true, Ordering::SeqCst);
    let (_, outcome) = cache
        .range(
            &engine,
            &racy,
            &expr,
            start + step,
            end + step,
            step,
            now + step,
        )
        .unwrap();
    assert_eq!(outcome, CacheOutcome::Partial);
    assert!(!racy.armed.load(Ordering::SeqCst), "the write happened");
    let (got, _) = cache
        .range(
            &engine,
            &racy,
            &expr,
            start + step,
            end + step,
            step,
            now + step,
        )
        .unwrap();
    let want = engine
        .range_expr(&racy.store, &expr, start + step, end + step, step)
        .unwrap();
    same(&got, &want).unwrap();
}

#[test]
fn retention_empties_the_cache_and_the_budget_holds() {
    let s = store();
    let cache = ResultCache::new(256 << 10, Duration::from_secs(300));
    let engine = Engine::default();
    let expr = Engine::parse("rate(requests_total[5m])").unwrap();
    let run = |start: i64| {
        cache
            .range(
                &engine,
                &s,
                &expr,
                start,
                start + 30 * MIN,
                15_000,
                60 * MIN,
            )
            .unwrap()
            .1
    };
    assert_eq!(run(20 * MIN), CacheOutcome::Miss);
    assert_eq!(run(20 * MIN), CacheOutcome::Hit);
    cache.changed_from(i64::MIN);
    assert_eq!(cache.bytes(), 0);
    assert_eq!(run(20 * MIN), CacheOutcome::Miss);
    // Many distinct queries: the oldest are evicted, the total stays within the budget.
    for i in 0..200 {
        let q = format!("rate(requests_total[{}s])", 60 + i);
        let e = Engine::parse(&q).unwrap();
        cache
            .range(&engine, &s, &e, 0, 30 * MIN, 15_000, 60 * MIN)
            .unwrap();
        assert!(cache.bytes() <= 256 << 10, "{} bytes", cache.bytes());
    }
    assert!(cache.bytes() > 0);
    // Results that are empty still cost their query text: thousands of distinct queries
    // cannot grow the cache past its budget either.
    for i in 0..5000 {
        let q = format!("nothing_here_{i}{{job=\"{}\"}}", "x".repeat(200));
        let e = Engine::parse(&q).unwrap();
        cache
            .range(&engine, &s, &e, 0, 30 * MIN, 15_000, 60 * MIN)
            .unwrap();
    }
    assert!(cache.bytes() <= 256 << 10, "{} bytes", cache.bytes());
}
