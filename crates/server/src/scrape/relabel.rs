//! Prometheus relabelling: `relabel_configs` on targets and `metric_relabel_configs` on samples,
//! with the same defaults and semantics (anchored regexes, `$1`/`${name}` expansion as in Go).

use medic_model::{is_valid_label_name, Labels, LabelsBuilder};
use regex::Regex;
use serde::{Deserialize, Deserializer};

/// What a relabel rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Set `target_label` to `replacement` (expanded) if `regex` matches the joined sources.
    #[default]
    Replace,
    /// Drop the target/sample unless `regex` matches.
    Keep,
    /// Drop the target/sample if `regex` matches.
    Drop,
    /// Set `target_label` to the hash of the joined sources modulo `modulus`.
    Hashmod,
    /// Copy labels whose name matches `regex` to the name `replacement` expands to.
    Labelmap,
    /// Remove labels whose name matches `regex`.
    Labeldrop,
    /// Remove labels whose name does not match `regex`.
    Labelkeep,
    /// Set `target_label` to the lower-cased joined sources.
    Lowercase,
    /// Set `target_label` to the upper-cased joined sources.
    Uppercase,
    /// Drop unless the joined sources equal the value of `target_label`.
    Keepequal,
    /// Drop if the joined sources equal the value of `target_label`.
    Dropequal,
}

/// An anchored regex as written in the config.
#[derive(Debug, Clone)]
pub struct AnchoredRegex {
    source: String,
    re: Regex,
}

impl AnchoredRegex {
    fn new(source: &str) -> Result<Self, String> {
        let re = Regex::new(&format!("^(?s:{source})$"))
            .map_err(|e| format!("invalid regex {source:?}: {e}"))?;
        Ok(Self {
            source: source.to_string(),
            re,
        })
    }
}

impl Default for AnchoredRegex {
    fn default() -> Self {
        Self::new("(.*)").expect("default regex compiles")
    }
}

impl<'de> Deserialize<'de> for AnchoredRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AnchoredRegex::new(&s).map_err(serde::de::Error::custom)
    }
}

/// One relabel rule, in Prometheus's syntax.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` to form the input.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins source values (default `;`).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Matched against the joined input, anchored (default `(.*)`).
    #[serde(default)]
    pub regex: AnchoredRegex,
    /// For `hashmod`.
    #[serde(default)]
    pub modulus: u64,
    /// Label written by replace, hashmod, lowercase, uppercase; compared by keepequal/dropequal.
    #[serde(default)]
    pub target_label: String,
    /// Value written, with `$1`, `${name}` references (default `$1`).
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// What to do (default `replace`).
    #[serde(default)]
    pub action: Action,
}

fn default_separator() -> String {
    ";".into()
}
fn default_replacement() -> String {
    "$1".into()
}

impl RelabelConfig {
    /// Checks that the fields the action needs are there, as Prometheus does at load time.
    pub fn validate(&self) -> Result<(), String> {
        use Action::*;
        let needs_target = matches!(
            self.action,
            Replace | Hashmod | Lowercase | Uppercase | Keepequal | Dropequal
        );
        if needs_target && self.target_label.is_empty() {
            return Err(
                format!("relabel action {:?} requires target_label", self.action).to_lowercase(),
            );
        }
        if matches!(
            self.action,
            Lowercase | Uppercase | Hashmod | Keepequal | Dropequal
        ) && !is_valid_label_name(&self.target_label)
        {
            return Err(format!(
                "{:?} is an invalid target_label",
                self.target_label
            ));
        }
        if self.action == Hashmod && self.modulus == 0 {
            return Err("relabel action hashmod requires a non-zero modulus".into());
        }
        if matches!(self.action, Labeldrop | Labelkeep)
            && (!self.source_labels.is_empty() || !self.target_label.is_empty())
        {
            return Err("labeldrop and labelkeep take only regex".into());
        }
        if matches!(self.action, Keepequal | Dropequal) && self.source_labels.is_empty() {
            return Err("keepequal and dropequal require source_labels".into());
        }
        for l in &self.source_labels {
            if !is_valid_label_name(l) {
                return Err(format!("{l:?} is an invalid source label name"));
            }
        }
        Ok(())
    }
}

/// Applies `rules` in order. Returns `None` when a rule drops the set, or when nothing is left.
pub fn relabel(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    if rules.is_empty() {
        return Some(labels.clone());
    }
    let mut b = labels.to_builder();
    for r in rules {
        if !apply(&mut b, r) {
            return None;
        }
    }
    let out = b.build();
    (!out.is_empty()).then_some(out)
}

fn joined(b: &LabelsBuilder, r: &RelabelConfig) -> String {
    let mut s = String::new();
    for (i, name) in r.source_labels.iter().enumerate() {
        if i > 0 {
            s.push_str(&r.separator);
        }
        s.push_str(b.get(name).unwrap_or(""));
    }
    s
}

fn apply(b: &mut LabelsBuilder, r: &RelabelConfig) -> bool {
    let val = joined(b, r);
    match r.action {
        Action::Drop => {
            if r.regex.re.is_match(&val) {
                return false;
            }
        }
        Action::Keep => {
            if !r.regex.re.is_match(&val) {
                return false;
            }
        }
        Action::Dropequal => {
            if b.get(&r.target_label).unwrap_or("") == val {
                return false;
            }
        }
        Action::Keepequal => {
            if b.get(&r.target_label).unwrap_or("") != val {
                return false;
            }
        }
        Action::Replace => {
            let Some(caps) = r.regex.re.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&r.target_label, &mut target);
            if !is_valid_label_name(&target) {
                return true;
            }
            let mut value = String::new();
            caps.expand(&r.replacement, &mut value);
            b.set(target, value);
        }
        Action::Lowercase => {
            b.set(r.target_label.clone(), val.to_lowercase());
        }
        Action::Uppercase => {
            b.set(r.target_label.clone(), val.to_uppercase());
        }
        Action::Hashmod => {
            use md5::Digest;
            let digest = md5::Md5::digest(val.as_bytes());
            let tail: [u8; 8] = digest[8..16].try_into().expect("md5 is 16 bytes");
            let m = u64::from_be_bytes(tail) % r.modulus;
            b.set(r.target_label.clone(), m.to_string());
        }
        Action::Labelmap => {
            let current: Vec<(String, String)> = b
                .labels()
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            for (name, value) in current {
                if let Some(caps) = r.regex.re.captures(&name) {
                    let mut new_name = String::new();
                    caps.expand(&r.replacement, &mut new_name);
                    b.set(new_name, value);
                }
            }
        }
        Action::Labeldrop => {
            b.retain(|l| !r.regex.re.is_match(&l.name));
        }
        Action::Labelkeep => {
            b.retain(|l| r.regex.re.is_match(&l.name));
        }
    }
    true
}

impl PartialEq for AnchoredRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<RelabelConfig> {
        let r: Vec<RelabelConfig> = serde_norway::from_str(yaml).unwrap();
        for x in &r {
            x.validate().unwrap();
        }
        r
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn replace_with_captures() {
        let r = rules(
            r#"
- source_labels: [__address__]
  regex: '([^:]+):(\d+)'
  target_label: host
  replacement: '${1}_x'
- source_labels: [a, b]
  separator: '-'
  target_label: ab
"#,
        );
        let out = relabel(
            &l(&[("__address__", "web1:9100"), ("a", "1"), ("b", "2")]),
            &r,
        )
        .unwrap();
        assert_eq!(out.get("host"), Some("web1_x"));
        assert_eq!(out.get("ab"), Some("1-2"));
    }

    #[test]
    fn replace_not_matching_leaves_labels() {
        let r = rules("- {source_labels: [a], regex: 'x', target_label: b, replacement: y}");
        assert_eq!(relabel(&l(&[("a", "xx")]), &r).unwrap(), l(&[("a", "xx")]));
    }

    #[test]
    fn keep_and_drop_are_anchored() {
        let keep = rules("- {source_labels: [job], regex: 'api', action: keep}");
        assert!(relabel(&l(&[("job", "api")]), &keep).is_some());
        assert!(relabel(&l(&[("job", "api2")]), &keep).is_none());
        let drop = rules("- {source_labels: [__name__], regex: 'go_.*', action: drop}");
        assert!(relabel(&l(&[("__name__", "go_gc")]), &drop).is_none());
        assert!(relabel(&l(&[("__name__", "up")]), &drop).is_some());
    }

    #[test]
    fn labelmap_labeldrop_labelkeep() {
        let r = rules(
            r#"
- {action: labelmap, regex: '__meta_(.+)'}
- {action: labeldrop, regex: 'tmp.*'}
"#,
        );
        let out = relabel(&l(&[("__meta_zone", "a"), ("tmp1", "x"), ("job", "j")]), &r).unwrap();
        assert_eq!(out.get("zone"), Some("a"));
        assert_eq!(out.get("tmp1"), None);
        let keep = rules("- {action: labelkeep, regex: 'job|__name__'}");
        assert_eq!(
            relabel(&l(&[("job", "j"), ("x", "1")]), &keep).unwrap(),
            l(&[("job", "j")])
        );
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Prometheus: md5("foo") last 8 bytes big-endian mod 1000.
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8 -> 0xedef654fccc4a4d8 % 1000
        let r =
            rules("- {source_labels: [a], action: hashmod, modulus: 1000, target_label: shard}");
        let out = relabel(&l(&[("a", "foo")]), &r).unwrap();
        assert_eq!(
            out.get("shard"),
            Some((0xedef654fccc4a4d8u64 % 1000).to_string().as_str())
        );
    }

    #[test]
    fn case_and_equality_actions() {
        let r = rules("- {source_labels: [a], action: uppercase, target_label: b}");
        assert_eq!(
            relabel(&l(&[("a", "xY")]), &r).unwrap().get("b"),
            Some("XY")
        );
        let r = rules("- {source_labels: [a], action: keepequal, target_label: b}");
        assert!(relabel(&l(&[("a", "1"), ("b", "1")]), &r).is_some());
        assert!(relabel(&l(&[("a", "1"), ("b", "2")]), &r).is_none());
    }

    #[test]
    fn validation_messages() {
        let r: Vec<RelabelConfig> =
            serde_norway::from_str("- {action: hashmod, target_label: x}").unwrap();
        assert!(r[0].validate().unwrap_err().contains("modulus"));
        let r: Vec<RelabelConfig> = serde_norway::from_str("- {action: replace}").unwrap();
        assert!(r[0].validate().unwrap_err().contains("target_label"));
    }
}
