//! Values a PromQL expression evaluates to.

use medic_model::{Labels, Sample};

/// Formats a value as Prometheus does in API responses and `count_values` labels (Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`): the shortest decimal that round-trips, never an
/// exponent; `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// Labels (with `__name__` unless an operation dropped it).
    pub labels: Labels,
    /// Evaluation timestamp (ms).
    pub t: i64,
    /// Value.
    pub v: f64,
    /// The metric name is to be removed when evaluation finishes (Prometheus 3's delayed name
    /// removal): operations that drop the name only mark it, so `label_replace` and
    /// `by (__name__)` can still see it.
    pub drop_name: bool,
}

impl VectorSample {
    /// A sample whose labels are final.
    pub fn new(labels: Labels, t: i64, v: f64) -> Self {
        Self {
            labels,
            t,
            v,
            drop_name: false,
        }
    }

    /// The labels as they will be reported (without the name if it is marked for removal).
    pub fn final_labels(&self) -> Labels {
        if self.drop_name {
            self.labels.without_metric_name()
        } else {
            self.labels.clone()
        }
    }
}

/// Removes marked metric names; fails if that leaves two samples with the same labels.
pub(crate) fn finish_names(v: &mut [VectorSample]) -> Result<(), crate::Error> {
    let mut any = false;
    for s in v.iter_mut() {
        if s.drop_name {
            s.labels = s.labels.without_metric_name();
            s.drop_name = false;
            any = true;
        }
    }
    if any {
        crate::functions::check_unique_labels(v)?;
    }
    Ok(())
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
    /// Samples the value holds (for the query's sample limit).
    pub fn len(&self) -> usize {
        match self {
            Value::Scalar(_) | Value::String(_) => 1,
            Value::Vector(v) => v.len(),
            Value::Matrix(m) => m.iter().map(|s| s.samples.len()).sum(),
        }
    }

    /// Whether the value holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

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
