//! Duration expressions that depend on the query — `[step()*2]`, `offset range()` — resolved
//! into plain durations once the query's step and range are known (Prometheus does this in
//! `PreprocessExpr`). Constant ones (`[5m+1m]`) the parser has already computed.

use promql_parser::parser::{DurationExpr, Expr};

use crate::Error;

/// Whether `e` holds a duration expression still to resolve.
pub(crate) fn has_deferred(e: &Expr) -> bool {
    let mut todo = vec![e];
    while let Some(e) = todo.pop() {
        match e {
            Expr::VectorSelector(vs) if vs.offset_expr.is_some() => return true,
            Expr::MatrixSelector(m) if m.range_expr.is_some() || m.vs.offset_expr.is_some() => {
                return true
            }
            Expr::Subquery(sq)
                if sq.range_expr.is_some()
                    || sq.step_expr.is_some()
                    || sq.offset_expr.is_some() =>
            {
                return true
            }
            _ => crate::engine::for_each_child(e, |c| todo.push(c)),
        }
    }
    false
}

/// A copy of `e` with every deferred duration computed for a query of this step and range
/// (ms; both 0 for an instant query), or `None` when there is nothing to resolve.
pub(crate) fn resolve(e: &Expr, step_ms: i64, range_ms: i64) -> Result<Option<Expr>, Error> {
    if !has_deferred(e) {
        return Ok(None);
    }
    let mut out = e.clone();
    let (step, range) = (step_ms as f64 / 1000.0, range_ms as f64 / 1000.0);
    stacker::maybe_grow(crate::engine::RED_ZONE, crate::engine::EVAL_STACK, || {
        resolve_node(&mut out, step, range)
    })?;
    Ok(Some(out))
}

fn resolve_node(e: &mut Expr, step: f64, range: f64) -> Result<(), Error> {
    let err = Error::Eval;
    let offset = |d: &mut Option<DurationExpr>| d.take().map(|d| d.to_offset(step, range));
    match e {
        Expr::VectorSelector(vs) => {
            if let Some(o) = offset(&mut vs.offset_expr) {
                vs.offset = Some(o.map_err(err)?);
            }
        }
        Expr::MatrixSelector(m) => {
            if let Some(r) = m.range_expr.take() {
                m.range = r.to_range(step, range).map_err(err)?;
            }
            if let Some(o) = offset(&mut m.vs.offset_expr) {
                m.vs.offset = Some(o.map_err(err)?);
            }
        }
        Expr::Subquery(sq) => {
            if let Some(r) = sq.range_expr.take() {
                sq.range = r.to_range(step, range).map_err(err)?;
            }
            if let Some(s) = sq.step_expr.take() {
                sq.step = Some(s.to_range(step, range).map_err(err)?);
            }
            if let Some(o) = offset(&mut sq.offset_expr) {
                sq.offset = Some(o.map_err(err)?);
            }
            resolve_node(&mut sq.expr, step, range)?;
        }
        Expr::Aggregate(a) => {
            resolve_node(&mut a.expr, step, range)?;
            if let Some(p) = a.param.as_deref_mut() {
                resolve_node(p, step, range)?;
            }
        }
        Expr::Unary(u) => resolve_node(&mut u.expr, step, range)?,
        Expr::Binary(b) => {
            resolve_node(&mut b.lhs, step, range)?;
            resolve_node(&mut b.rhs, step, range)?;
        }
        Expr::Paren(p) => resolve_node(&mut p.expr, step, range)?,
        Expr::Call(c) => {
            for a in &mut c.args.args {
                resolve_node(a, step, range)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range_of(q: &str, step_ms: i64, range_ms: i64) -> std::time::Duration {
        let e = crate::Engine::parse(q).unwrap();
        let e = resolve(&e, step_ms, range_ms).unwrap().unwrap_or(e);
        match e {
            Expr::Call(c) => match c.args.args[0].as_ref() {
                Expr::MatrixSelector(m) => m.range,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn constant_expressions_are_computed_by_the_parser() {
        let e = crate::Engine::parse("rate(x[26m+4m])").unwrap();
        assert!(!has_deferred(&e));
        assert_eq!(range_of("rate(x[26m+4m])", 0, 0).as_secs(), 30 * 60);
        assert_eq!(range_of("rate(x[1h30m % 1h])", 0, 0).as_secs(), 30 * 60);
    }

    #[test]
    fn step_and_range_come_from_the_query() {
        assert_eq!(range_of("rate(x[step()*3])", 10_000, 0).as_secs(), 30);
        assert_eq!(
            range_of("rate(x[min_of(range(), 1h)])", 15_000, 7_200_000).as_secs(),
            3600
        );
        // An instant query has neither: a range of 0 is refused.
        let e = crate::Engine::parse("rate(x[step()])").unwrap();
        assert!(resolve(&e, 0, 0).is_err());
    }
}
