//! Values a PromQL expression evaluates to.

use medic_model::{Labels, Sample};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// Labels (with `__name__` unless an operation dropped it).
    pub labels: Labels,
    /// Evaluation timestamp (ms).
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One series of a range vector or of a range query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Labels.
    pub labels: Labels,
    /// Points, oldest first.
    pub samples: Vec<Sample>,
}

/// The result of evaluating an expression at one time.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// A string literal.
    String(String),
    /// An instant vector.
    Vector(Vec<VectorSample>),
    /// A range vector.
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// The type name as Prometheus prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}
