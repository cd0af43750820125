//! Elementwise math: `abs ceil floor exp sqrt ln log2 log10 sgn round clamp clamp_min
//! clamp_max` and the trigonometric functions.

use promql_parser::parser::Expr;

use crate::engine::Evaluator;
use crate::value::{Value, VectorSample};
use crate::Error;

fn unary(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |v: f64| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v: f64| v * 180.0 / std::f64::consts::PI,
        "rad" => |v: f64| v * std::f64::consts::PI / 180.0,
        _ => return None,
    })
}

/// Go's `math.Max`, which Prometheus's clamps use: NaN if either is NaN (Rust's `max` returns
/// the other).
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

impl Evaluator<'_> {
    pub(crate) fn call_math(
        &mut self,
        name: &str,
        args: &[&Expr],
        t: i64,
    ) -> Result<Option<Value>, Error> {
        if name == "pi" {
            return Ok(Some(Value::Scalar(std::f64::consts::PI)));
        }
        let f: Box<dyn Fn(f64) -> f64> = if let Some(f) = unary(name) {
            Box::new(f)
        } else {
            match name {
                "round" => {
                    let to = if args.len() > 1 {
                        self.eval_scalar(args[1], t)?
                    } else {
                        1.0
                    };
                    // As Prometheus: round half up, to the nearest multiple of `to`.
                    let inv = 1.0 / to;
                    Box::new(move |v: f64| (v * inv + 0.5).floor() / inv)
                }
                "clamp" => {
                    let (lo, hi) = (self.eval_scalar(args[1], t)?, self.eval_scalar(args[2], t)?);
                    if hi < lo {
                        return Ok(Some(Value::Vector(Vec::new())));
                    }
                    Box::new(move |v: f64| go_max(lo, go_min(hi, v)))
                }
                "clamp_min" => {
                    let lo = self.eval_scalar(args[1], t)?;
                    Box::new(move |v: f64| go_max(lo, v))
                }
                "clamp_max" => {
                    let hi = self.eval_scalar(args[1], t)?;
                    Box::new(move |v: f64| go_min(hi, v))
                }
                _ => return Ok(None),
            }
        };
        let v = self.eval_vector(args[0], t)?;
        Ok(Some(Value::Vector(
            v.into_iter()
                // Math on a histogram has no meaning: Prometheus leaves it out.
                .filter(VectorSample::is_float)
                .map(|mut s| {
                    s.v = f(s.v);
                    s.drop_name = true;
                    s
                })
                .collect(),
        )))
    }
}
