//! medic's PromQL engine: parsing by the `promql-parser` crate, evaluation here, over any
//! [`medic_model::Queryable`], with Prometheus 3.x semantics (left-open windows `(t-r, t]`,
//! 5m lookback, staleness markers end a series).
//!
//! Layout: [`engine`] (queries, limits, loading each selector's data once), `eval` (the AST
//! walker), `durations` (`step()`/`range()` in durations), `selector`, `binary` (operators and
//! vector matching), `aggregate`, `functions/`
//! (one file per family), [`testscript`] (Prometheus's `.test` format).
//! Depends on `medic-model`, and on `medic-template` for Go's `%q` and `%g` in annotation texts.

mod aggregate;
pub mod annotations;
mod binary;
pub mod cache;
pub mod chart;
pub mod diagnose;
mod durations;
pub mod engine;
mod error;
mod eval;
mod functions;
mod parallel;
mod range_fast;
mod selector;
pub mod testscript;
pub mod value;

pub use annotations::Annotations;
pub use cache::{CacheOutcome, ResultCache};
pub use engine::{Engine, EngineOptions};
pub use error::Error;
pub use promql_parser::parser::Expr;
pub use value::{format_value, RangeSeries, Value, VectorSample};
