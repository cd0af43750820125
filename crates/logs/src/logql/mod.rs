//! LogQL: the parser (own, hand-written: `lex`, `parse`, `ast`), the pipeline (`pipeline`,
//! `parsers`) and the evaluator for log queries (`logs`) and metric queries (`metric`) over any
//! [`LogSource`].

pub mod ast;
mod lex;
pub mod logs;
pub mod metric;
mod parse;
pub mod parsers;
pub mod pipeline;

pub use lex::{parse_bytes, parse_duration};
pub use parse::{parse, parse_selector};

use medic_model::Matcher;

use crate::entry::Stream;

/// A query that cannot be parsed, with where: Loki's `parse error at line L, col C: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

impl ParseError {
    /// An error at byte offset `pos` of `src`.
    pub fn at(src: &str, pos: usize, msg: impl Into<String>) -> Self {
        let before = &src[..pos.min(src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError {
            line,
            col,
            msg: msg.into(),
        }
    }
}

/// Why a query could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A metric query met entries its pipeline marked with `__error__`.
    #[error("pipeline error: '{kind}' for series: '{series}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{kind}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )")]
    Pipeline { kind: String, series: String },
    /// The query would read or return more than a limit allows.
    #[error("{0}")]
    Limit(String),
    /// The store failed.
    #[error("reading logs: {0}")]
    Source(String),
    /// The query is valid LogQL that the evaluator cannot answer in this context.
    #[error("{0}")]
    Invalid(String),
}

/// What a query asks of the store: streams matching `matchers`, entries with
/// `start <= ts < end` (nanoseconds). `needles` are substrings every wanted line contains,
/// so a store may skip chunks that cannot hold them.
pub struct Selection<'a> {
    pub matchers: &'a [Matcher],
    pub start: i64,
    pub end: i64,
    pub needles: Vec<String>,
    /// Whether the lines themselves are needed (`count_over_time` of a bare selector needs only
    /// the timestamps: a store may hand out empty lines).
    pub lines: bool,
}

/// Where a query reads entries from.
pub trait LogSource {
    /// The matching streams, each with its entries in time order.
    fn select(&self, sel: &Selection<'_>) -> Result<Vec<Stream>, EvalError>;
}

/// Entries are returned newest first (`backward`, Loki's default) or oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}
