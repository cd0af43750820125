//! What to draw for an alerting expression: `errors / requests > 0.05` keeps only the series
//! above the line, so a chart of it shows nothing of the approach. The chart draws the left
//! side and the right side as the threshold.

use promql_parser::parser::{self, Expr};

/// The expression to chart for `expr` and its threshold: for a top-level comparison without
/// `bool` whose other side is a number, the side with the series and the number; otherwise
/// `expr` itself and no threshold. `None` when `expr` does not parse.
pub fn chart_query(expr: &str) -> Option<(String, Option<f64>)> {
    let mut e = parser::parse(expr).ok()?;
    while let Expr::Paren(p) = e {
        e = *p.expr;
    }
    if let Expr::Binary(b) = &e {
        if b.op.is_comparison_operator() && !b.return_bool() {
            return Some(match (&*b.lhs, &*b.rhs) {
                (_, Expr::NumberLiteral(n)) => (b.lhs.to_string(), Some(n.val)),
                (Expr::NumberLiteral(n), _) => (b.rhs.to_string(), Some(n.val)),
                _ => (b.lhs.to_string(), None),
            });
        }
    }
    Some((expr.to_string(), None))
}

#[cfg(test)]
mod tests {
    use super::chart_query;

    #[test]
    fn a_comparison_is_split_into_the_series_and_the_threshold() {
        let (q, t) = chart_query(
            "(sum by (job) (rate(errors[5m])) / sum by (job) (rate(requests[5m]))) > 0.05",
        )
        .unwrap();
        assert_eq!(t, Some(0.05));
        assert!(q.contains("errors") && !q.contains("0.05"), "{q}");
        assert_eq!(
            chart_query("up == 0").unwrap(),
            ("up".to_string(), Some(0.0))
        );
        assert_eq!(chart_query("up").unwrap(), ("up".to_string(), None));
        assert_eq!(chart_query("a > bool 1").unwrap().1, None);
        assert!(chart_query("a >").is_none());
    }
}
