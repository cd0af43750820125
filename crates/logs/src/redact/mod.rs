//! Redaction, applied to every pushed entry before it reaches the WAL: the built-in detectors
//! (`detectors`) and configured rules, each masking, replacing with a keyed hash, or dropping
//! the line. Label values and structured metadata go through the same rules as lines. Every
//! rule counts what it did.
//!
//! One `RegexSet` pass tells which rules match a text at all, so a clean line costs one scan.

mod detectors;

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use regex::{Regex, RegexSet};
use serde::Deserialize;
use sha2::Sha256;

use crate::entry::Push;

pub use detectors::luhn;

/// What a rule does with what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Replaces the match with `[REDACTED:<rule>]` (or the rule's `replacement`).
    #[default]
    Mask,
    /// Replaces the match with `[HASH:<16 hex>]`, an HMAC-SHA256 under the configured key, so
    /// equal values stay correlatable without being readable.
    Hash,
    /// Drops the whole entry.
    Drop,
}

/// A configured rule (`logs.redaction.rules[]` in medic.yml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// A regex; when it has a group named `v`, only that group is replaced.
    pub pattern: String,
    #[serde(default)]
    pub action: Action,
    /// The text a masked match becomes (default `[REDACTED:<name>]`).
    #[serde(default)]
    pub replacement: Option<String>,
}

/// `logs.redaction` in medic.yml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Whether the built-in detectors run (default true).
    pub builtin: bool,
    /// Built-in detectors to leave out, by name.
    pub disable: Vec<String>,
    pub rules: Vec<RuleConfig>,
    /// The key of `hash` rules; required when one is configured. Kept out of every output.
    #[serde(skip_serializing)]
    pub hash_key: Option<String>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            builtin: true,
            disable: Vec::new(),
            rules: Vec::new(),
            hash_key: None,
        }
    }
}

/// A redaction rule could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("logs.redaction.rules[{index}] ({name}): invalid pattern: {reason}")]
    Pattern {
        index: usize,
        name: String,
        reason: String,
    },
    #[error("logs.redaction.disable: unknown detector {0:?}; the built-in ones are {1}")]
    UnknownDetector(String, String),
    #[error("logs.redaction.rules[{index}] ({name}): action hash needs logs.redaction.hash_key")]
    NoHashKey { index: usize, name: String },
}

struct Rule {
    name: String,
    regex: Regex,
    action: Action,
    replacement: String,
    luhn: bool,
}

/// The compiled rules and their counters.
pub struct Redactor {
    rules: Vec<Rule>,
    set: RegexSet,
    hits: Vec<AtomicU64>,
    dropped: AtomicU64,
    key: Vec<u8>,
}

/// What became of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Keep,
    Drop,
}

impl Redactor {
    /// The built-in detectors alone.
    pub fn builtin() -> Self {
        Self::new(&RedactionConfig::default()).expect("the built-in detectors compile")
    }

    /// Builds the configured rules (configured ones run after the built-in ones).
    pub fn new(cfg: &RedactionConfig) -> Result<Self, RedactError> {
        let builtins = detectors::builtins();
        let names: Vec<&str> = builtins.iter().map(|b| b.name).collect();
        for d in &cfg.disable {
            if !names.contains(&d.as_str()) {
                return Err(RedactError::UnknownDetector(d.clone(), names.join(", ")));
            }
        }
        let mut rules = Vec::new();
        if cfg.builtin {
            for b in builtins
                .into_iter()
                .filter(|b| !cfg.disable.iter().any(|d| d == b.name))
            {
                rules.push(Rule {
                    name: b.name.to_string(),
                    regex: Regex::new(&b.pattern).expect("built-in patterns compile"),
                    action: Action::Mask,
                    replacement: format!("[REDACTED:{}]", b.name),
                    luhn: b.luhn,
                });
            }
        }
        for (index, r) in cfg.rules.iter().enumerate() {
            let regex = regex::RegexBuilder::new(&r.pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| RedactError::Pattern {
                    index,
                    name: r.name.clone(),
                    reason: e.to_string(),
                })?;
            if r.action == Action::Hash && cfg.hash_key.as_deref().unwrap_or("").is_empty() {
                return Err(RedactError::NoHashKey {
                    index,
                    name: r.name.clone(),
                });
            }
            rules.push(Rule {
                name: r.name.clone(),
                regex,
                action: r.action,
                replacement: r
                    .replacement
                    .clone()
                    .unwrap_or_else(|| format!("[REDACTED:{}]", r.name)),
                luhn: false,
            });
        }
        let set = RegexSet::new(rules.iter().map(|r| r.regex.as_str()))
            .expect("each pattern compiled alone");
        Ok(Redactor {
            hits: rules.iter().map(|_| AtomicU64::new(0)).collect(),
            rules,
            set,
            dropped: AtomicU64::new(0),
            key: cfg.hash_key.clone().unwrap_or_default().into_bytes(),
        })
    }

    /// Redacts one text in place; `Drop` when a drop rule matched.
    pub fn text(&self, s: &mut String) -> Outcome {
        if s.is_empty() {
            return Outcome::Keep;
        }
        // Most lines hold nothing: one scan that stops at the first match decides that, and
        // only a line that matched pays for learning which rules did.
        if !self.set.is_match(s) {
            return Outcome::Keep;
        }
        let matched = self.set.matches(s);
        for i in matched.iter() {
            let rule = &self.rules[i];
            if rule.action == Action::Drop {
                self.hits[i].fetch_add(1, Ordering::Relaxed);
                return Outcome::Drop;
            }
            let mut n = 0;
            let out = rule.regex.replace_all(s, |c: &regex::Captures<'_>| {
                let whole = c.get(0).expect("group 0");
                if rule.luhn && !luhn(whole.as_str()) {
                    return whole.as_str().to_string();
                }
                n += 1;
                let secret = c.name("v").unwrap_or(whole);
                let repl = match rule.action {
                    Action::Hash => self.hash(secret.as_str()),
                    _ => rule.replacement.clone(),
                };
                let (a, b) = (secret.start() - whole.start(), secret.end() - whole.start());
                format!("{}{repl}{}", &whole.as_str()[..a], &whole.as_str()[b..])
            });
            if n > 0 {
                *s = out.into_owned();
                self.hits[i].fetch_add(n, Ordering::Relaxed);
            }
        }
        Outcome::Keep
    }

    fn hash(&self, v: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(v.as_bytes());
        let d = mac.finalize().into_bytes();
        let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("[HASH:{hex}]")
    }

    /// Redacts every line, metadata value and label value of a push; drops the entries a drop
    /// rule matched, and streams left empty. Returns how many entries were dropped.
    pub fn push(&self, push: &mut Push) -> usize {
        let mut dropped = 0;
        for stream in push.iter_mut() {
            let mut changed = false;
            let mut labels: Vec<(String, String)> = Vec::with_capacity(stream.labels.len());
            for l in stream.labels.iter() {
                let mut v = l.value.to_string();
                let _ = self.text(&mut v);
                changed |= *v != *l.value;
                labels.push((l.name.to_string(), v));
            }
            if changed {
                stream.labels = medic_model::Labels::from_pairs(labels);
            }
            stream.entries.retain_mut(|e| {
                let mut keep = self.text(&mut e.line) == Outcome::Keep;
                for (_, v) in &mut e.metadata {
                    keep &= self.text(v) == Outcome::Keep;
                }
                if !keep {
                    dropped += 1;
                }
                keep
            });
        }
        push.retain(|s| !s.entries.is_empty());
        self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        dropped
    }

    /// `(rule, matches redacted or lines dropped)` for every rule.
    pub fn counts(&self) -> Vec<(String, u64)> {
        self.rules
            .iter()
            .zip(&self.hits)
            .map(|(r, h)| (r.name.clone(), h.load(Ordering::Relaxed)))
            .collect()
    }

    /// Entries dropped by drop rules.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(s: &str) -> String {
        let mut s = s.to_string();
        Redactor::builtin().text(&mut s);
        s
    }

    #[test]
    fn masks_only_the_secret_part() {
        assert_eq!(
            red("login user=bob password=hunter2 ok"),
            "login user=bob password=[REDACTED:secret_kv] ok"
        );
        assert_eq!(
            red(r#"{"user":"bob","api_key":"abc123"}"#),
            r#"{"user":"bob","api_key":[REDACTED:json_secret]}"#
        );
        assert_eq!(
            red("Authorization: Bearer abcdefghijkl"),
            "Authorization: Bearer [REDACTED:bearer_token]"
        );
        assert_eq!(
            red("card 4111 1111 1111 1111 paid"),
            "card [REDACTED:card_number] paid"
        );
        assert_eq!(
            red("order 4111 1111 1111 1112 paid"),
            "order 4111 1111 1111 1112 paid"
        );
        assert_eq!(red("mail bob@example.com now"), "mail [REDACTED:email] now");
        assert_eq!(red("call +8613800138000"), "call [REDACTED:phone]");
        assert_eq!(red("手机13912345678已验证"), "手机[REDACTED:phone]已验证");
        assert_eq!(
            red("took 12ms status=200 at 2024-01-15T10:00:00Z"),
            "took 12ms status=200 at 2024-01-15T10:00:00Z"
        );
    }

    #[test]
    fn configured_rules_hash_and_drop() {
        let cfg = RedactionConfig {
            rules: vec![
                RuleConfig {
                    name: "user".into(),
                    pattern: r"user=(?P<v>\w+)".into(),
                    action: Action::Hash,
                    replacement: None,
                },
                RuleConfig {
                    name: "debug".into(),
                    pattern: r"^DEBUG ".into(),
                    action: Action::Drop,
                    replacement: None,
                },
            ],
            hash_key: Some("k".into()),
            ..Default::default()
        };
        let r = Redactor::new(&cfg).unwrap();
        let (mut a, mut b) = ("user=bob x".to_string(), "user=bob y".to_string());
        r.text(&mut a);
        r.text(&mut b);
        assert!(a.starts_with("user=[HASH:") && !a.contains("bob"), "{a}");
        assert_eq!(a[..28], b[..28]);
        assert_eq!(r.text(&mut "DEBUG x".to_string()), Outcome::Drop);
        let counts = r.counts();
        assert!(counts.contains(&("user".into(), 2)) && counts.contains(&("debug".into(), 1)));
        let bad = RedactionConfig {
            rules: vec![RuleConfig {
                name: "h".into(),
                pattern: "x".into(),
                action: Action::Hash,
                replacement: None,
            }],
            ..Default::default()
        };
        assert!(Redactor::new(&bad)
            .err()
            .unwrap()
            .to_string()
            .contains("hash_key"));
    }
}
