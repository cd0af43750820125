//! Label matchers: `=`, `!=`, `=~`, `!~`, with regular expressions fully anchored as in
//! Prometheus (RE2 syntax through the `regex` crate, which shares RE2's guarantees of linear time).

use std::fmt;

use regex::Regex;

/// The four kinds of label matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regexp,
    /// `!~`
    NotRegexp,
}

impl MatchType {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }
}

/// Why a matcher could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatcherError {
    /// The regular expression does not compile.
    #[error("invalid regular expression {pattern:?} for label {name:?}: {reason}")]
    BadRegex {
        /// The label the matcher applies to.
        name: String,
        /// The pattern as given.
        pattern: String,
        /// What the regex engine said.
        reason: String,
    },
    /// The text is not of the form `name<op>"value"`.
    #[error("invalid matcher {0:?}: expected name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\"")]
    Syntax(String),
}

/// A matcher on one label. A missing label matches as the empty string, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The operator.
    pub kind: MatchType,
    /// The label name.
    pub name: String,
    /// The value or pattern as written.
    pub value: String,
    regex: Option<Regex>,
}

/// Size limit for compiled matcher regexes, so a hostile pattern cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Matcher {
    /// Builds a matcher; regex patterns are anchored at both ends.
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let regex = match kind {
            MatchType::Regexp | MatchType::NotRegexp => Some(
                regex::RegexBuilder::new(&format!("^(?s:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| MatcherError::BadRegex {
                        name: name.clone(),
                        pattern: value.clone(),
                        reason: e.to_string(),
                    })?,
            ),
            _ => None,
        };
        Ok(Self {
            kind,
            name,
            value,
            regex,
        })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(MatchType::Equal, name, value).expect("equality matchers always build")
    }

    /// Whether the label value `v` (empty when the label is missing) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => self.value == v,
            MatchType::NotEqual => self.value != v,
            MatchType::Regexp => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegexp => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether this matcher matches the empty string, i.e. also selects series that lack the
    /// label. Stores need this to decide whether postings alone can answer it.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Parses one matcher written as in PromQL: `job="api"`, `code!~"5.."`.
    pub fn parse(s: &str) -> Result<Self, MatcherError> {
        let syntax = || MatcherError::Syntax(s.to_string());
        let s = s.trim();
        let op_start = s.find(['=', '!']).ok_or_else(syntax)?;
        let name = s[..op_start].trim();
        let rest = &s[op_start..];
        let (kind, rest) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchType::Regexp, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchType::NotRegexp, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchType::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchType::Equal, r)
        } else {
            return Err(syntax());
        };
        if !crate::is_valid_label_name(name) {
            return Err(syntax());
        }
        let value = unquote(rest.trim()).ok_or_else(syntax)?;
        Self::new(kind, name, value)
    }
}

/// Removes the quotes of a PromQL string literal (`"..."`, `'...'`, or a raw `` `...` ``) and
/// resolves its escapes.
fn unquote(s: &str) -> Option<String> {
    let quote = s.chars().next()?;
    if !matches!(quote, '"' | '\'' | '`') || s.len() < 2 || !s.ends_with(quote) {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if quote == '`' {
        return Some(inner.to_string());
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            // Keep other escapes as written: regexes use them (`\d`, `\.`).
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.kind.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_fully_anchored() {
        let m = Matcher::new(MatchType::Regexp, "job", "api|web").unwrap();
        assert!(m.matches("api"));
        assert!(m.matches("web"));
        assert!(!m.matches("apix"));
        assert!(!m.matches("xweb"));
        let n = Matcher::new(MatchType::NotRegexp, "job", "a.*").unwrap();
        assert!(!n.matches("abc"));
        assert!(n.matches("bac"));
    }

    #[test]
    fn dot_matches_newline_like_prometheus() {
        let m = Matcher::new(MatchType::Regexp, "x", "a.b").unwrap();
        assert!(m.matches("a\nb"));
    }

    #[test]
    fn empty_matching() {
        assert!(Matcher::equal("a", "").matches_empty());
        assert!(!Matcher::equal("a", "x").matches_empty());
        assert!(Matcher::new(MatchType::Regexp, "a", ".*")
            .unwrap()
            .matches_empty());
        assert!(!Matcher::new(MatchType::Regexp, "a", ".+")
            .unwrap()
            .matches_empty());
        assert!(Matcher::new(MatchType::NotEqual, "a", "x")
            .unwrap()
            .matches_empty());
    }

    #[test]
    fn bad_regex_names_label_and_pattern() {
        let e = Matcher::new(MatchType::Regexp, "job", "(").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("job") && s.contains("\"(\""), "{s}");
    }

    #[test]
    fn parses_matchers() {
        let m = Matcher::parse(r#"code!~"5\d\d""#).unwrap();
        assert_eq!(m.kind, MatchType::NotRegexp);
        assert_eq!(m.name, "code");
        assert_eq!(m.value, r"5\d\d");
        assert!(!m.matches("503"));
        let e = Matcher::parse("job='a'").unwrap();
        assert_eq!(e.value, "a");
        assert!(Matcher::parse("job").is_err());
        assert!(Matcher::parse("1job=\"a\"").is_err());
        assert!(Matcher::parse("job=\"a").is_err());
    }
}
