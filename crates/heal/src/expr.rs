//! Diagnosis conditions in CEL (Common Expression Language, by the `cel` crate):
//! a small, side-effect-free, always-terminating language over the collected evidence.

use std::collections::BTreeMap;

use cel::{Context, Program, Value};
use serde_json::Value as Json;

/// A compiled CEL condition.
pub struct Expr {
    source: String,
    program: Program,
    variables: Vec<String>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

/// Keeps the CEL parser's caught panics (see [`Expr::compile`]) out of stderr: a panic hook
/// that skips panics raised inside the generated parser's runtime and hands every other one to
/// the hook that was there before. Installed once.
fn quiet_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| l.file().contains("antlr4rust") || l.file().contains("cel-parser"))
            {
                return;
            }
            previous(info);
        }));
    });
}

/// The longest expression accepted; diagnosis rules are one-liners.
const MAX_LEN: usize = 4096;

impl Expr {
    /// Compiles `source`; the error gives line:column within the expression.
    pub fn compile(source: &str) -> Result<Expr, String> {
        if source.len() > MAX_LEN {
            return Err(format!("expression longer than {MAX_LEN} bytes"));
        }
        // The parser's error type is not Send; keep only its text. `cel-interpreter` 0.10's
        // generated parser panicked on some malformed input; `cel` 0.15's has not in 20,000
        // generated cases (see the test below), but a panic is still caught and reported as
        // invalid, never allowed to take medic down.
        quiet_parser_panics();
        let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Program::compile(source)
                .map_err(|e| e.to_string().replace("ERROR: <input>:", "invalid CEL at "))
        }));
        let program = match compiled {
            Ok(r) => r?,
            Err(_) => return Err(format!("invalid CEL: cannot parse {source:?}")),
        };
        let mut variables: Vec<String> = program
            .references()
            .variables()
            .into_iter()
            .map(str::to_string)
            .collect();
        // `list.exists(x, …)` and the other macros bind their own variable: not evidence.
        let bound = bound_variables(source);
        variables.retain(|v| !bound.contains(v));
        variables.sort();
        Ok(Expr {
            source: source.to_string(),
            program,
            variables,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The top-level variables the expression reads.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Evaluates to a boolean with `vars` bound; a non-boolean result or a missing key is an
    /// error (the rule does not match, and the reason is recorded).
    pub fn eval_bool(&self, vars: &BTreeMap<String, Json>) -> Result<bool, String> {
        let mut ctx = Context::default();
        for v in &self.variables {
            let Some(val) = vars.get(v) else {
                return Err(format!("{v} is not available"));
            };
            ctx.add_variable(v.as_str(), val)
                .map_err(|e| format!("{v}: {e}"))?;
        }
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("evaluates to {:?}, not a boolean", other.type_of())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The values of the variables the expression reads: the evidence behind a conclusion.
    pub fn support(&self, vars: &BTreeMap<String, Json>) -> BTreeMap<String, Json> {
        self.variables
            .iter()
            .filter_map(|v| vars.get(v).map(|j| (v.clone(), j.clone())))
            .collect()
    }
}

/// The variables CEL's macros bind (`exists`, `all`, `exists_one`, `map`, `filter`).
fn bound_variables(source: &str) -> Vec<String> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"\.(?:exists_one|exists|all|map|filter)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,",
        )
        .expect("valid regex")
    })
    .captures_iter(source)
    .map(|c| c[1].to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(j: Json) -> BTreeMap<String, Json> {
        serde_json::from_value(j).unwrap()
    }

    #[test]
    fn a_macro_variable_is_not_evidence() {
        let e = Expr::compile("errors.lines.exists(l, l.line.contains('timeout'))").unwrap();
        assert_eq!(e.variables(), ["errors"]);
        let v = vars(json!({"errors": {"lines": [{"line": "a"}, {"line": "gateway timeout"}]}}));
        assert_eq!(e.eval_bool(&v), Ok(true));
    }

    #[test]
    fn evaluates_over_evidence_with_mixed_numbers() {
        let e = Expr::compile("restarts.value >= 3 && status.stdout.contains('failed')").unwrap();
        assert_eq!(e.variables(), ["restarts", "status"]);
        let v = vars(json!({"restarts": {"value": 4.0}, "status": {"stdout": "failed\n"}}));
        assert_eq!(e.eval_bool(&v), Ok(true));
        let v = vars(json!({"restarts": {"value": 1.0}, "status": {"stdout": "failed\n"}}));
        assert_eq!(e.eval_bool(&v), Ok(false));
    }

    #[test]
    fn errors_are_reasons_not_panics() {
        assert!(Expr::compile("a >").unwrap_err().contains("invalid CEL"));
        assert!(Expr::compile("a ==== b")
            .unwrap_err()
            .contains("invalid CEL"));
        let e = Expr::compile("a.b > 1").unwrap();
        assert!(e
            .eval_bool(&vars(json!({})))
            .unwrap_err()
            .contains("a is not available"));
        assert!(e.eval_bool(&vars(json!({"a": {}}))).is_err());
        let e = Expr::compile("a").unwrap();
        assert!(e
            .eval_bool(&vars(json!({"a": 1})))
            .unwrap_err()
            .contains("not a boolean"));
    }
}

#[cfg(test)]
mod parser_panics {
    /// `cel`'s parser must not panic on malformed input (its predecessor `cel-interpreter` 0.10
    /// did, on some): 20,000 generated fragments, each compiled without medic's guard.
    #[test]
    fn the_parser_does_not_panic_on_malformed_input() {
        let parts = [
            "a", ".", "(", ")", "[", "]", "{", "}", "'", "\"", ">", "=", "!", "&&", "||", "?", ":",
            "1", "-", "in", ",", "\\", "b\"", "0x", "1e", "u",
        ];
        let mut panics = 0;
        let mut n = 0;
        let mut seed: u64 = 42;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(seed % 7 + 1) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(parts[(seed >> 33) as usize % parts.len()]);
            }
            n += 1;
            let r = std::panic::catch_unwind(|| cel::Program::compile(&s).is_ok());
            if r.is_err() {
                panics += 1;
                eprintln!("panics on {s:?}");
            }
        }
        assert_eq!(panics, 0, "{panics} panics in {n} inputs");
    }
}
