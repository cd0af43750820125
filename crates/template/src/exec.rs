//! Runs a parsed template.

use crate::parse::{Arg, Node, Pipeline};
use crate::{Funcs, Template, Value};

pub(crate) struct ExecError(pub String);

impl From<String> for ExecError {
    fn from(s: String) -> Self {
        ExecError(s)
    }
}

/// How a list of nodes ended: normally, or by `{{break}}`/`{{continue}}` inside a range.
#[derive(PartialEq)]
pub(crate) enum Flow {
    Normal,
    Break,
    Continue,
}

/// Nested `{{template}}` calls allowed before execution stops (a template calling itself).
const MAX_DEPTH: usize = 1000;

/// Escapes a value printed by an action for where it lands: given the output so far (which
/// tells whether the value is inside a string literal, and of which kind) and the value.
pub type Escaper<'a> = &'a dyn Fn(&str, &str) -> Result<String, String>;

pub(crate) struct State<'a> {
    tmpl: &'a Template,
    funcs: &'a Funcs,
    vars: Vec<(String, Value)>,
    depth: usize,
    escape: Option<Escaper<'a>>,
}

fn walk_chain(mut v: Value, chain: &[String]) -> Result<Value, ExecError> {
    for f in chain {
        v = v.field(f)?;
    }
    Ok(v)
}

impl<'a> State<'a> {
    pub(crate) fn new(
        tmpl: &'a Template,
        funcs: &'a Funcs,
        data: &Value,
        vars: &[(&str, Value)],
    ) -> Self {
        let mut all = vec![(String::new(), data.clone())];
        all.extend(vars.iter().map(|(n, v)| (n.to_string(), v.clone())));
        State {
            tmpl,
            funcs,
            vars: all,
            depth: 0,
            escape: None,
        }
    }

    /// Every value an action prints goes through `escape` first.
    pub(crate) fn with_escaper(mut self, escape: Escaper<'a>) -> Self {
        self.escape = Some(escape);
        self
    }

    pub(crate) fn walk_list(
        &mut self,
        nodes: &[Node],
        dot: &Value,
        out: &mut String,
    ) -> Result<Flow, ExecError> {
        for n in nodes {
            let flow = self.walk(n, dot, out)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs `nodes` in a variable scope that ends with them.
    fn scoped(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<Flow, ExecError> {
        let mark = self.vars.len();
        let r = self.walk_list(nodes, dot, out);
        self.vars.truncate(mark);
        r
    }

    fn walk(&mut self, node: &Node, dot: &Value, out: &mut String) -> Result<Flow, ExecError> {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = self.pipeline(p, dot)?;
                if p.vars.is_empty() {
                    match self.escape {
                        Some(escape) => {
                            let text = escape(out, &v.to_string())?;
                            out.push_str(&text);
                        }
                        None => out.push_str(&v.to_string()),
                    }
                }
            }
            Node::If(p, then, els) | Node::With(p, then, els) => {
                let mark = self.vars.len();
                let v = self.pipeline(p, dot)?;
                let flow = if v.truthy() {
                    let d = if matches!(node, Node::With(..)) {
                        v
                    } else {
                        dot.clone()
                    };
                    self.scoped(then, &d, out)?
                } else {
                    self.scoped(els, dot, out)?
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range(p, body, els) => return self.range(p, body, els, dot, out),
            Node::Template(name, p) => {
                let nodes = self
                    .tmpl
                    .defined
                    .get(name)
                    .cloned()
                    .ok_or_else(|| ExecError(format!("no such template {name:?}")))?;
                let d = match p {
                    Some(p) => self.pipeline(p, dot)?,
                    None => Value::Nil,
                };
                if self.depth >= MAX_DEPTH {
                    return Err(ExecError(format!(
                        "exceeded maximum template depth ({MAX_DEPTH})"
                    )));
                }
                let saved = std::mem::replace(&mut self.vars, vec![(String::new(), d.clone())]);
                self.depth += 1;
                // Nested calls may go MAX_DEPTH deep: grow the stack rather than overflow it.
                let r = stacker::maybe_grow(64 << 10, 2 << 20, || self.walk_list(&nodes, &d, out));
                self.depth -= 1;
                self.vars = saved;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        p: &Pipeline,
        body: &[Node],
        els: &[Node],
        dot: &Value,
        out: &mut String,
    ) -> Result<Flow, ExecError> {
        // The range's own variables are set per element, not from the whole pipeline.
        let mut bare = p.clone();
        bare.vars.clear();
        let v = self.pipeline(&bare, dot)?;
        // Integers are counted, not collected, so `range 1000000000` costs no memory.
        let items: Box<dyn Iterator<Item = (Value, Value)>> = match v {
            Value::List(l) => Box::new(
                l.into_iter()
                    .enumerate()
                    .map(|(i, v)| (Value::Int(i as i64), v)),
            ),
            Value::Map(m) => Box::new(m.into_iter().map(|(k, v)| (Value::Str(k), v))),
            Value::Int(n) => Box::new((0..n.max(0)).map(|i| (Value::Int(i), Value::Int(i)))),
            Value::Nil => Box::new(std::iter::empty()),
            other => return Err(ExecError(format!("range can't iterate over {other}"))),
        };
        let mut items = items.peekable();
        if items.peek().is_none() {
            return Ok(match self.scoped(els, dot, out)? {
                Flow::Normal => Flow::Normal,
                // break/continue in a range's else belong to an enclosing range.
                f => f,
            });
        }
        for (k, elem) in items {
            let mark = self.vars.len();
            match p.vars.len() {
                0 => {}
                1 => self.vars.push((p.vars[0].clone(), elem.clone())),
                _ => {
                    self.vars.push((p.vars[0].clone(), k));
                    self.vars.push((p.vars[1].clone(), elem.clone()));
                }
            }
            let flow = self.walk_list(body, &elem, out);
            self.vars.truncate(mark);
            match flow? {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        Ok(Flow::Normal)
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, ExecError> {
        let mut v: Option<Value> = None;
        for cmd in &p.cmds {
            v = Some(self.command(cmd, dot, v)?);
        }
        let v = v.unwrap_or_default();
        if let Some(name) = p.vars.first() {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(ExecError(format!("undefined variable: ${name}"))),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, ExecError> {
        if let Some(Arg::Ident(name)) = args.first() {
            return self.call(name, &args[1..], dot, piped);
        }
        if args.len() > 1 || piped.is_some() {
            // `.Labels.Remove .Other.Names`: a method called with arguments.
            let chain = match &args[0] {
                Arg::Field(c) if !c.is_empty() => Some((dot.clone(), c)),
                Arg::Var(name, c) if !c.is_empty() => Some((
                    self.vars
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                        .ok_or_else(|| ExecError(format!("undefined variable: ${name}")))?,
                    c,
                )),
                _ => None,
            };
            if let Some((base, chain)) = chain {
                let (method, path) = chain.split_last().expect("non-empty chain");
                if method == "Remove" {
                    let recv = walk_chain(base, path)?;
                    let mut vals = Vec::with_capacity(args.len());
                    for a in &args[1..] {
                        vals.push(self.arg(a, dot)?);
                    }
                    if let Some(p) = piped {
                        vals.push(p);
                    }
                    return recv.call_method(method, &vals).map_err(ExecError);
                }
            }
            return Err(ExecError(format!(
                "can't give argument to non-function {}",
                describe(&args[0])
            )));
        }
        self.arg(&args[0], dot)
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, ExecError> {
        // `and`/`or` evaluate their arguments only as far as needed, as Go 1.18+ does.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(piped.is_some());
            if n == 0 {
                return Err(ExecError(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.arg(a, dot)?;
                if last.truthy() != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let f = self
            .funcs
            .get(name)
            .ok_or_else(|| ExecError(format!("function {name:?} not defined")))?;
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(a, dot)?);
        }
        if let Some(p) = piped {
            vals.push(p);
        }
        f(&vals).map_err(|e| ExecError(format!("error calling {name}: {e}")))
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, ExecError> {
        match a {
            Arg::Field(chain) => walk_chain(dot.clone(), chain),
            Arg::Var(name, chain) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| ExecError(format!("undefined variable: ${name}")))?;
                walk_chain(v, chain)
            }
            Arg::Ident(name) => self.call(name, &[], dot, None),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Sub(p, chain) => {
                let v = self.pipeline(p, dot)?;
                walk_chain(v, chain)
            }
        }
    }
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Field(c) => format!(".{}", c.join(".")),
        Arg::Var(n, _) => format!("${n}"),
        Arg::Lit(v) => v.to_string(),
        _ => "value".into(),
    }
}

/// Names of the functions a template calls, for checking them before it runs.
pub(crate) fn called_functions(nodes: &[Node], out: &mut Vec<(String, usize)>) {
    fn pipe(p: &Pipeline, out: &mut Vec<(String, usize)>) {
        for cmd in &p.cmds {
            for a in cmd {
                match a {
                    Arg::Ident(n) => out.push((n.clone(), p.line)),
                    Arg::Sub(inner, _) => pipe(inner, out),
                    _ => {}
                }
            }
        }
    }
    for n in nodes {
        match n {
            Node::Action(p) => pipe(p, out),
            Node::If(p, a, b) | Node::Range(p, a, b) | Node::With(p, a, b) => {
                pipe(p, out);
                called_functions(a, out);
                called_functions(b, out);
            }
            Node::Template(_, Some(p)) => pipe(p, out),
            _ => {}
        }
    }
}
