//! Values a PromQL expression evaluates to.

use std::sync::Arc;

use medic_model::{FloatHistogram, HistogramSample, Labels, Sample};

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
    /// Value (0 when the sample is a histogram).
    pub v: f64,
    /// A native histogram instead of a float value.
    pub h: Option<Arc<FloatHistogram>>,
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
            h: None,
            drop_name: false,
        }
    }

    /// A histogram sample whose labels are final.
    pub fn histogram(labels: Labels, t: i64, h: Arc<FloatHistogram>) -> Self {
        Self {
            labels,
            t,
            v: 0.0,
            h: Some(h),
            drop_name: false,
        }
    }

    /// Whether the sample is a float (not a histogram).
    pub fn is_float(&self) -> bool {
        self.h.is_none()
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
    /// Float points, oldest first.
    pub samples: Vec<Sample>,
    /// Histogram points, oldest first (a series may have both, at different times).
    pub histograms: Vec<HistogramSample>,
}

impl RangeSeries {
    /// A series of floats only.
    pub fn floats(labels: Labels, samples: Vec<Sample>) -> Self {
        Self {
            labels,
            samples,
            histograms: Vec::new(),
        }
    }

    /// Whether the series has no point at all.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.histograms.is_empty()
    }

    /// Number of points, floats and histograms.
    pub fn len(&self) -> usize {
        self.samples.len() + self.histograms.len()
    }
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
            Value::Matrix(m) => m.iter().map(RangeSeries::len).sum(),
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
