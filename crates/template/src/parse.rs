//! Builds the tree of a template from its lexed pieces.

use std::collections::HashMap;
use std::sync::Arc;

use crate::lex::{lex, Piece, Tok};
use crate::{Error, Value};

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipeline>),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub line: usize,
    /// Variables declared (`:=`) or assigned (`=`) from the result.
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    Sub(Box<Pipeline>, Vec<String>),
}

struct Parser<'a> {
    name: &'a str,
    pieces: Vec<Piece>,
    i: usize,
    defined: &'a mut HashMap<String, Arc<Vec<Node>>>,
}

/// What ended a list: `{{end}}`, `{{else …}}` (with the rest of its tokens), or the text's end.
enum End {
    Eof,
    Stop,
    Else(Vec<Tok>, usize),
}

pub(crate) fn parse(
    name: &str,
    text: &str,
    defined: &mut HashMap<String, Arc<Vec<Node>>>,
) -> Result<Vec<Node>, Error> {
    let pieces = lex(text).map_err(|(line, msg)| Error::Parse {
        name: name.to_string(),
        line,
        msg,
    })?;
    let mut p = Parser {
        name,
        pieces,
        i: 0,
        defined,
    };
    let (nodes, end, line) = p.list(true)?;
    match end {
        End::Eof => Ok(nodes),
        End::Stop => Err(p.err(line, "unexpected {{end}}")),
        End::Else(..) => Err(p.err(line, "unexpected {{else}}")),
    }
}

impl Parser<'_> {
    fn err(&self, line: usize, msg: impl Into<String>) -> Error {
        Error::Parse {
            name: self.name.to_string(),
            line,
            msg: msg.into(),
        }
    }

    fn list(&mut self, top: bool) -> Result<(Vec<Node>, End, usize), Error> {
        let mut nodes = Vec::new();
        while self.i < self.pieces.len() {
            let piece = self.pieces[self.i].clone();
            self.i += 1;
            let (toks, line) = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Action(toks, line) => (toks, line),
            };
            let kw = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                None => return Err(self.err(line, "missing value for command")),
                _ => "",
            };
            let rest = toks[1..].to_vec();
            match kw {
                "end" => return Ok((nodes, End::Stop, line)),
                "else" => return Ok((nodes, End::Else(rest, line), line)),
                "if" | "range" | "with" => nodes.push(self.control(kw, rest, line)?),
                "break" => nodes.push(Node::Break),
                "continue" => nodes.push(Node::Continue),
                "define" => {
                    if !top {
                        return Err(self.err(line, "define must be at the top level"));
                    }
                    let name = match rest.as_slice() {
                        [Tok::Str(n)] => n.clone(),
                        _ => return Err(self.err(line, "define needs a quoted name")),
                    };
                    let (body, end, l) = self.list(false)?;
                    if !matches!(end, End::Stop) {
                        return Err(self.err(l, format!("unexpected end in define {name:?}")));
                    }
                    self.defined.insert(name, Arc::new(body));
                }
                "template" | "block" => {
                    let (name, pipe) = match rest.split_first() {
                        Some((Tok::Str(n), [])) => (n.clone(), None),
                        Some((Tok::Str(n), more)) => (n.clone(), Some(self.pipeline(more, line)?)),
                        _ => return Err(self.err(line, format!("{kw} needs a quoted name"))),
                    };
                    if kw == "block" {
                        let (body, end, l) = self.list(false)?;
                        if !matches!(end, End::Stop) {
                            return Err(self.err(l, format!("unexpected end in block {name:?}")));
                        }
                        self.defined.insert(name.clone(), Arc::new(body));
                    }
                    nodes.push(Node::Template(name, pipe));
                }
                _ => nodes.push(Node::Action(self.pipeline(&toks, line)?)),
            }
        }
        Ok((nodes, End::Eof, 0))
    }

    fn control(&mut self, kw: &str, toks: Vec<Tok>, line: usize) -> Result<Node, Error> {
        let pipe = self.pipeline(&toks, line)?;
        let (body, end, _) = self.list(false)?;
        let els = match end {
            End::Eof => return Err(self.err(line, format!("unexpected EOF in {kw}"))),
            End::Stop => Vec::new(),
            End::Else(rest, l2) => match rest.first() {
                // `{{else if …}}` / `{{else with …}}`: a nested control sharing the `{{end}}`.
                Some(Tok::Ident(k))
                    if (k == "if" && kw == "if") || (k == "with" && kw == "with") =>
                {
                    vec![self.control(&k.clone(), rest[1..].to_vec(), l2)?]
                }
                None => {
                    let (els, end, l3) = self.list(false)?;
                    match end {
                        End::Stop => {}
                        End::Eof => return Err(self.err(line, format!("unexpected EOF in {kw}"))),
                        End::Else(..) => {
                            return Err(self.err(l3, format!("expected end; found else in {kw}")))
                        }
                    }
                    els
                }
                _ => return Err(self.err(l2, "unexpected tokens after else")),
            },
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, els),
            "range" => Node::Range(pipe, body, els),
            _ => Node::With(pipe, body, els),
        })
    }

    fn pipeline(&self, toks: &[Tok], line: usize) -> Result<Pipeline, Error> {
        let mut vars = Vec::new();
        let mut assign = false;
        let mut rest = toks;
        // `$x :=`, `$i, $v :=`, `$x =`
        let decl_end = toks
            .iter()
            .position(|t| matches!(t, Tok::Declare | Tok::Assign));
        if let Some(d) = decl_end {
            let head = &toks[..d];
            let ok = head.iter().enumerate().all(|(i, t)| match t {
                Tok::Var(_, chain) => i % 2 == 0 && chain.is_empty(),
                Tok::Comma => i % 2 == 1,
                _ => false,
            });
            if ok && !head.is_empty() && head.len() <= 3 {
                vars = head
                    .iter()
                    .filter_map(|t| match t {
                        Tok::Var(n, _) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                assign = matches!(toks[d], Tok::Assign);
                rest = &toks[d + 1..];
            }
        }
        let mut cmds = Vec::new();
        let mut cur = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            match &rest[i] {
                Tok::Pipe => {
                    if cur.is_empty() {
                        return Err(self.err(line, "missing command before |"));
                    }
                    cmds.push(std::mem::take(&mut cur));
                    i += 1;
                }
                _ => {
                    let (arg, next) = self.operand(rest, i, line)?;
                    cur.push(arg);
                    i = next;
                }
            }
        }
        if cur.is_empty() {
            return Err(self.err(line, "missing value for command"));
        }
        cmds.push(cur);
        Ok(Pipeline {
            line,
            vars,
            assign,
            cmds,
        })
    }

    fn operand(&self, toks: &[Tok], i: usize, line: usize) -> Result<(Arg, usize), Error> {
        Ok(match &toks[i] {
            Tok::Field(c) => (Arg::Field(c.clone()), i + 1),
            Tok::Var(n, c) => (Arg::Var(n.clone(), c.clone()), i + 1),
            Tok::Str(s) => (Arg::Lit(Value::Str(s.clone())), i + 1),
            Tok::Int(v) => (Arg::Lit(Value::Int(*v)), i + 1),
            Tok::Float(v) => (Arg::Lit(Value::Float(*v)), i + 1),
            Tok::Ident(id) => match id.as_str() {
                "true" => (Arg::Lit(Value::Bool(true)), i + 1),
                "false" => (Arg::Lit(Value::Bool(false)), i + 1),
                "nil" => (Arg::Lit(Value::Nil), i + 1),
                _ => (Arg::Ident(id.clone()), i + 1),
            },
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                loop {
                    match toks.get(j) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen(_)) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        None => return Err(self.err(line, "unclosed left paren")),
                        _ => {}
                    }
                    j += 1;
                }
                let chain = match &toks[j] {
                    Tok::RParen(c) => c.clone(),
                    _ => unreachable!(),
                };
                let inner = self.pipeline(&toks[i + 1..j], line)?;
                (Arg::Sub(Box::new(inner), chain), j + 1)
            }
            Tok::RParen(_) => return Err(self.err(line, "unexpected right paren")),
            other => return Err(self.err(line, format!("unexpected {other:?} in operand"))),
        })
    }
}
