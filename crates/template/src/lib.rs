//! Go's `text/template`, as far as Prometheus rule files and Alertmanager configurations use it:
//! text and `{{ }}` actions with `{{-`/`-}}` trimming and comments, pipelines, variables
//! (`$x := …`, `$x = …`), field chains on maps (`.Labels.job`, `$labels.job`), literals,
//! parenthesised pipelines, `if`/`else if`/`else`, `range` (with `$i, $v :=`, `else`, `break`,
//! `continue`), `with`, `define`/`template`/`block`, and Go's built-in functions (`and or not len
//! index print printf println eq ne lt le gt ge html js urlquery slice`). Values print as Go's
//! `fmt` prints them, and `printf` follows Go's verbs.
//!
//! Functions are supplied by the caller as a [`Funcs`] map; [`funcs::prometheus`] has the
//! `humanize*`, string and time functions both Prometheus and Alertmanager offer.
//!
//! ```
//! use medic_template::{Template, Value, Funcs};
//! let t = Template::parse("t", "{{ .name | printf \"%q\" }} is {{ if gt .n 1.0 }}big{{ else }}small{{ end }}").unwrap();
//! let data = Value::map([("name", Value::from("x")), ("n", Value::Float(2.0))]);
//! assert_eq!(t.execute(&data, &Funcs::builtin(), &[]).unwrap(), "\"x\" is big");
//! ```

mod exec;
pub mod fmt;
pub mod funcs;
mod lex;
mod parse;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

pub use exec::Escaper;
pub use funcs::Funcs;
pub use value::Value;

/// A template failed to parse or to execute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not a valid template; `line` is 1-based within the template text.
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        name: String,
        line: usize,
        msg: String,
    },
    /// Execution failed (an unknown function, a function's error, a wrong type).
    #[error("template: {name}: executing: {msg}")]
    Exec { name: String, msg: String },
}

/// A parsed template with the templates it defines (`{{ define "x" }}`).
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    root: Arc<Vec<parse::Node>>,
    defined: HashMap<String, Arc<Vec<parse::Node>>>,
}

impl Template {
    /// Parses `text`; `name` appears in errors.
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        let mut t = Template {
            name: name.to_string(),
            root: Arc::new(Vec::new()),
            defined: HashMap::new(),
        };
        let root = parse::parse(name, text, &mut t.defined)?;
        t.root = Arc::new(root);
        Ok(t)
    }

    /// Parses `text` as a new template that can call every template `self` defines (a message
    /// field of an Alertmanager receiver, over the default and user templates).
    pub fn parse_with(&self, name: &str, text: &str) -> Result<Self, Error> {
        let mut defined = self.defined.clone();
        let root = parse::parse(name, text, &mut defined)?;
        Ok(Template {
            name: name.to_string(),
            root: Arc::new(root),
            defined,
        })
    }

    /// Adds the `define`d templates of another text (Alertmanager's `templates:` files).
    pub fn add_definitions(&mut self, name: &str, text: &str) -> Result<(), Error> {
        parse::parse(name, text, &mut self.defined)?;
        Ok(())
    }

    /// Fails if the template calls a function `funcs` does not have (Go reports this when
    /// parsing; a rule checker wants it before the rule ever runs).
    pub fn check_functions(&self, funcs: &Funcs) -> Result<(), Error> {
        let mut called = Vec::new();
        exec::called_functions(&self.root, &mut called);
        for nodes in self.defined.values() {
            exec::called_functions(nodes, &mut called);
        }
        for (f, line) in called {
            if f != "and" && f != "or" && funcs.get(&f).is_none() {
                return Err(Error::Parse {
                    name: self.name.clone(),
                    line,
                    msg: format!("function {f:?} not defined"),
                });
            }
        }
        Ok(())
    }

    /// Whether a template of this name is defined.
    pub fn has_definition(&self, name: &str) -> bool {
        self.defined.contains_key(name)
    }

    /// Runs the template on `data` with `funcs`; `vars` are predefined variables (without `$`).
    pub fn execute(
        &self,
        data: &Value,
        funcs: &Funcs,
        vars: &[(&str, Value)],
    ) -> Result<String, Error> {
        self.execute_nodes(&self.root, data, funcs, vars)
    }

    /// Runs the defined template `name` (as `{{ template "name" . }}` would).
    pub fn execute_defined(
        &self,
        name: &str,
        data: &Value,
        funcs: &Funcs,
    ) -> Result<String, Error> {
        let nodes = self.defined.get(name).ok_or_else(|| Error::Exec {
            name: self.name.clone(),
            msg: format!("no such template {name:?}"),
        })?;
        self.execute_nodes(nodes, data, funcs, &[])
    }

    /// Runs the template like [`Template::execute`], passing every value an action prints
    /// through `escape` (output so far, value) — contextual escaping, as Go's html/template does,
    /// so that data cannot change the structure of the text it lands in.
    pub fn execute_escaped(
        &self,
        data: &Value,
        funcs: &Funcs,
        vars: &[(&str, Value)],
        escape: Escaper<'_>,
    ) -> Result<String, Error> {
        let mut out = String::new();
        let mut st = exec::State::new(self, funcs, data, vars).with_escaper(escape);
        st.walk_list(&self.root, data, &mut out)
            .map_err(|msg| Error::Exec {
                name: self.name.clone(),
                msg: msg.0,
            })?;
        Ok(out)
    }

    fn execute_nodes(
        &self,
        nodes: &[parse::Node],
        data: &Value,
        funcs: &Funcs,
        vars: &[(&str, Value)],
    ) -> Result<String, Error> {
        let mut out = String::new();
        let mut st = exec::State::new(self, funcs, data, vars);
        st.walk_list(nodes, data, &mut out)
            .map_err(|msg| Error::Exec {
                name: self.name.clone(),
                msg: msg.0,
            })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, data: &Value) -> Result<String, Error> {
        Template::parse("t", text)?.execute(data, &Funcs::prometheus(), &[])
    }

    fn labels() -> Value {
        Value::map([
            (
                "Labels",
                Value::str_map([("instance", "db-1:9100"), ("job", "node")]),
            ),
            ("Value", Value::Float(0.98765)),
        ])
    }

    #[test]
    fn actions_pipelines_and_control() {
        let d = labels();
        assert_eq!(
            run("{{ .Labels.instance }} {{ .Value }}", &d).unwrap(),
            "db-1:9100 0.98765"
        );
        assert_eq!(
            run("{{ .Value | humanizePercentage }}", &d).unwrap(),
            "98.77%"
        );
        assert_eq!(run("{{ printf \"%.1f\" .Value }}", &d).unwrap(), "1.0");
        assert_eq!(
            run(
                "{{ if gt .Value 0.9 }}high{{ else if gt .Value 0.5 }}mid{{ else }}low{{ end }}",
                &d
            )
            .unwrap(),
            "high"
        );
        assert_eq!(
            run("{{ with .Labels.missing }}x{{ else }}none{{ end }}", &d).unwrap(),
            "none"
        );
        assert_eq!(
            run(
                "{{ range $k, $v := .Labels }}{{ $k }}={{ $v }};{{ end }}",
                &d
            )
            .unwrap(),
            "instance=db-1:9100;job=node;"
        );
        assert_eq!(
            run(
                "{{ range .Labels }}{{ if eq . \"node\" }}{{ break }}{{ end }}[{{ . }}]{{ end }}",
                &d
            )
            .unwrap(),
            "[db-1:9100]"
        );
        assert_eq!(run("a  {{- /* comment */ -}}  b", &d).unwrap(), "ab");
        assert_eq!(run("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", &d).unwrap(), "2");
        assert_eq!(run("{{ (.Labels).job | toUpper }}", &d).unwrap(), "NODE");
        assert_eq!(
            run("{{ reReplaceAll \"(.*):.*\" \"$1\" .Labels.instance }}", &d).unwrap(),
            "db-1"
        );
        assert_eq!(
            run("{{ and 1 0 }} {{ or 0 \"\" \"x\" }} {{ not true }}", &d).unwrap(),
            "0 x false"
        );
        assert_eq!(
            run("{{ len .Labels }} {{ index .Labels \"job\" }}", &d).unwrap(),
            "2 node"
        );
        assert_eq!(
            run(
                "{{ define \"x\" }}<{{ . }}>{{ end }}{{ template \"x\" .Labels.job }}",
                &d
            )
            .unwrap(),
            "<node>"
        );
        assert_eq!(
            run("{{ \"a\\tb\" }}{{ `raw\\n` }}", &d).unwrap(),
            "a\tbraw\\n"
        );
    }

    #[test]
    fn errors_say_where() {
        let e = Template::parse("t", "line1\n{{ if .x }}").unwrap_err();
        assert_eq!(e.to_string(), "template: t:2: unexpected EOF in if");
        let e = Template::parse("t", "{{ .x ").unwrap_err();
        assert!(e.to_string().contains("unclosed action"), "{e}");
        let e = run("{{ nosuch 1 }}", &Value::Nil).unwrap_err();
        assert!(
            e.to_string().contains("function \"nosuch\" not defined"),
            "{e}"
        );
        let t = Template::parse("t", "x\n{{ nosuch }}").unwrap();
        assert_eq!(
            t.check_functions(&Funcs::prometheus())
                .unwrap_err()
                .to_string(),
            "template: t:2: function \"nosuch\" not defined"
        );
        let e = run(
            "{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}",
            &Value::Nil,
        )
        .unwrap_err();
        assert!(e.to_string().contains("maximum template depth"), "{e}");
    }
}
