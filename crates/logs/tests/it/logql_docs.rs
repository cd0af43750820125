//! Runs `testdata/logql/*.txt`: queries with answers written by hand from Loki's documentation.

use medic_logs::logql::{
    self, ast::Expr, logs, metric, Direction, EvalError, LogSource, Selection,
};
use medic_logs::{Entry, Stream};
use medic_model::{Labels, Matcher};

const NS: i64 = 1_000_000_000;

/// Streams in memory, answering selections exactly (the store has its own tests).
struct Mem(Vec<Stream>);

impl LogSource for Mem {
    fn select(&self, sel: &Selection<'_>) -> Result<Vec<Stream>, EvalError> {
        Ok(self
            .0
            .iter()
            .filter(|s| {
                sel.matchers
                    .iter()
                    .all(|m: &Matcher| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .map(|s| Stream {
                labels: s.labels.clone(),
                entries: s
                    .entries
                    .iter()
                    .filter(|e| e.ts >= sel.start && e.ts < sel.end)
                    .cloned()
                    .collect(),
            })
            .filter(|s| !s.entries.is_empty())
            .collect())
    }
}

fn labels_of(text: &str) -> Labels {
    let ms = logql::parse_selector(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    Labels::from_pairs(ms.iter().map(|m| (m.name.clone(), m.value.clone())))
}

fn fmt_labels(l: &std::collections::BTreeMap<String, String>) -> String {
    logs::format_labels(l)
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{}", (v * 1e9).round() / 1e9)
    }
}

fn answer(src: &Mem, head: &[&str], query: &str) -> Result<Vec<String>, String> {
    let secs = |s: &str| s.parse::<i64>().expect("seconds") * NS;
    let expr = logql::parse(query).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match (head[0], expr) {
        ("logs", Expr::Log(l)) => {
            let limit = head
                .iter()
                .find_map(|h| h.strip_prefix("limit="))
                .map_or(100, |n| n.parse().unwrap());
            let dir = if head.contains(&"forward") {
                Direction::Forward
            } else {
                Direction::Backward
            };
            for s in logs::query_logs(src, &l, secs(head[1]), secs(head[2]), limit, dir)
                .map_err(|e| e.to_string())?
            {
                out.push(fmt_labels(&s.labels));
                out.extend(
                    s.entries
                        .iter()
                        .map(|(ts, line)| format!("@{} {line}", ts / NS)),
                );
            }
        }
        ("metric" | "instant", Expr::Metric(m)) => {
            let (start, end, step) = if head[0] == "instant" {
                (secs(head[1]), secs(head[1]), NS)
            } else {
                (secs(head[1]), secs(head[2]), secs(head[3]))
            };
            let steps = metric::Steps { start, end, step };
            let vectors = metric::eval(src, &m, steps).map_err(|e| e.to_string())?;
            let mut series: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (i, v) in vectors.iter().enumerate() {
                for s in v {
                    let row = series
                        .entry(fmt_labels(&s.labels))
                        .or_insert_with(|| vec!["_".into(); vectors.len()]);
                    row[i] = fmt_value(s.value);
                }
            }
            out.extend(
                series
                    .into_iter()
                    .map(|(k, v)| format!("{k} {}", v.join(" "))),
            );
        }
        ("error", e) => {
            let steps = metric::Steps {
                start: 10 * NS,
                end: 10 * NS,
                step: NS,
            };
            match e {
                Expr::Metric(m) => metric::eval(src, &m, steps).map_err(|e| e.to_string())?,
                Expr::Log(_) => return Ok(vec!["(a log query that parsed)".into()]),
            };
            return Ok(vec!["(no error)".into()]);
        }
        (kind, _) => return Err(format!("a {kind} case with the wrong kind of query")),
    }
    Ok(out)
}

#[test]
fn logql_answers_as_loki_documents() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/logql");
    let mut cases = 0;
    let mut failures = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines().enumerate().peekable();
        let mut src = Mem(Vec::new());
        while let Some((n, line)) = lines.next() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let head: Vec<&str> = line.split_whitespace().collect();
            if head[0] == "streams" {
                for (_, l) in lines.by_ref() {
                    if l == "end" {
                        break;
                    }
                    if let Some(rest) = l.strip_prefix('@') {
                        let (ts, body) = rest.split_once(' ').unwrap();
                        let e = Entry::new(ts.parse::<i64>().unwrap() * NS, body);
                        src.0.last_mut().unwrap().entries.push(e);
                    } else {
                        src.0.push(Stream {
                            labels: labels_of(l),
                            entries: Vec::new(),
                        });
                    }
                }
                continue;
            }
            let (_, query) = lines.next().unwrap();
            assert_eq!(
                lines.next().map(|l| l.1),
                Some("=>"),
                "{}:{}",
                path.display(),
                n + 3
            );
            let mut want = Vec::new();
            for (_, l) in lines.by_ref() {
                if l == "end" {
                    break;
                }
                want.push(l.to_string());
            }
            cases += 1;
            let got = answer(&src, &head, query.trim());
            let ok = match (&got, head[0]) {
                (Err(e), "error") => e.starts_with(&want[0]),
                (Ok(g), k) if k != "error" => *g == want,
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{}:{}: {query}\n  want: {want:#?}\n  got:  {got:#?}",
                    path.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(cases >= 30, "only {cases} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
