//! Metric expressions: binary operators by precedence, range and vector aggregations,
//! `vector()`, `label_replace()`.

use super::super::ast::*;
use super::super::lex::Tok;
use super::super::ParseError;
use super::Parser;

impl Parser<'_> {
    pub(super) fn binary(&mut self, min_prec: u8) -> Result<MetricExpr, ParseError> {
        self.enter()?;
        let mut lhs = self.unary()?;
        while let Some((op, prec, right_assoc)) = self.bin_op() {
            if prec < min_prec {
                break;
            }
            self.next();
            let mut return_bool = false;
            if self.is_ident("bool") {
                if !matches!(op, BinOp::Cmp(_)) {
                    return Err(self.err("bool modifier can only be used on comparison operators"));
                }
                self.next();
                return_bool = true;
            }
            let matching = if self.is_ident("on") || self.is_ident("ignoring") {
                let ignoring = self.is_ident("ignoring");
                self.next();
                Some((ignoring, self.label_list()?))
            } else {
                None
            };
            let rhs = self.binary(if right_assoc { prec } else { prec + 1 })?;
            lhs = MetricExpr::Binary(Box::new(Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
            }));
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn bin_op(&self) -> Option<(BinOp, u8, bool)> {
        Some(match self.peek() {
            Tok::Ident(s) if s == "or" => (BinOp::Or, 1, false),
            Tok::Ident(s) if s == "and" => (BinOp::And, 2, false),
            Tok::Ident(s) if s == "unless" => (BinOp::Unless, 2, false),
            Tok::EqEq => (BinOp::Cmp(CmpOp::Eq), 3, false),
            Tok::Neq => (BinOp::Cmp(CmpOp::Neq), 3, false),
            Tok::Gt => (BinOp::Cmp(CmpOp::Gt), 3, false),
            Tok::Gte => (BinOp::Cmp(CmpOp::Gte), 3, false),
            Tok::Lt => (BinOp::Cmp(CmpOp::Lt), 3, false),
            Tok::Lte => (BinOp::Cmp(CmpOp::Lte), 3, false),
            Tok::Add => (BinOp::Add, 4, false),
            Tok::Sub => (BinOp::Sub, 4, false),
            Tok::Mul => (BinOp::Mul, 5, false),
            Tok::Div => (BinOp::Div, 5, false),
            Tok::Mod => (BinOp::Mod, 5, false),
            Tok::Pow => (BinOp::Pow, 6, true),
            _ => return None,
        })
    }

    fn unary(&mut self) -> Result<MetricExpr, ParseError> {
        match self.peek().clone() {
            Tok::Sub | Tok::Add => {
                let neg = *self.peek() == Tok::Sub;
                self.next();
                // `- - - … 1` recurses too: bounded like every nesting.
                self.enter()?;
                let e = self.unary()?;
                self.depth -= 1;
                Ok(match e {
                    MetricExpr::Literal(n) => MetricExpr::Literal(if neg { -n } else { n }),
                    e if neg => MetricExpr::Binary(Box::new(Binary {
                        op: BinOp::Mul,
                        lhs: MetricExpr::Literal(-1.0),
                        rhs: e,
                        return_bool: false,
                        matching: None,
                    })),
                    e => e,
                })
            }
            Tok::Number(n) => {
                self.next();
                Ok(MetricExpr::Literal(n))
            }
            Tok::LParen => {
                self.next();
                let e = self.binary(0)?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Ident(name) => self.call(&name),
            Tok::LBrace => Err(self.err("syntax error: a log query cannot be used in a metric expression; wrap it in a range aggregation such as count_over_time({…}[5m])")),
            _ => Err(self.unexpected("a metric expression")),
        }
    }

    fn call(&mut self, name: &str) -> Result<MetricExpr, ParseError> {
        let pos = self.toks[self.i].pos;
        if let Some(op) = RangeOp::from_name(name) {
            self.next();
            return self.range_agg(op, pos);
        }
        if let Some(op) = VectorOp::from_name(name) {
            self.next();
            return self.vector_agg(op);
        }
        match name {
            "vector" => {
                self.next();
                self.expect(&Tok::LParen)?;
                let n = self.number()?;
                self.expect(&Tok::RParen)?;
                Ok(MetricExpr::VectorLit(n))
            }
            "label_replace" => {
                self.next();
                self.expect(&Tok::LParen)?;
                let expr = self.binary(0)?;
                let mut s = Vec::new();
                for _ in 0..4 {
                    self.expect(&Tok::Comma)?;
                    s.push(self.string()?);
                }
                self.expect(&Tok::RParen)?;
                let regex = regex::Regex::new(&format!("^(?s:{})$", s[3])).map_err(|e| {
                    ParseError::at(
                        self.src,
                        pos,
                        format!("invalid regex in label_replace: {e}"),
                    )
                })?;
                Ok(MetricExpr::LabelReplace(Box::new(LabelReplace {
                    expr,
                    dst: s[0].clone(),
                    replacement: s[1].clone(),
                    src: s[2].clone(),
                    regex,
                })))
            }
            other => Err(self.err(format!("syntax error: unknown function {other:?}"))),
        }
    }

    fn number(&mut self) -> Result<f64, ParseError> {
        let neg = if *self.peek() == Tok::Sub {
            self.next();
            -1.0
        } else {
            1.0
        };
        match self.peek().clone() {
            Tok::Number(n) => {
                self.next();
                Ok(neg * n)
            }
            _ => Err(self.unexpected("NUMBER")),
        }
    }

    fn range_agg(&mut self, op: RangeOp, pos: usize) -> Result<MetricExpr, ParseError> {
        self.expect(&Tok::LParen)?;
        let param = if op == RangeOp::Quantile {
            let n = self.number()?;
            self.expect(&Tok::Comma)?;
            Some(n)
        } else {
            None
        };
        let parens = self.skip_open_parens();
        let mut log = LogExpr {
            matchers: self.selector()?,
            stages: Vec::new(),
        };
        let mut range = None;
        if *self.peek() == Tok::LBracket {
            range = Some(self.range()?);
        }
        log.stages = self.pipeline()?;
        let unwrap = self.unwrap()?;
        self.close_parens(parens)?;
        if range.is_none() {
            range = Some(self.range()?);
        } else if *self.peek() == Tok::LBracket {
            return Err(self.err("syntax error: the range is given twice"));
        }
        let offset = if self.is_ident("offset") {
            self.next();
            match self.next() {
                Tok::Duration(d) => d,
                _ => return Err(self.err("syntax error: offset needs a duration")),
            }
        } else {
            0.0
        };
        self.expect(&Tok::RParen)?;
        let grouping = self.grouping()?;
        match (op.needs_unwrap(), &unwrap) {
            (Some(true), None) => {
                return Err(ParseError::at(
                    self.src,
                    pos,
                    format!("invalid aggregation {} without unwrap", range_name(op)),
                ))
            }
            (Some(false), Some(_)) => {
                return Err(ParseError::at(
                    self.src,
                    pos,
                    format!("invalid aggregation {} with unwrap", range_name(op)),
                ))
            }
            _ => {}
        }
        if grouping.is_some() && unwrap.is_none() {
            return Err(ParseError::at(
                self.src,
                pos,
                format!("grouping not allowed for {} aggregation", range_name(op)),
            ));
        }
        Ok(MetricExpr::Range(RangeAgg {
            op,
            log,
            range_secs: range.unwrap_or(0.0),
            offset_secs: offset,
            unwrap,
            param,
            grouping,
        }))
    }

    fn skip_open_parens(&mut self) -> usize {
        let mut n = 0;
        while *self.peek() == Tok::LParen {
            self.next();
            n += 1;
        }
        n
    }

    fn close_parens(&mut self, n: usize) -> Result<(), ParseError> {
        for _ in 0..n {
            self.expect(&Tok::RParen)?;
        }
        Ok(())
    }

    fn range(&mut self) -> Result<f64, ParseError> {
        self.expect(&Tok::LBracket)?;
        let d = match self.next() {
            Tok::Duration(d) if d > 0.0 => d,
            _ => {
                self.i -= 1;
                return Err(self.unexpected("a positive duration such as 5m"));
            }
        };
        self.expect(&Tok::RBracket)?;
        Ok(d)
    }

    fn unwrap(&mut self) -> Result<Option<Unwrap>, ParseError> {
        if !(*self.peek() == Tok::Pipe && matches!(self.peek_at(1), Tok::Ident(s) if s == "unwrap"))
        {
            return Ok(None);
        }
        self.next();
        self.next();
        let first = self.ident()?;
        let (conv, label) = if *self.peek() == Tok::LParen {
            let conv = match first.as_str() {
                "bytes" => NumKind::Bytes,
                "duration" | "duration_seconds" => NumKind::Duration,
                other => return Err(self.err(format!("syntax error: unknown unwrap conversion {other:?}; expected bytes, duration or duration_seconds"))),
            };
            self.next();
            let l = self.ident()?;
            self.expect(&Tok::RParen)?;
            (conv, l)
        } else {
            (NumKind::Number, first)
        };
        let mut post_filters = Vec::new();
        while *self.peek() == Tok::Pipe {
            self.next();
            post_filters.push(self.label_filter()?);
        }
        Ok(Some(Unwrap {
            label,
            conv,
            post_filters,
        }))
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        if !(self.is_ident("by") || self.is_ident("without")) {
            return Ok(None);
        }
        let without = self.is_ident("without");
        self.next();
        Ok(Some(Grouping {
            without,
            labels: self.label_list()?,
        }))
    }

    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(&Tok::LParen)?;
        let mut out = Vec::new();
        while *self.peek() != Tok::RParen {
            out.push(self.ident()?);
            if *self.peek() == Tok::Comma {
                self.next();
            } else if *self.peek() != Tok::RParen {
                return Err(self.unexpected("\",\" or \")\""));
            }
        }
        self.next();
        Ok(out)
    }

    fn vector_agg(&mut self, op: VectorOp) -> Result<MetricExpr, ParseError> {
        let mut grouping = self.grouping()?;
        self.expect(&Tok::LParen)?;
        let param = if matches!(op, VectorOp::Topk | VectorOp::Bottomk) {
            let n = self.number()?;
            if n < 1.0 || n.fract() != 0.0 {
                return Err(self.err(format!(
                    "invalid parameter for {}: {n}; expected a positive integer",
                    vector_name(op)
                )));
            }
            self.expect(&Tok::Comma)?;
            Some(n)
        } else {
            None
        };
        let expr = self.binary(0)?;
        self.expect(&Tok::RParen)?;
        if let Some(g) = self.grouping()? {
            if grouping.is_some() {
                return Err(self.err("syntax error: grouping given twice"));
            }
            grouping = Some(g);
        }
        Ok(MetricExpr::Vector(VectorAgg {
            op,
            grouping,
            param,
            expr: Box::new(expr),
        }))
    }
}

fn range_name(op: RangeOp) -> &'static str {
    match op {
        RangeOp::Count => "count_over_time",
        RangeOp::Rate => "rate",
        RangeOp::RateCounter => "rate_counter",
        RangeOp::Bytes => "bytes_over_time",
        RangeOp::BytesRate => "bytes_rate",
        RangeOp::Absent => "absent_over_time",
        RangeOp::Sum => "sum_over_time",
        RangeOp::Avg => "avg_over_time",
        RangeOp::Min => "min_over_time",
        RangeOp::Max => "max_over_time",
        RangeOp::First => "first_over_time",
        RangeOp::Last => "last_over_time",
        RangeOp::Stdvar => "stdvar_over_time",
        RangeOp::Stddev => "stddev_over_time",
        RangeOp::Quantile => "quantile_over_time",
    }
}

fn vector_name(op: VectorOp) -> &'static str {
    match op {
        VectorOp::Topk => "topk",
        _ => "bottomk",
    }
}
