//! The built-in detectors: what a secret or a piece of personal data looks like in a log line.
//! Each is a regex; where only part of a match is secret (the value after `password=`), the
//! pattern names that part `v` and only it is replaced.

/// A built-in detector: its name (the rule name in metrics and config) and its pattern.
pub struct Builtin {
    pub name: &'static str,
    pub pattern: String,
    /// Card numbers must also pass the Luhn check.
    pub luhn: bool,
}

const KEYS: &str = r"pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|token|access[_-]?token|refresh[_-]?token|api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?|access[_-]?key[_-]?secret|private[_-]?key|client[_-]?secret|credentials?|session[_-]?id|cookie";

/// The detectors, in the order they run (longest and most specific first, so a JWT inside a
/// `token=` value is not half-masked by another).
pub fn builtins() -> Vec<Builtin> {
    let kv = format!(r#"(?i)\b(?:{KEYS})\b\s*[=:]\s*(?P<v>"[^"\n]*"|'[^'\n]*'|[^\s,;&"'}}\]]+)"#);
    let json = format!(r#"(?i)"(?:{KEYS})"\s*:\s*(?P<v>"(?:[^"\\]|\\.)*")"#);
    let list: Vec<(&'static str, String, bool)> = vec![
        (
            "private_key",
            r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)".into(),
            false,
        ),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*".into(), false),
        ("bearer_token", r"(?i)\b(?:bearer|basic)\s+(?P<v>[A-Za-z0-9\-._~+/]{8,}=*)".into(), false),
        (
            "cloud_access_key",
            r"\b(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}|AIza[0-9A-Za-z\-_]{35}|LTAI[0-9A-Za-z]{12,20}|gh[pousr]_[A-Za-z0-9]{36,}|xox[abposr]-[A-Za-z0-9-]{10,})\b".into(),
            false,
        ),
        ("json_secret", json, false),
        ("secret_kv", kv, false),
        ("card_number", r"\b(?:\d[ -]?){12,18}\d\b".into(), true),
        ("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b".into(), false),
        (
            "phone",
            r"(?:\+[1-9]\d{7,14}\b|\b\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b|\b1[3-9]\d{9}\b)".into(),
            false,
        ),
    ];
    list.into_iter()
        .map(|(name, pattern, luhn)| Builtin {
            name,
            pattern: ascii_classes(&pattern),
            luhn,
        })
        .collect()
}

/// ASCII word boundaries, digits and spaces: what these formats are made of, and several times
/// cheaper to scan for than Unicode's (and a number right after CJK text, `手机13912345678`,
/// still starts at a boundary).
fn ascii_classes(p: &str) -> String {
    p.replace(r"\b", r"(?-u:\b)")
        .replace(r"\d", "[0-9]")
        .replace(r"\s", r"[\t\n\x0B\x0C\r ]")
}

/// Whether the digits of `s` (spaces and dashes ignored) pass the Luhn check.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    #[test]
    fn luhn_accepts_test_card_numbers_only() {
        assert!(super::luhn("4111 1111 1111 1111"));
        assert!(super::luhn("5500-0000-0000-0004"));
        assert!(!super::luhn("4111 1111 1111 1112"));
        assert!(!super::luhn("1234"));
    }
}
