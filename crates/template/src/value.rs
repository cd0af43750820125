//! The values templates see: Go's dynamic values, as far as templates distinguish them.

use std::collections::BTreeMap;

/// A template value. Maps keep their keys sorted, as Go prints and ranges over them.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Go's `nil` (prints as `<no value>`).
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// A map from pairs.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A map of strings (label sets).
    pub fn str_map<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_string(), Value::Str(v.as_ref().to_string())))
                .collect(),
        )
    }

    /// Go's truth: false, zero, nil and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// The value as a float, if it is a number or a string that parses as one (Prometheus's
    /// `convertToFloat`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => crate::fmt::parse_go_float(s),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Go's name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
        }
    }

    /// A field of a map: a missing key gives the empty string, as Prometheus's and
    /// Alertmanager's `map[string]string` label sets do.
    ///
    /// Alertmanager's methods on its data model are fields here too: `.SortedPairs`,
    /// `.Names` and `.Values` of a label set (a map without such a key), `.Firing` and
    /// `.Resolved` of an alert list, and `.Names`/`.Values` of a list of pairs.
    pub fn field(&self, name: &str) -> Result<Value, String> {
        match self {
            Value::Map(m) => match m.get(name) {
                Some(v) => Ok(v.clone()),
                None => Ok(match name {
                    "SortedPairs" => Value::List(
                        m.iter()
                            .map(|(k, v)| {
                                Value::map([("Name", Value::Str(k.clone())), ("Value", v.clone())])
                            })
                            .collect(),
                    ),
                    "Names" => Value::List(m.keys().map(|k| Value::Str(k.clone())).collect()),
                    "Values" => Value::List(m.values().cloned().collect()),
                    _ => Value::Str(String::new()),
                }),
            },
            Value::List(l) if matches!(name, "Firing" | "Resolved") => {
                let want = if name == "Firing" {
                    "firing"
                } else {
                    "resolved"
                };
                Ok(Value::List(
                    l.iter()
                        .filter(|a| {
                            a.field("Status").ok().as_ref().and_then(Value::as_str) == Some(want)
                        })
                        .cloned()
                        .collect(),
                ))
            }
            Value::List(l) if matches!(name, "Names" | "Values") => {
                let key = if name == "Names" { "Name" } else { "Value" };
                l.iter()
                    .map(|p| p.field(key))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::List)
            }
            Value::Nil => Ok(Value::Nil),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }
}

impl Value {
    /// Calls a method that takes arguments: Alertmanager's `KV.Remove(keys)`, which returns
    /// the label set without the named labels (`.CommonLabels.Remove .GroupLabels.Names`).
    pub fn call_method(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        match (self, name) {
            (Value::Map(m), "Remove") => {
                let [Value::List(keys)] = args else {
                    return Err("Remove takes one list of label names".into());
                };
                let mut out = m.clone();
                for k in keys {
                    if let Some(k) = k.as_str() {
                        out.remove(k);
                    }
                }
                Ok(Value::Map(out))
            }
            _ => Err(format!(
                "can't call method {name} with arguments on type {}",
                self.type_name()
            )),
        }
    }
}

impl std::fmt::Display for Value {
    /// As Go's `fmt.Sprint`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Nil => f.write_str("<no value>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&crate::fmt::format_float_v(*x)),
            Value::Str(s) => f.write_str(s),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
