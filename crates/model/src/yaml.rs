//! YAML configuration files read the way medic reports their errors: the field path leads
//! (`route.routes[2].group_wait: invalid duration …`), and serde_norway's position (`at line L
//! column C`) stays in the message so people can jump to it.

use serde::de::DeserializeOwned;

/// Deepest nesting of flow collections (`[`, `{`) a document may have.
pub const MAX_FLOW_DEPTH: usize = 128;
/// Deepest block nesting (indentation plus leading `- `/`? ` markers on one line).
pub const MAX_BLOCK_DEPTH: usize = 1000;

/// Refuses a document nested deeper than any configuration needs, before the YAML parser sees
/// it: parsing deeply nested YAML takes time quadratic in the depth (40,000 levels took 3.8 s),
/// so a hostile or broken file could hang `check config` and reloads. Linear in the text.
pub fn check_depth(text: &str) -> Result<(), String> {
    let mut flow = 0usize;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let mut rest = &line[indent..];
        let mut markers = 0;
        while let Some(r) = rest
            .strip_prefix("- ")
            .or_else(|| rest.strip_prefix("? "))
            .or_else(|| rest.strip_prefix(": "))
        {
            markers += 1;
            rest = r.trim_start_matches(' ');
        }
        if indent + markers > MAX_BLOCK_DEPTH {
            return Err(format!(
                "line {}: nested deeper than {MAX_BLOCK_DEPTH} levels; no configuration needs that",
                n + 1
            ));
        }
        let mut quote: Option<char> = None;
        for c in line[indent..].chars() {
            match (quote, c) {
                (None, '#') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '[' | '{') => {
                    flow += 1;
                    if flow > MAX_FLOW_DEPTH {
                        return Err(format!(
                            "line {}: brackets nested deeper than {MAX_FLOW_DEPTH} levels; no configuration needs that",
                            n + 1
                        ));
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Deserializes `text`; the error names the field path, the reason, and the line and column.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    check_depth(text)?;
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        // serde_path_to_error writes `?` for segments it cannot name (syntax errors).
        let path = e.path().to_string().replace(".?", "");
        let inner = e.into_inner().to_string();
        // The YAML error may already lead with the outer part of the path; lead with the
        // full path instead.
        let inner = match inner.split_once(": ") {
            Some((head, rest)) if path.starts_with(head) && !head.contains(' ') => rest.to_string(),
            _ => inner,
        };
        if path == "." || path == "?" {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// The line number in a message from [`from_str`], if it has one.
pub fn error_line(message: &str) -> Option<usize> {
    let at = message.rfind("at line ")?;
    let digits: String = message[at + 8..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Vec<Inner>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let start = std::time::Instant::now();
        let flow = format!("a: {}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = from_str::<serde_norway::Value>(&flow).unwrap_err();
        assert!(e.contains("line 1: brackets nested deeper than 128"), "{e}");
        let block = format!("a:\n{}x", "- ".repeat(50_000));
        let e = from_str::<serde_norway::Value>(&block).unwrap_err();
        assert!(e.contains("line 2: nested deeper than 1000"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        // Ordinary nesting, and brackets inside strings and comments, are fine.
        from_str::<serde_norway::Value>("a: ['[[[[', \"{{{{\"] # [[[[\nb: {c: [1, {d: 2}]}\n")
            .unwrap();
        let deep_ok = format!("a: {}1{}", "[".repeat(100), "]".repeat(100));
        from_str::<serde_norway::Value>(&deep_ok).unwrap();
    }

    #[test]
    fn errors_lead_with_the_field_path_and_keep_the_line() {
        let e = from_str::<Outer>("inner:\n  - n: 1\n  - n: x\n").unwrap_err();
        assert!(e.starts_with("inner[1].n: invalid type"), "{e}");
        assert_eq!(error_line(&e), Some(3), "{e}");
        let e = from_str::<Outer>("inner:\n  - m: 1\n").unwrap_err();
        assert!(e.contains("unknown field `m`"), "{e}");
        assert_eq!(error_line(&e), Some(2), "{e}");
    }
}
