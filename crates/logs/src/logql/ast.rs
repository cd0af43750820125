//! LogQL's syntax tree: log queries (a stream selector and a pipeline) and metric queries
//! (range aggregations of log queries, vector aggregations, binary operations).

use medic_model::Matcher;
use regex::Regex;

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Expr {
    /// Returns log lines.
    Log(LogExpr),
    /// Returns samples.
    Metric(MetricExpr),
}

/// `{selector} pipeline…`
#[derive(Debug, Clone)]
pub struct LogExpr {
    pub matchers: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

impl LogExpr {
    /// The literal substrings every returned line must contain (from `|=` filters before any
    /// stage that rewrites the line), which a store can use to skip chunks.
    pub fn required_substrings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.stages {
            match s {
                Stage::LineFilter(f) if f.op == FilterOp::Contains && f.alternatives.len() == 1 => {
                    out.push(f.alternatives[0].text.clone());
                }
                Stage::LineFilter(_) | Stage::LabelFilter(_) => {}
                // Stages that rewrite the line end what is known of it.
                Stage::LineFormat(_) | Stage::Unpack | Stage::Decolorize => break,
                _ => {}
            }
        }
        out
    }
}

/// One pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    LineFilter(LineFilter),
    /// `| json` with optional `label="path"` parameters.
    Json(Vec<(String, Vec<PathPart>)>),
    /// `| logfmt` with optional `label="key"` parameters.
    Logfmt(Vec<(String, String)>),
    /// `| regexp "…"`: named captures become labels.
    Regexp(Regex),
    /// `| pattern "…"`.
    Pattern(super::parsers::Pattern),
    /// `| unpack`: a JSON object whose `_entry` key is the line and the rest labels.
    Unpack,
    LabelFilter(LabelFilter),
    /// `| line_format "{{…}}"`.
    LineFormat(medic_template::Template),
    /// `| label_format a=b, c="{{…}}"`.
    LabelFormat(Vec<LabelFmt>),
    /// `| drop a, b="v"`.
    Drop(Vec<LabelSel>),
    /// `| keep a, b="v"`.
    Keep(Vec<LabelSel>),
    /// `| decolorize`: strips ANSI colour codes.
    Decolorize,
}

/// `|= "a" or "b"`, `!~ "re"`.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub op: FilterOp,
    pub alternatives: Vec<FilterValue>,
}

/// One string of a line filter, with its compiled regex for `|~`/`!~`.
#[derive(Debug, Clone)]
pub struct FilterValue {
    pub text: String,
    pub regex: Option<Regex>,
}

/// The four line filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Contains,
    NotContains,
    Matches,
    NotMatches,
}

/// A part of a JSON path: `a.b[0]` is `Key(a) Key(b) Index(0)`.
#[derive(Debug, Clone, PartialEq)]
pub enum PathPart {
    Key(String),
    Index(usize),
}

/// A label filter expression.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name="v"`, `name=~"re"`…
    Str(Matcher),
    /// `name > 5`, `name >= 1s`, `name < 10KB`…
    Num {
        name: String,
        op: CmpOp,
        value: f64,
        kind: NumKind,
    },
}

/// How a label's value is read for a numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKind {
    Number,
    Duration,
    Bytes,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    pub fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Neq => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Gte => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Lte => a <= b,
        }
    }
}

/// One assignment of `label_format`.
#[derive(Debug, Clone)]
pub enum LabelFmt {
    /// `dst=src`: renames.
    Rename { dst: String, src: String },
    /// `dst="{{ … }}"`.
    Template {
        dst: String,
        tmpl: medic_template::Template,
    },
}

/// A label named by `drop`/`keep`, with an optional matcher on its value.
#[derive(Debug, Clone)]
pub struct LabelSel {
    pub name: String,
    pub matcher: Option<Matcher>,
}

/// A metric query.
#[derive(Debug, Clone)]
pub enum MetricExpr {
    Range(RangeAgg),
    Vector(VectorAgg),
    Binary(Box<Binary>),
    /// A number.
    Literal(f64),
    /// `vector(n)`.
    VectorLit(f64),
    /// `label_replace(expr, "dst", "replacement", "src", "regex")`.
    LabelReplace(Box<LabelReplace>),
}

/// `count_over_time({…} |= "x" [5m])` and the unwrapped forms.
#[derive(Debug, Clone)]
pub struct RangeAgg {
    pub op: RangeOp,
    pub log: LogExpr,
    pub range_secs: f64,
    pub offset_secs: f64,
    pub unwrap: Option<Unwrap>,
    /// The φ of `quantile_over_time`.
    pub param: Option<f64>,
    pub grouping: Option<Grouping>,
}

/// `| unwrap [bytes|duration|duration_seconds](label)` and the label filters after it.
#[derive(Debug, Clone)]
pub struct Unwrap {
    pub label: String,
    pub conv: NumKind,
    pub post_filters: Vec<LabelFilter>,
}

/// Range aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    Count,
    Rate,
    RateCounter,
    Bytes,
    BytesRate,
    Absent,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Stdvar,
    Stddev,
    Quantile,
}

impl RangeOp {
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "count_over_time" => RangeOp::Count,
            "rate" => RangeOp::Rate,
            "rate_counter" => RangeOp::RateCounter,
            "bytes_over_time" => RangeOp::Bytes,
            "bytes_rate" => RangeOp::BytesRate,
            "absent_over_time" => RangeOp::Absent,
            "sum_over_time" => RangeOp::Sum,
            "avg_over_time" => RangeOp::Avg,
            "min_over_time" => RangeOp::Min,
            "max_over_time" => RangeOp::Max,
            "first_over_time" => RangeOp::First,
            "last_over_time" => RangeOp::Last,
            "stdvar_over_time" => RangeOp::Stdvar,
            "stddev_over_time" => RangeOp::Stddev,
            "quantile_over_time" => RangeOp::Quantile,
            _ => return None,
        })
    }

    /// Whether the function needs `| unwrap`; `rate` works either way.
    pub fn needs_unwrap(self) -> Option<bool> {
        match self {
            RangeOp::Count | RangeOp::Bytes | RangeOp::BytesRate | RangeOp::Absent => Some(false),
            RangeOp::Rate => None,
            _ => Some(true),
        }
    }
}

/// `by (…)` / `without (…)`.
#[derive(Debug, Clone)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// `sum by (a) (…)`, `topk(3, …)`.
#[derive(Debug, Clone)]
pub struct VectorAgg {
    pub op: VectorOp,
    pub grouping: Option<Grouping>,
    pub param: Option<f64>,
    pub expr: Box<MetricExpr>,
}

/// Vector aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

impl VectorOp {
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "sum" => VectorOp::Sum,
            "avg" => VectorOp::Avg,
            "min" => VectorOp::Min,
            "max" => VectorOp::Max,
            "count" => VectorOp::Count,
            "stddev" => VectorOp::Stddev,
            "stdvar" => VectorOp::Stdvar,
            "topk" => VectorOp::Topk,
            "bottomk" => VectorOp::Bottomk,
            "sort" => VectorOp::Sort,
            "sort_desc" => VectorOp::SortDesc,
            _ => return None,
        })
    }
}

/// `a + b`, `a > bool 3`, `a and on (x) b`.
#[derive(Debug, Clone)]
pub struct Binary {
    pub op: BinOp,
    pub lhs: MetricExpr,
    pub rhs: MetricExpr,
    pub return_bool: bool,
    /// `on (…)` (false) or `ignoring (…)` (true), with the labels.
    pub matching: Option<(bool, Vec<String>)>,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Cmp(CmpOp),
    And,
    Or,
    Unless,
}

/// `label_replace`'s arguments.
#[derive(Debug, Clone)]
pub struct LabelReplace {
    pub expr: MetricExpr,
    pub dst: String,
    pub replacement: String,
    pub src: String,
    pub regex: Regex,
}
