//! YAML configuration files read the way medic reports their errors: the field path leads
//! (`route.routes[2].group_wait: invalid duration …`), and serde_norway's position (`at line L
//! column C`) stays in the message so people can jump to it.

use serde::de::DeserializeOwned;

/// Deserializes `text`; the error names the field path, the reason, and the line and column.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
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
    fn errors_lead_with_the_field_path_and_keep_the_line() {
        let e = from_str::<Outer>("inner:\n  - n: 1\n  - n: x\n").unwrap_err();
        assert!(e.starts_with("inner[1].n: invalid type"), "{e}");
        assert_eq!(error_line(&e), Some(3), "{e}");
        let e = from_str::<Outer>("inner:\n  - m: 1\n").unwrap_err();
        assert!(e.contains("unknown field `m`"), "{e}");
        assert_eq!(error_line(&e), Some(2), "{e}");
    }
}
