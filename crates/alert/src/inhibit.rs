//! Inhibition: a firing source alert mutes target alerts that agree with it on the `equal`
//! labels (Alertmanager's inhibitor). Each rule keeps the source alerts it has seen, indexed
//! by their `equal` label values, so checking an alert costs one lookup per rule.

use std::collections::HashMap;

use medic_model::{Labels, MatchType, Matcher};

use crate::config::InhibitRuleConfig;
use crate::matchers::matches_all;
use crate::types::{Alert, Fingerprint};

struct Rule {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
    /// Source alerts by their `equal` values: fingerprint → (ends_at, also matches target).
    sources: HashMap<Vec<String>, HashMap<Fingerprint, (i64, bool)>>,
}

/// All inhibit rules with their source caches.
#[derive(Default)]
pub struct Inhibitor {
    rules: Vec<Rule>,
}

fn legacy(
    eq: &std::collections::BTreeMap<String, String>,
    re: &std::collections::BTreeMap<String, String>,
    mut ms: Vec<Matcher>,
) -> Vec<Matcher> {
    for (k, v) in eq {
        ms.push(Matcher::equal(k.clone(), v.clone()));
    }
    for (k, v) in re {
        if let Ok(m) = Matcher::new(MatchType::Regexp, k.clone(), v.clone()) {
            ms.push(m);
        }
    }
    ms
}

impl Inhibitor {
    /// Builds the rules from a validated config.
    pub fn new(rules: &[InhibitRuleConfig]) -> Self {
        Inhibitor {
            rules: rules
                .iter()
                .map(|r| Rule {
                    source: legacy(
                        &r.source_match,
                        &r.source_match_re,
                        r.source_matchers.0.clone(),
                    ),
                    target: legacy(
                        &r.target_match,
                        &r.target_match_re,
                        r.target_matchers.0.clone(),
                    ),
                    equal: r.equal.clone(),
                    sources: HashMap::new(),
                })
                .collect(),
        }
    }

    /// Records an alert as received (or updated); called for every stored alert.
    pub fn observe(&mut self, a: &Alert) {
        let fp = a.fingerprint();
        for r in &mut self.rules {
            if !matches_all(&r.source, &a.labels) {
                continue;
            }
            let key = equal_values(&r.equal, &a.labels);
            let both = matches_all(&r.target, &a.labels);
            r.sources
                .entry(key)
                .or_default()
                .insert(fp, (a.ends_at, both));
        }
    }

    /// Forgets an alert (deleted from the store).
    pub fn forget(&mut self, a: &Alert) {
        let fp = a.fingerprint();
        for r in &mut self.rules {
            let key = equal_values(&r.equal, &a.labels);
            if let Some(m) = r.sources.get_mut(&key) {
                m.remove(&fp);
                if m.is_empty() {
                    r.sources.remove(&key);
                }
            }
        }
    }

    /// The source alert that inhibits `labels` at `now`, if any.
    pub fn mutes(&self, labels: &Labels, now: i64) -> Option<Fingerprint> {
        let own = Fingerprint::of(labels);
        for r in &self.rules {
            if !matches_all(&r.target, labels) {
                continue;
            }
            let exclude_two_sided = matches_all(&r.source, labels);
            let Some(cands) = r.sources.get(&equal_values(&r.equal, labels)) else {
                continue;
            };
            let mut found: Option<Fingerprint> = None;
            for (fp, &(ends_at, both)) in cands {
                let firing = ends_at == 0 || ends_at > now;
                if !firing || (exclude_two_sided && both) || *fp == own {
                    continue;
                }
                // The smallest fingerprint, so the answer does not depend on map order.
                if found.is_none_or(|f| *fp < f) {
                    found = Some(*fp);
                }
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

fn equal_values(equal: &[String], labels: &Labels) -> Vec<String> {
    equal
        .iter()
        .map(|n| labels.get(n).unwrap_or("").to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Annotations;

    fn rule(yaml: &str) -> Inhibitor {
        let r: Vec<InhibitRuleConfig> = serde_norway::from_str(yaml).unwrap();
        Inhibitor::new(&r)
    }

    fn alert(pairs: &[(&str, &str)], ends_at: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()),
            annotations: Annotations::new(),
            starts_at: 0,
            ends_at,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
            value: None,
            source: Default::default(),
        }
    }

    #[test]
    fn critical_inhibits_warning_on_the_same_cluster() {
        let mut i = rule(
            "- source_matchers: [severity=critical]\n  target_matchers: [severity=warning]\n  equal: [cluster]\n",
        );
        let src = alert(
            &[
                ("alertname", "Down"),
                ("severity", "critical"),
                ("cluster", "a"),
            ],
            100,
        );
        i.observe(&src);
        let warn_a = Labels::from_pairs([
            ("alertname", "Slow"),
            ("severity", "warning"),
            ("cluster", "a"),
        ]);
        let warn_b = Labels::from_pairs([
            ("alertname", "Slow"),
            ("severity", "warning"),
            ("cluster", "b"),
        ]);
        assert_eq!(i.mutes(&warn_a, 50), Some(src.fingerprint()));
        assert_eq!(i.mutes(&warn_b, 50), None);
        // Once the source has resolved it no longer inhibits.
        assert_eq!(i.mutes(&warn_a, 100), None);
        i.forget(&src);
        assert_eq!(i.mutes(&warn_a, 50), None);
    }

    #[test]
    fn an_alert_matching_both_sides_does_not_inhibit_itself_or_its_kind() {
        let mut i = rule(
            "- source_match: {alertname: X}\n  target_match: {alertname: X}\n  equal: [job]\n",
        );
        let a = alert(&[("alertname", "X"), ("job", "j"), ("i", "1")], 0);
        let b = alert(&[("alertname", "X"), ("job", "j"), ("i", "2")], 0);
        i.observe(&a);
        i.observe(&b);
        assert_eq!(i.mutes(&a.labels, 10), None);
    }
}
