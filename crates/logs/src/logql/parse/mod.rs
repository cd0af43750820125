//! A recursive-descent LogQL parser. Errors carry the position of the token that could not be
//! read, reported as Loki does: `parse error at line 1, col 12: syntax error: …`.

use medic_model::{MatchType, Matcher};

mod metric;

use super::ast::*;
use super::lex::{lex, Tok, Token};
use super::parsers::Pattern;
use super::ParseError;

/// Queries nest at most this deep, so a hostile query cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Parses a LogQL query.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        src,
        toks: lex(src)?,
        i: 0,
        depth: 0,
    };
    let e = p.expr()?;
    p.expect(&Tok::Eof)?;
    Ok(e)
}

/// Parses a stream selector alone, `{app="x", env=~"p.*"}` (Loki push's `labels` field).
pub fn parse_selector(src: &str) -> Result<Vec<Matcher>, ParseError> {
    let mut p = Parser {
        src,
        toks: lex(src)?,
        i: 0,
        depth: 0,
    };
    let m = p.selector()?;
    p.expect(&Tok::Eof)?;
    Ok(m)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].kind
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].kind
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.i].kind.clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError::at(self.src, self.toks[self.i].pos, msg)
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        self.err(format!(
            "syntax error: unexpected {}, expecting {wanted}",
            self.peek().describe()
        ))
    }

    fn expect(&mut self, t: &Tok) -> Result<(), ParseError> {
        if self.peek() == t {
            self.next();
            Ok(())
        } else if *t == Tok::Eof {
            Err(self.err(format!(
                "syntax error: unexpected {}",
                self.peek().describe()
            )))
        } else {
            Err(self.unexpected(&Tok::describe(t)))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected("IDENTIFIER")),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected("STRING")),
        }
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == name)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("query nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// A whole query: a log query, or a metric expression.
    fn expr(&mut self) -> Result<Expr, ParseError> {
        if self.starts_log_expr() {
            let log = self.log_expr()?;
            if *self.peek() != Tok::Eof {
                return Err(self.err(format!(
                    "syntax error: unexpected {} after a log query",
                    self.peek().describe()
                )));
            }
            return Ok(Expr::Log(log));
        }
        Ok(Expr::Metric(self.binary(0)?))
    }

    fn starts_log_expr(&self) -> bool {
        let mut n = 0;
        while *self.peek_at(n) == Tok::LParen {
            n += 1;
        }
        *self.peek_at(n) == Tok::LBrace
    }

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        if *self.peek() == Tok::LParen {
            self.enter()?;
            self.next();
            let e = self.log_expr()?;
            self.expect(&Tok::RParen)?;
            self.depth -= 1;
            return Ok(e);
        }
        let matchers = self.selector()?;
        let stages = self.pipeline()?;
        Ok(LogExpr { matchers, stages })
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, ParseError> {
        self.expect(&Tok::LBrace)?;
        let mut out = Vec::new();
        while *self.peek() != Tok::RBrace {
            let pos = self.toks[self.i].pos;
            let name = self.ident()?;
            let kind = self.match_op()?;
            let value = self.string()?;
            out.push(
                Matcher::new(kind, name, value)
                    .map_err(|e| ParseError::at(self.src, pos, e.to_string()))?,
            );
            if *self.peek() == Tok::Comma {
                self.next();
            } else if *self.peek() != Tok::RBrace {
                return Err(self.unexpected("\",\" or \"}\""));
            }
        }
        self.next();
        if out.is_empty() {
            return Err(self.err("syntax error: a stream selector needs at least one matcher"));
        }
        if out.iter().all(|m| m.matches_empty()) {
            return Err(self.err(
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        Ok(out)
    }

    fn match_op(&mut self) -> Result<MatchType, ParseError> {
        let k = match self.peek() {
            Tok::Eq => MatchType::Equal,
            Tok::Neq => MatchType::NotEqual,
            Tok::Re => MatchType::Regexp,
            Tok::Nre => MatchType::NotRegexp,
            _ => return Err(self.unexpected("\"=\", \"!=\", \"=~\" or \"!~\"")),
        };
        self.next();
        Ok(k)
    }

    /// Stages until something that is not one (`[`, `)`, end). `| unwrap` stops too.
    fn pipeline(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut stages = Vec::new();
        loop {
            match self.peek() {
                Tok::PipeExact | Tok::Neq | Tok::PipeMatch | Tok::Nre => {
                    stages.push(Stage::LineFilter(self.line_filter()?));
                }
                Tok::Pipe if matches!(self.peek_at(1), Tok::Ident(s) if s == "unwrap") => break,
                Tok::Pipe => {
                    self.next();
                    stages.push(self.stage()?);
                }
                _ => break,
            }
        }
        Ok(stages)
    }

    fn line_filter(&mut self) -> Result<LineFilter, ParseError> {
        let op = match self.next() {
            Tok::PipeExact => FilterOp::Contains,
            Tok::Neq => FilterOp::NotContains,
            Tok::PipeMatch => FilterOp::Matches,
            _ => FilterOp::NotMatches,
        };
        let mut alternatives = vec![self.filter_value(op)?];
        while self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_)) {
            self.next();
            alternatives.push(self.filter_value(op)?);
        }
        Ok(LineFilter { op, alternatives })
    }

    fn filter_value(&mut self, op: FilterOp) -> Result<FilterValue, ParseError> {
        let pos = self.toks[self.i].pos;
        let text = self.string()?;
        let regex = match op {
            FilterOp::Matches | FilterOp::NotMatches => Some(
                regex::RegexBuilder::new(&text)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| ParseError::at(self.src, pos, format!("invalid regex: {e}")))?,
            ),
            _ => None,
        };
        Ok(FilterValue { text, regex })
    }

    fn stage(&mut self) -> Result<Stage, ParseError> {
        let pos = self.toks[self.i].pos;
        let bad = |p: &Self, e: String| ParseError::at(p.src, pos, e);
        let name = match self.peek().clone() {
            Tok::Ident(s) => s,
            Tok::LParen => return Ok(Stage::LabelFilter(self.label_filter()?)),
            _ => return Err(self.unexpected("a parser, a formatter or a label filter")),
        };
        if is_filter_op(self.peek_at(1)) {
            return Ok(Stage::LabelFilter(self.label_filter()?));
        }
        self.next();
        Ok(match name.as_str() {
            "json" => {
                let mut params = Vec::new();
                for (label, path) in self.params()? {
                    let parts = super::parsers::parse_json_path(&path)
                        .map_err(|e| bad(self, e))?;
                    params.push((label, parts));
                }
                Stage::Json(params)
            }
            "logfmt" => {
                while matches!(self.peek(), Tok::Sub) {
                    // `--strict`, `--keep-empty`: accepted, medic's logfmt is lenient.
                    self.next();
                    self.next();
                    self.ident()?;
                }
                Stage::Logfmt(self.params()?)
            }
            "regexp" => {
                let re = self.string()?;
                let r = regex::RegexBuilder::new(&re)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| bad(self, format!("invalid regex: {e}")))?;
                if r.capture_names().flatten().next().is_none() {
                    return Err(bad(self, "the regexp parser needs at least one named capture (?P<name>…)".into()));
                }
                Stage::Regexp(r)
            }
            "pattern" => {
                let text = self.string()?;
                Stage::Pattern(Pattern::parse(&text).map_err(|e| bad(self, e))?)
            }
            "unpack" => Stage::Unpack,
            "decolorize" => Stage::Decolorize,
            "line_format" => {
                let text = self.string()?;
                let t = medic_template::Template::parse("line_format", &text)
                    .map_err(|e| bad(self, e.to_string()))?;
                Stage::LineFormat(t)
            }
            "label_format" => Stage::LabelFormat(self.label_fmts()?),
            "drop" => Stage::Drop(self.label_sels()?),
            "keep" => Stage::Keep(self.label_sels()?),
            other => {
                return Err(bad(
                    self,
                    format!("syntax error: unexpected IDENTIFIER {other:?}, expecting a parser (json, logfmt, regexp, pattern, unpack), line_format, label_format, drop, keep, decolorize or a label filter"),
                ))
            }
        })
    }

    /// `a="x", b="y"` after `json`/`logfmt` (a bare name means `name="name"`).
    fn params(&mut self) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::new();
        while let Tok::Ident(_) = self.peek() {
            if !matches!(
                self.peek_at(1),
                Tok::Eq | Tok::Comma | Tok::Pipe | Tok::Eof | Tok::RParen | Tok::LBracket
            ) {
                break;
            }
            let name = self.ident()?;
            let path = if *self.peek() == Tok::Eq {
                self.next();
                self.string()?
            } else {
                name.clone()
            };
            out.push((name, path));
            if *self.peek() != Tok::Comma {
                break;
            }
            self.next();
        }
        Ok(out)
    }

    fn label_fmts(&mut self) -> Result<Vec<LabelFmt>, ParseError> {
        let mut out = Vec::new();
        loop {
            let dst = self.ident()?;
            self.expect(&Tok::Eq)?;
            let pos = self.toks[self.i].pos;
            out.push(match self.next() {
                Tok::Ident(src) => LabelFmt::Rename { dst, src },
                Tok::Str(text) => {
                    let tmpl = medic_template::Template::parse("label_format", &text)
                        .map_err(|e| ParseError::at(self.src, pos, e.to_string()))?;
                    LabelFmt::Template { dst, tmpl }
                }
                _ => {
                    return Err(ParseError::at(
                        self.src,
                        pos,
                        "syntax error: label_format expects a label name or a template string",
                    ))
                }
            });
            if *self.peek() != Tok::Comma {
                return Ok(out);
            }
            self.next();
        }
    }

    fn label_sels(&mut self) -> Result<Vec<LabelSel>, ParseError> {
        let mut out = Vec::new();
        loop {
            let pos = self.toks[self.i].pos;
            let name = self.ident()?;
            let matcher = if matches!(self.peek(), Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre) {
                let kind = self.match_op()?;
                let v = self.string()?;
                Some(
                    Matcher::new(kind, name.clone(), v)
                        .map_err(|e| ParseError::at(self.src, pos, e.to_string()))?,
                )
            } else {
                None
            };
            out.push(LabelSel { name, matcher });
            if *self.peek() != Tok::Comma {
                return Ok(out);
            }
            self.next();
        }
    }

    /// `a and b`, `a or b`, `a, b` (and), `a b`? no: Loki needs `and`, `,` or a space between
    /// filters; a space-separated sequence is read as `and`.
    fn label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        self.enter()?;
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.label_filter_primary()?;
        loop {
            if self.is_ident("and") || *self.peek() == Tok::Comma {
                self.next();
            } else if !(matches!(self.peek(), Tok::Ident(s) if s != "or" && s != "offset")
                && is_filter_op(self.peek_at(1)))
            {
                return Ok(lhs);
            }
            let rhs = self.label_filter_primary()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
    }

    fn label_filter_primary(&mut self) -> Result<LabelFilter, ParseError> {
        if *self.peek() == Tok::LParen {
            self.next();
            let f = self.label_filter()?;
            self.expect(&Tok::RParen)?;
            return Ok(f);
        }
        let pos = self.toks[self.i].pos;
        let name = self.ident()?;
        let op_tok = self.next();
        let str_kind = match op_tok {
            Tok::Eq => Some(MatchType::Equal),
            Tok::Re => Some(MatchType::Regexp),
            Tok::Nre => Some(MatchType::NotRegexp),
            Tok::Neq if matches!(self.peek(), Tok::Str(_)) => Some(MatchType::NotEqual),
            _ => None,
        };
        if let Some(kind) = str_kind {
            if let Tok::Str(v) = self.peek().clone() {
                self.next();
                let m = Matcher::new(kind, name, v)
                    .map_err(|e| ParseError::at(self.src, pos, e.to_string()))?;
                return Ok(LabelFilter::Str(m));
            }
        }
        let op = match op_tok {
            Tok::Eq | Tok::EqEq => CmpOp::Eq,
            Tok::Neq => CmpOp::Neq,
            Tok::Gt => CmpOp::Gt,
            Tok::Gte => CmpOp::Gte,
            Tok::Lt => CmpOp::Lt,
            Tok::Lte => CmpOp::Lte,
            _ => return Err(ParseError::at(
                self.src,
                pos,
                "syntax error: a label filter needs an operator (=, !=, =~, !~, ==, >, >=, <, <=)",
            )),
        };
        let neg = if *self.peek() == Tok::Sub {
            self.next();
            -1.0
        } else {
            1.0
        };
        let (value, kind) = match self.next() {
            Tok::Number(n) => (n, NumKind::Number),
            Tok::Duration(d) => (d, NumKind::Duration),
            Tok::Bytes(b) => (b, NumKind::Bytes),
            _ => {
                self.i -= 1;
                return Err(self.unexpected("a number, duration or byte size"));
            }
        };
        Ok(LabelFilter::Num {
            name,
            op,
            value: neg * value,
            kind,
        })
    }
}

/// Whether `t` is an operator of a label filter (`name <op> value`).
fn is_filter_op(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Eq
            | Tok::Neq
            | Tok::Re
            | Tok::Nre
            | Tok::EqEq
            | Tok::Gt
            | Tok::Gte
            | Tok::Lt
            | Tok::Lte
    )
}
