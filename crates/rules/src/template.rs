//! Label and annotation templates as Prometheus expands them.

use std::sync::Arc;

use medic_model::Queryable;
use medic_promql::{Engine, Value as PromValue};
use medic_template::{Funcs, Template, Value};

use crate::backend::QueryBackend;

/// The variables Prometheus defines before every alert template.
const PRELUDE: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// `text` with Prometheus's variable definitions in front (no newline, so lines stay put).
pub fn with_prelude(text: &str) -> String {
    format!("{PRELUDE}{text}")
}

/// A label or annotation value, parsed once.
#[derive(Debug, Clone)]
pub enum Text {
    /// No `{{`: used as is.
    Plain(String),
    Template(Arc<Template>),
}

impl Text {
    pub fn parse(rule: &str, text: &str) -> Text {
        if !text.contains("{{") {
            return Text::Plain(text.to_string());
        }
        match Template::parse(&format!("__alert_{rule}"), &with_prelude(text)) {
            Ok(t) => Text::Template(Arc::new(t)),
            // Validated at load; keep the message if it ever gets here.
            Err(e) => Text::Plain(format!("<error expanding template: {e}>")),
        }
    }

    /// Expands with `data`; an error becomes the text Prometheus puts in its place.
    pub fn expand(&self, data: &Value, funcs: &Funcs) -> String {
        match self {
            Text::Plain(s) => s.clone(),
            Text::Template(t) => t
                .execute(data, funcs, &[])
                .unwrap_or_else(|e| format!("<error expanding template: {e}>")),
        }
    }
}

/// Template data for one alert: `.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`.
pub fn alert_data(
    labels: &medic_model::Labels,
    external: &medic_model::Labels,
    url: &str,
    value: f64,
) -> Value {
    Value::map([
        (
            "Labels",
            Value::str_map(labels.iter().map(|l| (&*l.name, &*l.value))),
        ),
        (
            "ExternalLabels",
            Value::str_map(external.iter().map(|l| (&*l.name, &*l.value))),
        ),
        ("ExternalURL", Value::from(url)),
        ("Value", Value::Float(value)),
    ])
}

/// Prometheus's template functions plus `query` (against `store` at `t`), `externalURL` and
/// `pathPrefix`.
pub fn funcs(
    engine: Engine,
    store: Arc<dyn Queryable>,
    backend: Option<QueryBackend>,
    t: i64,
    external_url: &str,
) -> Funcs {
    let mut f = Funcs::prometheus();
    f.insert("query", move |a| {
        let q = match a {
            [Value::Str(q)] => q,
            _ => return Err("query needs one string argument".into()),
        };
        let v = match &backend {
            Some(b) => PromValue::Vector(b.instant(q, t).map_err(|e| e.0)?),
            None => engine.instant(&*store, q, t).map_err(|e| e.to_string())?,
        };
        let samples = match v {
            PromValue::Vector(v) => v
                .into_iter()
                .map(|s| {
                    Value::map([
                        (
                            "Labels",
                            Value::str_map(s.labels.iter().map(|l| (&*l.name, &*l.value))),
                        ),
                        ("Value", Value::Float(s.v)),
                    ])
                })
                .collect(),
            PromValue::Scalar(v) => vec![Value::map([
                ("Labels", Value::Map(Default::default())),
                ("Value", Value::Float(v)),
            ])],
            PromValue::String(s) => vec![Value::map([
                ("Labels", Value::str_map([("__value__", s.as_str())])),
                ("Value", Value::Float(0.0)),
            ])],
            PromValue::Matrix(_) => return Err("query result is a range vector".into()),
        };
        Ok(Value::List(samples))
    });
    let url = external_url.to_string();
    f.insert("externalURL", move |_| Ok(Value::from(url.as_str())));
    let prefix = external_url
        .split_once("://")
        .and_then(|(_, rest)| {
            rest.find('/')
                .map(|i| rest[i..].trim_end_matches('/').to_string())
        })
        .unwrap_or_default();
    f.insert("pathPrefix", move |_| Ok(Value::from(prefix.as_str())));
    f
}
