//! The query engine: parses a query, finds the time range every selector needs, loads each
//! selector's series once, then evaluates the expression at each step.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use medic_model::{Labels, Queryable, Sample};
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use crate::annotations::{Annotation, Annotations};
use crate::value::{RangeSeries, Value};
use crate::Error;

/// Limits and defaults of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_ms: i64,
    /// Most samples one query may load (Prometheus: 50 million).
    pub max_samples: usize,
    /// Longest a query may run.
    pub timeout: Duration,
    /// Subquery step when the query gives none.
    pub default_subquery_step_ms: i64,
    /// Range queries of the common shapes evaluated over all steps at once
    /// (`range_fast.rs`; default on). Off: every step on its own, for comparison.
    pub whole_range: bool,
    /// Set by the caller to stop the query at its next check (between steps, every few hundred
    /// series, every 1,024 subquery steps): an HTTP handler whose client went away.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The coarsest downsampled resolution a selection may read (ms; Thanos's
    /// `max_source_resolution`). `None`: a fifth of a range query's step, raw for instant
    /// queries. Data only a tier still holds is read from it either way.
    pub max_source_resolution_ms: Option<i64>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_ms: 300_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60_000,
            whole_range: true,
            cancel: None,
            max_source_resolution_ms: None,
        }
    }
}

/// Functions that read downsampled tiers when the step and range allow (the others read raw
/// samples wherever raw samples are kept).
const TIER_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "resets",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "avg_over_time",
];

/// Evaluates PromQL over any [`Queryable`].
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// A range query's result.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeResult {
    /// One series per label set.
    Matrix(Vec<RangeSeries>),
    /// A string expression (only meaningful for instant queries; kept for completeness).
    String(String),
}

impl Engine {
    /// An engine with `opts`.
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Parses a query, refusing one nested deeper than [`MAX_DEPTH`]. Parsing runs on a stack
    /// of its own, large enough for any query that fits in a request, so no query can overflow
    /// the stack (and abort the process) however it is nested.
    pub fn parse(query: &str) -> Result<Expr, Error> {
        stacker::grow(PARSE_STACK, || {
            let expr = promql_parser::parser::parse(query)
                .map_err(|m| Error::Parse(crate::diagnose::describe(query, &m)))?;
            let depth = depth(&expr);
            if depth > MAX_DEPTH {
                // Dropped here, on the large stack: dropping a deep tree recurses too.
                drop(expr);
                return Err(Error::TooDeep { depth });
            }
            Ok(expr)
        })
    }

    /// Evaluates `query` at `t` (ms).
    pub fn instant(&self, store: &dyn Queryable, query: &str, t: i64) -> Result<Value, Error> {
        Ok(self.instant_annotated(store, query, t)?.0)
    }

    /// Evaluates `query` at `t` (ms), with the warnings and infos the evaluation noted.
    pub fn instant_annotated(
        &self,
        store: &dyn Queryable,
        query: &str,
        t: i64,
    ) -> Result<(Value, Annotations), Error> {
        let expr = Self::parse(query)?;
        self.instant_expr_annotated(store, &expr, t)
    }

    /// Evaluates an already parsed expression at `t` (ms): what rule groups do every interval.
    pub fn instant_expr(&self, store: &dyn Queryable, expr: &Expr, t: i64) -> Result<Value, Error> {
        Ok(self.instant_expr_annotated(store, expr, t)?.0)
    }

    /// [`Engine::instant_expr`] with the warnings and infos the evaluation noted.
    pub fn instant_expr_annotated(
        &self,
        store: &dyn Queryable,
        expr: &Expr,
        t: i64,
    ) -> Result<(Value, Annotations), Error> {
        // `step()` and `range()` are 0 in an instant query.
        let resolved = crate::durations::resolve(expr, 0, 0)?;
        let expr = resolved.as_ref().unwrap_or(expr);
        let mut ev = Evaluator::new(store, &self.opts, t, t, 0);
        ev.prepare(expr, t, t);
        if self.opts.whole_range {
            // A subquery's inner steps, computed over its grid at once where the shape allows.
            ev.precompute_subqueries(expr, t)?;
        }
        let v = ev.eval(expr, t)?;
        let v = match v {
            Value::Vector(mut vec) => {
                crate::value::finish_names(&mut vec)?;
                for s in &mut vec {
                    s.t = t;
                }
                Value::Vector(vec)
            }
            other => other,
        };
        Ok((v, ev.annotations))
    }

    /// Evaluates `query` at every `step` from `start` to `end` (ms, inclusive).
    pub fn range(
        &self,
        store: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<RangeSeries>, Error> {
        Ok(self.range_annotated(store, query, start, end, step)?.0)
    }

    /// [`Engine::range`] with the warnings and infos the evaluation noted.
    pub fn range_annotated(
        &self,
        store: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(Vec<RangeSeries>, Annotations), Error> {
        check_range(start, end, step)?;
        let expr = Self::parse(query)?;
        self.range_expr_annotated(store, &expr, start, end, step)
    }

    /// Evaluates an already parsed expression at every `step` from `start` to `end`
    /// (ms, inclusive): what the result cache calls for the steps it does not hold.
    pub fn range_expr(
        &self,
        store: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<RangeSeries>, Error> {
        Ok(self.range_expr_annotated(store, expr, start, end, step)?.0)
    }

    /// [`Engine::range_expr`] with the warnings and infos the evaluation noted.
    pub fn range_expr_annotated(
        &self,
        store: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(Vec<RangeSeries>, Annotations), Error> {
        if step <= 0 || end < start {
            return Err(Error::Eval(format!(
                "invalid range: start {start}, end {end}, step {step}"
            )));
        }
        match expr.value_type() {
            promql_parser::parser::value::ValueType::Vector
            | promql_parser::parser::value::ValueType::Scalar => {}
            other => {
                return Err(Error::Eval(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                match other {
                    promql_parser::parser::value::ValueType::Matrix => "range vector",
                    promql_parser::parser::value::ValueType::String => "string",
                    _ => "unknown",
                }
            )))
            }
        }
        let resolved = crate::durations::resolve(expr, step, end - start)?;
        let expr = resolved.as_ref().unwrap_or(expr);
        let mut ev = Evaluator::new(store, &self.opts, start, end, step);
        ev.prepare(expr, start, end);
        if self.opts.whole_range {
            if let Some(series) = ev.try_range_fast(expr, start, end, step)? {
                return Ok((series, ev.annotations));
            }
        }
        let mut out: HashMap<Labels, RangeSeries> = HashMap::new();
        let mut order: Vec<Labels> = Vec::new();
        let mut t = start;
        while t <= end {
            match ev.eval(expr, t)? {
                Value::Scalar(v) => push(
                    &mut out,
                    &mut order,
                    crate::value::VectorSample::new(Labels::empty(), t, v),
                ),
                Value::Vector(mut vec) => {
                    crate::value::finish_names(&mut vec)?;
                    for mut s in vec {
                        s.t = t;
                        push(&mut out, &mut order, s);
                    }
                }
                _ => unreachable!("checked above"),
            }
            ev.check_deadline()?;
            ev.end_step();
            t += step;
        }
        let mut series: Vec<RangeSeries> =
            order.into_iter().filter_map(|l| out.remove(&l)).collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok((series, ev.annotations))
    }
}

/// A range query's bounds, checked with Prometheus's messages.
fn check_range(start: i64, end: i64, step: i64) -> Result<(), Error> {
    if step <= 0 {
        return Err(Error::Eval(
            "zero or negative query resolution step widths are not accepted".into(),
        ));
    }
    if end < start {
        return Err(Error::Eval(
            "end timestamp must not be before start time".into(),
        ));
    }
    Ok(())
}

/// Deepest expression tree a query may have (nested calls, aggregations, parentheses, chains of
/// binary operators). Deeper queries get a clear error instead of exhausting the stack.
pub const MAX_DEPTH: usize = 2048;

/// Stack for parsing (the parser and its checks recurse over the tree).
const PARSE_STACK: usize = 256 << 20;

/// Evaluation grows its stack by this much when less than [`RED_ZONE`] is left.
pub(crate) const EVAL_STACK: usize = 8 << 20;
pub(crate) const RED_ZONE: usize = 256 << 10;

/// Depth of an expression tree, walked without recursion.
pub fn depth(e: &Expr) -> usize {
    let mut max = 0;
    let mut todo: Vec<(&Expr, usize)> = vec![(e, 1)];
    while let Some((e, d)) = todo.pop() {
        max = max.max(d);
        for_each_child(e, |c| todo.push((c, d + 1)));
    }
    max
}

/// Calls `f` with each direct subexpression of `e` (the walks over a query's tree share it).
pub(crate) fn for_each_child<'e>(e: &'e Expr, mut f: impl FnMut(&'e Expr)) {
    match e {
        Expr::Aggregate(ag) => {
            f(&ag.expr);
            if let Some(p) = &ag.param {
                f(p);
            }
        }
        Expr::Unary(u) => f(&u.expr),
        Expr::Binary(b) => {
            f(&b.lhs);
            f(&b.rhs);
        }
        Expr::Paren(p) => f(&p.expr),
        Expr::Subquery(sq) => f(&sq.expr),
        Expr::Call(c) => c.args.args.iter().for_each(|a| f(a)),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => {}
    }
}

/// Milliseconds of a parser duration.
pub(crate) fn ms(d: &Duration) -> i64 {
    d.as_millis() as i64
}

/// Signed milliseconds of an offset (positive looks back).
pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

/// Loaded data and limits of one query.
pub(crate) struct Evaluator<'a> {
    store: &'a dyn Queryable,
    pub(crate) opts: &'a EngineOptions,
    /// Query start and end, for `@ start()` and `@ end()`.
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// The query's step (0 for instant queries).
    pub(crate) step: i64,
    /// Time range each selector needs, keyed by node address.
    needs: HashMap<usize, (i64, i64)>,
    /// The function each range selector feeds and the selector's range (ms), keyed by node
    /// address (for downsampled tiers).
    funcs: HashMap<usize, (String, i64)>,
    loaded: HashMap<usize, Arc<Vec<RangeSeries>>>,
    /// The same without staleness markers, for selectors used as ranges.
    stripped: HashMap<usize, Arc<Vec<RangeSeries>>>,
    /// Results of subquery inner expressions by (node address, time): consecutive steps of a
    /// range query share most of their subquery points, so each is evaluated once.
    pub(crate) subquery_cache: HashMap<(usize, i64), Value>,
    /// Subexpressions computed for every step of a range query at once, by node address
    /// (`range_fast.rs`).
    pub(crate) precomputed: HashMap<usize, crate::range_fast::Precomputed>,
    /// Samples held for the whole query: selectors' series and the subquery cache.
    samples_loaded: usize,
    /// Samples produced by subqueries in the current step.
    samples_transient: usize,
    pub(crate) stop: crate::parallel::Stop,
    /// Warnings and infos noted so far.
    pub(crate) annotations: Annotations,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        store: &'a dyn Queryable,
        opts: &'a EngineOptions,
        start: i64,
        end: i64,
        step: i64,
    ) -> Self {
        Self {
            store,
            opts,
            start,
            end,
            step,
            needs: HashMap::new(),
            funcs: HashMap::new(),
            loaded: HashMap::new(),
            stripped: HashMap::new(),
            subquery_cache: HashMap::new(),
            precomputed: HashMap::new(),
            samples_loaded: 0,
            samples_transient: 0,
            stop: crate::parallel::Stop {
                deadline: Instant::now() + opts.timeout,
                cancel: opts.cancel.clone(),
            },
            annotations: Annotations::default(),
        }
    }

    /// Notes a warning or an info for the query's response.
    pub(crate) fn annotate(&mut self, a: Annotation) {
        self.annotations.add(a);
    }

    /// Counts `n` more samples held by the query (loaded, cached or produced by a subquery)
    /// against the limit.
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), Error> {
        self.samples_loaded += n;
        if self.samples_loaded.saturating_add(self.samples_transient) > self.opts.max_samples {
            return Err(Error::TooManySamples(self.opts.max_samples));
        }
        Ok(())
    }

    /// Counts `n` samples that live only until the current step ends (subquery results).
    pub(crate) fn charge_transient(&mut self, n: usize) -> Result<(), Error> {
        self.samples_transient += n;
        self.charge(0)
    }

    /// Gives back samples a query no longer holds.
    pub(crate) fn release(&mut self, n: usize) {
        self.samples_loaded = self.samples_loaded.saturating_sub(n);
    }

    /// The step is over: its transient samples are gone.
    pub(crate) fn end_step(&mut self) {
        self.samples_transient = 0;
    }

    /// Fails when the query's time is up or its caller has cancelled it.
    pub(crate) fn check_deadline(&self) -> Result<(), Error> {
        self.stop.check()
    }

    /// The evaluation time after `@` and `offset`.
    pub(crate) fn shifted(&self, t: i64, at: &Option<AtModifier>, offset: &Option<Offset>) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(st)) => match st.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => d.as_millis() as i64,
                Err(e) => -(e.duration().as_millis() as i64),
            },
        };
        base - offset_ms(offset)
    }

    fn note(&mut self, vs: &VectorSelector, from: i64, to: i64) {
        let key = vs as *const _ as usize;
        let e = self.needs.entry(key).or_insert((from, to));
        e.0 = e.0.min(from);
        e.1 = e.1.max(to);
    }

    /// Records the time range every selector in `e` needs when `e` is evaluated at times in
    /// `[a, b]`.
    pub(crate) fn prepare(&mut self, e: &Expr, a: i64, b: i64) {
        stacker::maybe_grow(RED_ZONE, EVAL_STACK, || self.prepare_node(e, a, b))
    }

    fn prepare_node(&mut self, e: &Expr, a: i64, b: i64) {
        match e {
            Expr::VectorSelector(vs) => {
                let (x, y) = (
                    self.shifted(a, &vs.at, &vs.offset),
                    self.shifted(b, &vs.at, &vs.offset),
                );
                // `smoothed` interpolates towards the next sample, up to a lookback ahead.
                let ahead = if vs.smoothed {
                    self.opts.lookback_ms
                } else {
                    0
                };
                self.note(vs, x.min(y) - self.opts.lookback_ms, x.max(y) + ahead);
            }
            Expr::MatrixSelector(m) => {
                let vs = &m.vs;
                let (x, y) = (
                    self.shifted(a, &vs.at, &vs.offset),
                    self.shifted(b, &vs.at, &vs.offset),
                );
                // `anchored` and `smoothed` read a lookback before the range, `smoothed` one after.
                let (behind, ahead) = match (vs.anchored, vs.smoothed) {
                    (true, _) => (self.opts.lookback_ms, 0),
                    (_, true) => (self.opts.lookback_ms, self.opts.lookback_ms),
                    _ => (0, 0),
                };
                self.note(vs, x.min(y) - ms(&m.range) - behind, x.max(y) + ahead);
            }
            Expr::Subquery(sq) => {
                let (x, y) = (
                    self.shifted(a, &sq.at, &sq.offset),
                    self.shifted(b, &sq.at, &sq.offset),
                );
                self.prepare(&sq.expr, x.min(y) - ms(&sq.range), x.max(y));
            }
            Expr::Aggregate(ag) => {
                if let Some(p) = &ag.param {
                    self.prepare(p, a, b);
                }
                self.prepare(&ag.expr, a, b);
            }
            Expr::Unary(u) => self.prepare(&u.expr, a, b),
            Expr::Binary(bin) => {
                self.prepare(&bin.lhs, a, b);
                self.prepare(&bin.rhs, a, b);
            }
            Expr::Paren(p) => self.prepare(&p.expr, a, b),
            Expr::Call(c) => {
                for arg in &c.args.args {
                    if let Expr::MatrixSelector(m) = arg.as_ref() {
                        // Extended ranges need raw samples, never a downsampled tier.
                        if m.vs.anchored || m.vs.smoothed {
                            self.prepare(arg, a, b);
                            continue;
                        }
                        let key = &m.vs as *const _ as usize;
                        self.funcs
                            .insert(key, (c.func.name.to_string(), ms(&m.range)));
                    }
                    self.prepare(arg, a, b);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    /// The series of a selector used in a range (matrix selector): staleness markers are not
    /// part of any range window, so they are removed once, at load.
    pub(crate) fn series_without_stale(
        &mut self,
        vs: &VectorSelector,
    ) -> Result<Arc<Vec<RangeSeries>>, Error> {
        let key = vs as *const _ as usize;
        if let Some(s) = self.stripped.get(&key) {
            return Ok(s.clone());
        }
        let loaded = self.series(vs)?;
        // A selector node is used either as a range or as an instant vector, never both, so the
        // loaded copy is normally ours alone and is filtered in place.
        self.loaded.remove(&key);
        let stripped: Vec<RangeSeries> = match Arc::try_unwrap(loaded) {
            Ok(mut own) => {
                for s in &mut own {
                    s.samples.retain(|x| !medic_model::is_stale_nan(x.v));
                    s.histograms.retain(|x| !medic_model::is_stale_nan(x.h.sum));
                }
                own
            }
            Err(shared) => shared
                .iter()
                .map(|s| RangeSeries {
                    labels: s.labels.clone(),
                    samples: s
                        .samples
                        .iter()
                        .filter(|x| !medic_model::is_stale_nan(x.v))
                        .copied()
                        .collect(),
                    histograms: s
                        .histograms
                        .iter()
                        .filter(|x| !medic_model::is_stale_nan(x.h.sum))
                        .cloned()
                        .collect(),
                })
                .collect(),
        };
        let stripped = Arc::new(stripped);
        self.stripped.insert(key, stripped.clone());
        Ok(stripped)
    }

    /// The series of a selector, loaded once per query.
    pub(crate) fn series(&mut self, vs: &VectorSelector) -> Result<Arc<Vec<RangeSeries>>, Error> {
        let key = vs as *const _ as usize;
        if let Some(s) = self.loaded.get(&key) {
            return Ok(s.clone());
        }
        let (from, to) = self
            .needs
            .get(&key)
            .copied()
            .unwrap_or((self.start - self.opts.lookback_ms, self.end));
        let matchers = crate::selector::matchers(vs)?;
        let q = self.store.querier(from + 1, to)?;
        let mut out = Vec::new();
        // The store stops decoding once the query's remaining allowance is spent, so a
        // selection over the limit never holds more than the limit.
        let allowance = self
            .opts
            .max_samples
            .saturating_sub(self.samples_loaded + self.samples_transient);
        let func = self.funcs.get(&key).cloned();
        let auto = match &func {
            // Functions whose downsampled aggregate keeps their answer close: a tier a fifth
            // of the step and of the range, so a window holds several of its points.
            Some((f, range)) if TIER_FUNCTIONS.contains(&f.as_str()) => {
                let span = if self.step > 0 {
                    self.step.min(*range)
                } else {
                    *range
                };
                span / 5
            }
            _ => 0,
        };
        let hints = medic_model::SelectHints {
            func: func.map(|(f, _)| f),
            max_resolution_ms: self.opts.max_source_resolution_ms.unwrap_or(auto),
        };
        let selected = q
            .select_hinted(&matchers, allowance, &hints)
            .map_err(|e| match e {
                medic_model::StorageError::TooManySamples(_) => {
                    Error::TooManySamples(self.opts.max_samples)
                }
                e => e.into(),
            })?;
        for s in selected {
            let s = s?;
            self.charge(s.samples.len())?;
            out.push(RangeSeries::floats(s.labels, s.samples));
        }
        let histograms = q.select_histograms(&matchers)?;
        if !histograms.is_empty() {
            self.merge_histograms(&mut out, histograms)?;
        }
        self.check_deadline()?;
        let out = Arc::new(out);
        self.loaded.insert(key, out.clone());
        Ok(out)
    }
}

impl Evaluator<'_> {
    /// The series matching `matchers` that an instant selector would pick at `t` (newest
    /// point within the lookback, not stale), with that point's time: what `info()` joins
    /// with. Histograms are refused: info series are floats.
    pub(crate) fn latest_at(
        &mut self,
        matchers: &[medic_model::Matcher],
        t: i64,
    ) -> Result<Vec<(Labels, i64)>, Error> {
        let lookback = self.opts.lookback_ms;
        let q = self.store.querier(t - lookback + 1, t)?;
        if !q.select_histograms(matchers)?.is_empty() {
            return Err(Error::Eval(
                "info(): the info series selector matches native histograms; info series are floats"
                    .into(),
            ));
        }
        let mut out = Vec::new();
        for s in q.select(matchers)? {
            let s = s?;
            self.charge_transient(s.samples.len())?;
            let series = RangeSeries::floats(s.labels, s.samples);
            if let Some(p) = crate::selector::latest(&series, t, lookback) {
                out.push((series.labels.clone(), p.t()));
            }
        }
        Ok(out)
    }

    /// Joins a selection's histograms to its floats, series by series (a series may have
    /// both), keeping the series sorted by labels.
    fn merge_histograms(
        &mut self,
        out: &mut Vec<RangeSeries>,
        histograms: Vec<medic_model::HistogramSeries>,
    ) -> Result<(), Error> {
        let mut index: HashMap<Labels, usize> = out
            .iter()
            .enumerate()
            .map(|(i, s)| (s.labels.clone(), i))
            .collect();
        for h in histograms {
            // A histogram weighs as much as its buckets, as Prometheus counts it.
            let weight: usize = h
                .samples
                .iter()
                .map(|x| 1 + (x.h.positive.len() + x.h.negative.len()) / 8)
                .sum();
            self.charge(weight)?;
            match index.get(&h.labels) {
                Some(&i) => out[i].histograms = h.samples,
                None => {
                    index.insert(h.labels.clone(), out.len());
                    out.push(RangeSeries {
                        labels: h.labels,
                        samples: Vec::new(),
                        histograms: h.samples,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(())
    }
}

/// Appends a step's sample to its series in a range query's result.
fn push(
    out: &mut HashMap<Labels, RangeSeries>,
    order: &mut Vec<Labels>,
    s: crate::value::VectorSample,
) {
    let series = match out.get_mut(&s.labels) {
        Some(series) => series,
        None => {
            order.push(s.labels.clone());
            out.entry(s.labels.clone())
                .or_insert_with(|| RangeSeries::floats(s.labels.clone(), Vec::new()))
        }
    };
    match s.h {
        Some(h) => series
            .histograms
            .push(medic_model::HistogramSample { t: s.t, h }),
        None => series.samples.push(Sample::new(s.t, s.v)),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
