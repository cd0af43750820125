//! A cache of range-query results for dashboards, as VictoriaMetrics's rollup result cache and
//! the Thanos/Mimir query frontend keep one: a dashboard asks for the same query over a window
//! that moves by one refresh interval, so all but the newest steps were computed last time.
//!
//! What makes it correct:
//!
//! - A step's value depends only on samples at or before it, when the query has no `@` modifier
//!   and no negative offset ([`cacheable`]); other queries are never cached.
//! - Only steps older than `hold_back` (default 5m, VictoriaMetrics's
//!   `-search.cacheTimestampOffset`) are kept: newer ones may still receive samples.
//! - Every commit to the store reports its oldest sample ([`ChangeObserver::changed_from`]); each
//!   entry drops the steps at or after it, and a query computing while the change lands keeps
//!   none of them either. Retention reports `i64::MIN`, which empties the cache.
//! - Entries are keyed by the query's canonical text, the step, the grid's phase
//!   (`start mod step`) and the lookback delta, so a cached step is the step asked for.
//!
//! The pieces a request needs ([`plan`]) and how they are stitched ([`stitch`]) are pure
//! functions; [`ResultCache::range`] runs the engine for the missing pieces.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use medic_model::{ChangeObserver, Labels, Queryable};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use promql_parser::parser::{Expr, Offset};

use crate::{Annotations, Engine, Error, RangeSeries};

/// How a request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Every step came from the cache.
    Hit,
    /// Some steps came from the cache, the rest were computed.
    Partial,
    /// Nothing was cached for it.
    Miss,
    /// Not cacheable (`@`, a negative offset) or the caller asked not to use the cache.
    Bypass,
}

impl CacheOutcome {
    fn label(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Partial => "partial",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Bypass => "bypass",
        }
    }
}

/// Whether every step of `expr` depends only on samples at or before that step: no `@`
/// modifier (its value depends on the query's range, or on a fixed time) and no negative offset.
pub fn cacheable(expr: &Expr) -> bool {
    // `range()` differs between the whole query and the tail the cache computes.
    if crate::durations::has_deferred(expr) {
        return false;
    }
    let mut todo = vec![expr];
    while let Some(e) = todo.pop() {
        match e {
            Expr::Aggregate(ag) => {
                todo.push(&ag.expr);
                todo.extend(ag.param.as_deref());
            }
            Expr::Unary(u) => todo.push(&u.expr),
            Expr::Binary(b) => todo.extend([b.lhs.as_ref(), b.rhs.as_ref()]),
            Expr::Paren(p) => todo.push(&p.expr),
            Expr::Subquery(sq) => {
                if sq.at.is_some() || matches!(sq.offset, Some(Offset::Neg(_))) {
                    return false;
                }
                todo.push(&sq.expr);
            }
            Expr::Call(c) => todo.extend(c.args.args.iter().map(|a| a.as_ref())),
            Expr::VectorSelector(vs)
            | Expr::MatrixSelector(promql_parser::parser::MatrixSelector { vs, .. }) => {
                // A negative offset and `smoothed` read samples after the step: a later write
                // can change a past result.
                if vs.at.is_some() || matches!(vs.offset, Some(Offset::Neg(_))) || vs.smoothed {
                    return false;
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
            Expr::Extension(_) => return false,
        }
    }
    true
}

/// The newest step of the grid `start + k·step` strictly before `t` (`t > start`).
fn last_step_before(start: i64, step: i64, t: i64) -> i64 {
    start + (t - 1 - start).div_euclid(step) * step
}

/// What identifies a cached result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    query: String,
    step: i64,
    phase: i64,
    lookback: i64,
}

/// The result of one query over the steps `first..=last` (aligned to the key's grid).
#[derive(Debug, Clone)]
struct Entry {
    first: i64,
    last: i64,
    series: Vec<RangeSeries>,
    bytes: usize,
    used: u64,
}

/// The steps a request takes from the cache and the ones it must compute, each inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Steps served from the cache.
    pub cached: Option<(i64, i64)>,
    /// Steps to compute, oldest first (before and after the cached ones).
    pub compute: Vec<(i64, i64)>,
}

/// Which of `start..=end` (a grid of `step`) the cached steps `first..=last` of the same grid
/// serve, and which remain. Without overlap everything is computed.
pub fn plan(cached: Option<(i64, i64)>, start: i64, end: i64, step: i64) -> Plan {
    let Some((first, last)) = cached else {
        return Plan {
            cached: None,
            compute: vec![(start, end)],
        };
    };
    let (from, to) = (start.max(first), end.min(last));
    if from > to {
        return Plan {
            cached: None,
            compute: vec![(start, end)],
        };
    }
    let mut compute = Vec::new();
    if start < from {
        compute.push((start, from - step));
    }
    if to < end {
        compute.push((to + step, end));
    }
    Plan {
        cached: Some((from, to)),
        compute,
    }
}

/// The points of `series` at `from..=to`, dropping series left empty.
pub fn clip(series: &[RangeSeries], from: i64, to: i64) -> Vec<RangeSeries> {
    series
        .iter()
        .filter_map(|s| {
            let lo = s.samples.partition_point(|x| x.t < from);
            let hi = s.samples.partition_point(|x| x.t <= to);
            let hlo = s.histograms.partition_point(|x| x.t < from);
            let hhi = s.histograms.partition_point(|x| x.t <= to);
            (lo < hi || hlo < hhi).then(|| RangeSeries {
                labels: s.labels.clone(),
                samples: s.samples[lo..hi].to_vec(),
                histograms: s.histograms[hlo..hhi].to_vec(),
            })
        })
        .collect()
}

/// Results over consecutive step ranges (oldest first) joined into one, series sorted by labels
/// as the engine returns them.
pub fn stitch(pieces: Vec<Vec<RangeSeries>>) -> Vec<RangeSeries> {
    if pieces.len() == 1 {
        return pieces.into_iter().next().unwrap_or_default();
    }
    let mut by_labels: HashMap<Labels, RangeSeries> = HashMap::new();
    for piece in pieces {
        for s in piece {
            match by_labels.get_mut(&s.labels) {
                Some(acc) => {
                    acc.samples.extend(s.samples);
                    acc.histograms.extend(s.histograms);
                }
                None => {
                    by_labels.insert(s.labels.clone(), s);
                }
            }
        }
    }
    let mut out: Vec<RangeSeries> = by_labels.into_values().collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// Rough heap size of a result: labels, points, and the vectors holding them.
/// What an entry costs: its result, its key's query text, and the bookkeeping around them —
/// so that many distinct queries with empty results still count against the budget.
fn entry_bytes(key: &Key, series: &[RangeSeries]) -> usize {
    size_of(series) + key.query.len() + 256
}

fn size_of(series: &[RangeSeries]) -> usize {
    series
        .iter()
        .map(|s| {
            let labels: usize = s
                .labels
                .iter()
                .map(|l| l.name.len() + l.value.len() + 48)
                .sum();
            let histograms: usize = s
                .histograms
                .iter()
                .map(|h| 160 + 16 * (h.h.positive.len() + h.h.negative.len()))
                .sum();
            labels + s.samples.len() * std::mem::size_of::<medic_model::Sample>() + histograms + 64
        })
        .sum()
}

/// The cache's own metrics.
#[derive(Debug, Clone, Default)]
pub struct CacheMetrics {
    requests: Family<Vec<(&'static str, &'static str)>, Counter>,
    steps: Family<Vec<(&'static str, &'static str)>, Counter>,
    invalidations: Counter,
    evictions: Counter,
    bytes: Gauge,
    entries: Gauge,
}

impl CacheMetrics {
    /// Registers `medic_query_cache_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "medic_query_cache_requests",
            "Range queries by how the result cache answered them (hit, partial, miss, bypass)",
            self.requests.clone(),
        );
        registry.register(
            "medic_query_cache_steps",
            "Steps of range queries served from the result cache or computed",
            self.steps.clone(),
        );
        registry.register(
            "medic_query_cache_invalidations",
            "Cached results cut short because older data was written or deleted",
            self.invalidations.clone(),
        );
        registry.register(
            "medic_query_cache_evictions",
            "Cached results dropped to stay within query.result_cache.max_bytes",
            self.evictions.clone(),
        );
        registry.register(
            "medic_query_cache_bytes",
            "Estimated bytes held by the result cache",
            self.bytes.clone(),
        );
        registry.register(
            "medic_query_cache_entries",
            "Results held by the result cache",
            self.entries.clone(),
        );
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    bytes: usize,
    tick: u64,
    /// Queries computing now: id → oldest change reported since they started.
    inflight: HashMap<u64, i64>,
    next_id: u64,
}

/// The range-query result cache. Register it with the store
/// (`Db::observe_changes`) so that writes to the past reach it.
#[derive(Debug)]
pub struct ResultCache {
    max_bytes: usize,
    hold_back_ms: i64,
    /// The newest step any entry holds or any computing query may keep: changes newer than it
    /// concern nothing here, and are ignored without taking the lock.
    watermark: AtomicI64,
    inner: Mutex<Inner>,
    metrics: CacheMetrics,
}

impl ResultCache {
    /// A cache holding at most about `max_bytes`, keeping only steps older than `hold_back`.
    pub fn new(max_bytes: usize, hold_back: Duration) -> Self {
        Self {
            max_bytes,
            hold_back_ms: hold_back.as_millis() as i64,
            watermark: AtomicI64::new(i64::MIN),
            inner: Mutex::new(Inner::default()),
            metrics: CacheMetrics::default(),
        }
    }

    /// The cache's metrics, to register.
    pub fn metrics(&self) -> &CacheMetrics {
        &self.metrics
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Evaluates `expr` at every `step` from `start` to `end` like [`Engine::range_expr`],
    /// serving what it can from the cache and keeping what may be reused. `now` (ms) decides
    /// which steps are old enough to keep.
    #[allow(clippy::too_many_arguments)]
    pub fn range(
        &self,
        engine: &Engine,
        store: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        now: i64,
    ) -> Result<(Vec<RangeSeries>, CacheOutcome), Error> {
        self.range_annotated(engine, store, expr, start, end, step, now)
            .map(|(r, _, o)| (r, o))
    }

    /// [`ResultCache::range`] with the warnings and infos of the evaluation. Only results
    /// computed without any are kept, so the steps served from the cache never hide one: the
    /// annotations returned are those of the steps computed now, which are all there are.
    #[allow(clippy::too_many_arguments)]
    pub fn range_annotated(
        &self,
        engine: &Engine,
        store: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        now: i64,
    ) -> Result<(Vec<RangeSeries>, Annotations, CacheOutcome), Error> {
        if step <= 0 || end < start || !cacheable(expr) {
            self.count(CacheOutcome::Bypass, 0, 0);
            return engine
                .range_expr_annotated(store, expr, start, end, step)
                .map(|(r, a)| (r, a, CacheOutcome::Bypass));
        }
        let key = Key {
            query: expr.to_string(),
            step,
            phase: start.rem_euclid(step),
            lookback: engine.options().lookback_ms,
        };
        // The newest step that may be kept: on the grid, `hold_back` before now.
        let keep_to = last_step_before(start, step, now - self.hold_back_ms + 1);
        let (plan, cached, id) = {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            let span = inner.entries.get_mut(&key).map(|e| {
                e.used = tick;
                (e.first, e.last)
            });
            let plan = plan(span, start, end, step);
            let cached = match (plan.cached, inner.entries.get(&key)) {
                (Some((from, to)), Some(e)) => clip(&e.series, from, to),
                _ => Vec::new(),
            };
            let id = inner.next_id;
            inner.next_id += 1;
            inner.inflight.insert(id, i64::MAX);
            self.watermark.fetch_max(keep_to, Ordering::SeqCst);
            (plan, cached, id)
        };
        let computed: Result<Vec<_>, Error> = plan
            .compute
            .iter()
            .map(|&(s, e)| {
                engine
                    .range_expr_annotated(store, expr, s, e, step)
                    .map(|r| (s, r))
            })
            .collect();
        let floor = self.lock().inflight.remove(&id).unwrap_or(i64::MIN);
        let mut notes = Annotations::default();
        let computed: Vec<(i64, Vec<RangeSeries>)> = computed?
            .into_iter()
            .map(|(s, (r, a))| {
                notes.merge(a);
                (s, r)
            })
            .collect();
        let steps = |(s, e): (i64, i64)| ((e - s) / step + 1) as u64;
        let cached_steps = plan.cached.map_or(0, steps);
        let computed_steps: u64 = plan.compute.iter().map(|&r| steps(r)).sum();
        let outcome = match (cached_steps, computed_steps) {
            (0, _) => CacheOutcome::Miss,
            (_, 0) => CacheOutcome::Hit,
            _ => CacheOutcome::Partial,
        };
        self.count(outcome, cached_steps, computed_steps);
        // Pieces oldest first: the one before the cached steps, the cached, the one after.
        let mut pieces = Vec::with_capacity(3);
        let mut computed = computed.into_iter().peekable();
        while let Some((s, r)) = computed.next_if(|(s, _)| plan.cached.is_none_or(|(f, _)| *s < f))
        {
            debug_assert!(s >= start);
            pieces.push(r);
        }
        if plan.cached.is_some() {
            pieces.push(cached);
        }
        pieces.extend(computed.map(|(_, r)| r));
        let result = stitch(pieces);
        // Keep the steps older than both `keep_to` and any change reported while computing.
        let last = match floor {
            i64::MAX => keep_to,
            f if f <= start => start - step,
            f => keep_to.min(last_step_before(start, step, f)),
        };
        if !plan.compute.is_empty() && last >= start && notes.is_empty() {
            self.keep(key, start, last.min(end), &result);
        }
        Ok((result, notes, outcome))
    }

    /// Stores `result`'s steps `first..=last` under `key`, joined with the older steps the
    /// entry already holds when they meet, no longer than the longer of the two spans.
    fn keep(&self, key: Key, first: i64, last: i64, result: &[RangeSeries]) {
        let mut inner = self.lock();
        let step = key.step;
        let mut first = first;
        let mut series = clip(result, first, last);
        if let Some(old) = inner.entries.get(&key) {
            let span = (old.last - old.first).max(last - first);
            let from = old.first.max(last - span);
            if old.first < first && old.last + step >= first && from < first {
                let older = clip(&old.series, from, first - step);
                series = stitch(vec![older, series]);
                first = from;
            }
        }
        let bytes = entry_bytes(&key, &series);
        if let Some(old) = inner.entries.remove(&key) {
            inner.bytes -= old.bytes;
        }
        if bytes <= self.max_bytes / 4 {
            inner.tick += 1;
            let used = inner.tick;
            inner.bytes += bytes;
            inner.entries.insert(
                key,
                Entry {
                    first,
                    last,
                    series,
                    bytes,
                    used,
                },
            );
        }
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.bytes;
                self.metrics.evictions.inc();
            }
        }
        self.publish(&inner);
    }

    fn count(&self, outcome: CacheOutcome, cached: u64, computed: u64) {
        self.metrics
            .requests
            .get_or_create(&vec![("result", outcome.label())])
            .inc();
        self.metrics
            .steps
            .get_or_create(&vec![("source", "cache")])
            .inc_by(cached);
        self.metrics
            .steps
            .get_or_create(&vec![("source", "computed")])
            .inc_by(computed);
    }

    fn publish(&self, inner: &Inner) {
        self.metrics.bytes.set(inner.bytes as i64);
        self.metrics.entries.set(inner.entries.len() as i64);
    }

    /// Counts a request that was told not to use the cache (`nocache=1`).
    pub fn note_bypass(&self) {
        self.count(CacheOutcome::Bypass, 0, 0);
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.changed_from(i64::MIN);
    }
}

impl ChangeObserver for ResultCache {
    fn changed_from(&self, from: i64) {
        if from > self.watermark.load(Ordering::SeqCst) {
            return;
        }
        let mut inner = self.lock();
        for floor in inner.inflight.values_mut() {
            *floor = (*floor).min(from);
        }
        let mut freed = 0;
        inner.entries.retain(|key, e| {
            if e.last < from {
                return true;
            }
            self.metrics.invalidations.inc();
            if from <= e.first {
                freed += e.bytes;
                return false;
            }
            let last = last_step_before(e.first, key.step, from);
            if last < e.first {
                freed += e.bytes;
                return false;
            }
            e.series = clip(&e.series, e.first, last);
            e.last = last;
            let bytes = entry_bytes(key, &e.series);
            freed += e.bytes - bytes;
            e.bytes = bytes;
            true
        });
        inner.bytes -= freed;
        self.publish(&inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_takes_the_overlap_and_computes_the_rest() {
        // (cached span, request start, end) → (cached, computed); step 10.
        type Span = Option<(i64, i64)>;
        #[allow(clippy::type_complexity)]
        let cases: &[(Span, i64, i64, Span, &[(i64, i64)])] = &[
            (None, 0, 100, None, &[(0, 100)]),
            (Some((0, 80)), 10, 110, Some((10, 80)), &[(90, 110)]),
            (Some((0, 200)), 10, 110, Some((10, 110)), &[]),
            (Some((50, 200)), 10, 110, Some((50, 110)), &[(10, 40)]),
            (
                Some((50, 80)),
                10,
                110,
                Some((50, 80)),
                &[(10, 40), (90, 110)],
            ),
            (Some((120, 200)), 10, 110, None, &[(10, 110)]),
            (Some((0, 0)), 10, 110, None, &[(10, 110)]),
            (Some((110, 200)), 10, 110, Some((110, 110)), &[(10, 100)]),
        ];
        for (i, (span, start, end, cached, compute)) in cases.iter().enumerate() {
            let p = plan(*span, *start, *end, 10);
            assert_eq!(p.cached, *cached, "case {i}");
            assert_eq!(p.compute, compute.to_vec(), "case {i}");
        }
    }

    #[test]
    fn the_last_step_before_a_time_stays_on_the_grid() {
        assert_eq!(last_step_before(5, 10, 26), 25);
        assert_eq!(last_step_before(5, 10, 25), 15);
        assert_eq!(last_step_before(5, 10, 6), 5);
        assert_eq!(last_step_before(5, 10, 5), -5);
    }
}
