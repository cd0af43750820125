//! Templated text: where a template's values go (plain text, PromQL, JSON) and the scope they come from.

use super::*;

/// What a templated string becomes, and so how values expanded into it are escaped
/// ([`crate::escape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Plain text: an argument, a header, a message. Values go in as they are.
    Text,
    /// A PromQL query: values are escaped for the string literal they land in.
    Promql,
    /// A JSON document: values are escaped as JSON strings.
    Json,
}

/// A string that may hold a template (`{{ $labels.instance }}`), expanded per execution with
/// `$labels`, `$annotations`, `$params`, `$target` and `$execution` defined.
#[derive(Debug, Clone)]
pub enum Text {
    Plain(String),
    Template {
        template: Arc<Template>,
        lang: Lang,
        /// The string as written (without the variable prelude).
        source: String,
    },
}

/// What templates see.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
    pub target: String,
    pub execution: String,
}

impl Text {
    pub(super) fn parse(field: &str, s: &str) -> Result<Text, String> {
        Self::parse_as(field, s, Lang::Text)
    }

    /// A PromQL query whose template values are escaped for where they land.
    pub(super) fn promql(field: &str, s: &str) -> Result<Text, String> {
        Self::parse_as(field, s, Lang::Promql)
    }

    pub(super) fn parse_as(field: &str, s: &str, lang: Lang) -> Result<Text, String> {
        if !s.contains("{{") {
            return Ok(Text::Plain(s.to_string()));
        }
        let prelude = "{{$labels := .labels}}{{$annotations := .annotations}}{{$params := .params}}{{$target := .target}}{{$execution := .execution}}";
        let t = Template::parse(field, &format!("{prelude}{s}"))
            .map_err(|e| format!("{field}: invalid template: {e}"))?;
        t.check_functions(&funcs())
            .map_err(|e| format!("{field}: {e}"))?;
        Ok(Text::Template {
            template: Arc::new(t),
            lang,
            source: s.to_string(),
        })
    }

    /// Expands the text; an error names what failed.
    pub fn expand(&self, scope: &Scope) -> Result<String, String> {
        match self {
            Text::Plain(s) => Ok(s.clone()),
            Text::Template { template, lang, .. } => {
                let data = TValue::map([
                    ("labels", TValue::str_map(&scope.labels)),
                    ("annotations", TValue::str_map(&scope.annotations)),
                    ("params", TValue::str_map(&scope.params)),
                    ("target", TValue::Str(scope.target.clone())),
                    ("execution", TValue::Str(scope.execution.clone())),
                ]);
                let r = match lang {
                    Lang::Text => template.execute(&data, &funcs(), &[]),
                    Lang::Promql => {
                        template.execute_escaped(&data, &funcs(), &[], &crate::escape::promql)
                    }
                    Lang::Json => {
                        template.execute_escaped(&data, &funcs(), &[], &crate::escape::json)
                    }
                };
                r.map_err(|e| e.to_string())
            }
        }
    }

    /// Whether the text holds a template.
    pub fn is_template(&self) -> bool {
        matches!(self, Text::Template { .. })
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        match self {
            Text::Plain(s) => s,
            Text::Template { source, .. } => source,
        }
    }
}

pub(super) fn funcs() -> Funcs {
    Funcs::prometheus()
}
