//! Label sets: sorted by name, names unique, cheap to clone (strings are shared), hashed with
//! xxh3 the way Prometheus hashes them.

use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label: a name and a value. Strings are reference-counted so that stores can intern them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// The label name.
    pub name: Arc<str>,
    /// The label value; never empty in a stored series (an empty value means "no such label").
    pub value: Arc<str>,
}

impl Label {
    /// A label from two strings.
    pub fn new(name: impl Into<Arc<str>>, value: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A set of labels identifying a series, sorted by name with unique names. Cloning is one
/// reference-count increment: query evaluation copies label sets at every step.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Arc<[Label]>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Self(Arc::from(Vec::new()))
    }

    /// Builds a label set from pairs: sorts them, drops empty values, and keeps the last value
    /// of a repeated name.
    pub fn from_pairs<N, V, I>(pairs: I) -> Self
    where
        N: Into<Arc<str>>,
        V: Into<Arc<str>>,
        I: IntoIterator<Item = (N, V)>,
    {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n, v);
        }
        b.build()
    }

    /// Wraps labels that the caller guarantees are sorted by name, unique and non-empty
    /// (for decoders of trusted on-disk data). Checked in debug builds.
    pub fn from_sorted_unchecked(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Self(Arc::from(labels))
    }

    /// Sorts and de-duplicates labels from an untrusted source. Returns the name of a repeated
    /// label as an error, because a series with two values for one name is ambiguous.
    pub fn from_unsorted(mut labels: Vec<Label>) -> Result<Self, Arc<str>> {
        labels.retain(|l| !l.value.is_empty());
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(w[0].name.clone());
        }
        Ok(Self(Arc::from(labels)))
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &*self.0[i].value)
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Whether the set has a label called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable 64-bit hash of the set (xxh3 over names and values with separators), used to
    /// find series by labels.
    pub fn stable_hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        self.feed_hash(|b| h.update(b));
        h.digest()
    }

    /// The hash Prometheus computes for a label set (`labels.Labels.Hash`: XXH64 over names and
    /// values, each followed by 0xff), for behaviour that must select the same series
    /// Prometheus does, such as `limit_ratio`.
    pub fn prometheus_hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        self.feed_hash(|b| h.update(b));
        h.digest()
    }

    /// Feeds the bytes both hashes cover: each name and value followed by 0xff.
    fn feed_hash(&self, mut update: impl FnMut(&[u8])) {
        for l in self.0.iter() {
            update(l.name.as_bytes());
            update(&[0xff]);
            update(l.value.as_bytes());
            update(&[0xff]);
        }
    }

    /// [`Labels::stable_hash`] of borrowed `(name, value)` pairs sorted by name, so callers can
    /// find an existing series without building a label set.
    pub fn hash_pairs(pairs: &[(&str, &str)]) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for (n, v) in pairs {
            h.update(n.as_bytes());
            h.update(&[0xff]);
            h.update(v.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }

    /// Whether this set equals the borrowed pairs (sorted by name).
    pub fn eq_pairs(&self, pairs: &[(&str, &str)]) -> bool {
        self.0.len() == pairs.len()
            && self
                .0
                .iter()
                .zip(pairs)
                .all(|(l, (n, v))| &*l.name == *n && &*l.value == *v)
    }

    /// A builder that starts from this set.
    pub fn to_builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.to_vec(),
        }
    }

    /// The same set without `__name__`, and without the `__type__` and `__unit__` labels that
    /// describe the name (Prometheus 3's type-and-unit labels go wherever the name goes).
    pub fn without_metric_name(&self) -> Labels {
        let described = |n: &str| n == METRIC_NAME || n == "__type__" || n == "__unit__";
        if !self.0.iter().any(|l| described(&l.name)) {
            return self.clone();
        }
        Labels(
            self.0
                .iter()
                .filter(|l| !described(&l.name))
                .cloned()
                .collect(),
        )
    }

    /// An estimate of the bytes this set holds, for limits and memory accounting.
    pub fn byte_size(&self) -> usize {
        self.0.iter().map(|l| l.name.len() + l.value.len()).sum()
    }

    /// Consumes the set, returning its labels in name order.
    pub fn into_vec(self) -> Vec<Label> {
        self.0.to_vec()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Prints `name{a="1", b="2"}` as Prometheus does, escaping label values.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(n) = name {
            f.write_str(n)?;
        }
        let rest: Vec<&Label> = self.0.iter().filter(|l| &*l.name != METRIC_NAME).collect();
        if rest.is_empty() && name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, l) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=\"", l.name)?;
            for c in l.value.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// Serialises as a JSON object `{"name": "value", ...}`, the shape of Prometheus's HTTP API.
impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for l in self.0.iter() {
            m.serialize_entry(&*l.name, &*l.value)?;
        }
        m.end()
    }
}

/// Reads the JSON object shape written by `Serialize`.
impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m: std::collections::BTreeMap<String, String> = serde::Deserialize::deserialize(d)?;
        Ok(Labels::from_pairs(m))
    }
}

/// Builds a label set by setting and deleting names; the result is sorted and has no empty
/// values. Used by relabelling and by anything that derives one label set from another.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<Arc<str>>, value: impl Into<Arc<str>>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.labels.binary_search_by(|l| l.name.cmp(&name)) {
            Ok(i) if value.is_empty() => {
                self.labels.remove(i);
            }
            Ok(i) => self.labels[i].value = value,
            Err(_) if value.is_empty() => {}
            Err(i) => self.labels.insert(i, Label { name, value }),
        }
        self
    }

    /// Deletes `name`.
    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.labels.binary_search_by(|l| (*l.name).cmp(name)) {
            self.labels.remove(i);
        }
        self
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &*self.labels[i].value)
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(l));
        self
    }

    /// The labels as they stand, in name order.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// The finished label set.
    pub fn build(&self) -> Labels {
        Labels(Arc::from(self.labels.as_slice()))
    }
}

/// Whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_and_drops_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("__name__", "up")]);
        let names: Vec<&str> = l.iter().map(|l| &*l.name).collect();
        assert_eq!(names, ["__name__", "a", "b"]);
        assert_eq!(l.get("a"), Some("1"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.metric_name(), Some("up"));
    }

    #[test]
    fn from_unsorted_rejects_repeated_names() {
        let dup = vec![Label::new("a", "1"), Label::new("a", "2")];
        assert_eq!(&*Labels::from_unsorted(dup).unwrap_err(), "a");
    }

    #[test]
    fn hash_depends_on_names_and_values_not_on_concatenation() {
        let a = Labels::from_pairs([("a", "bc")]);
        let b = Labels::from_pairs([("ab", "c")]);
        assert_ne!(a.stable_hash(), b.stable_hash());
        assert_eq!(
            a.stable_hash(),
            Labels::from_pairs([("a", "bc")]).stable_hash()
        );
    }

    #[test]
    fn borrowed_pairs_hash_and_compare_like_labels() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let pairs = [("__name__", "up"), ("job", "a")];
        assert_eq!(Labels::hash_pairs(&pairs), l.stable_hash());
        assert!(l.eq_pairs(&pairs));
        assert!(!l.eq_pairs(&[("__name__", "up")]));
        assert!(!l.eq_pairs(&[("__name__", "up"), ("job", "b")]));
    }

    #[test]
    fn displays_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b"), ("i", "x")]);
        assert_eq!(l.to_string(), r#"up{i="x", job="a\"b"}"#);
        assert_eq!(Labels::from_pairs([("__name__", "up")]).to_string(), "up");
        assert_eq!(Labels::from_pairs([("a", "1")]).to_string(), r#"{a="1"}"#);
    }

    #[test]
    fn builder_sets_and_deletes() {
        let mut b = Labels::from_pairs([("a", "1"), ("b", "2")]).to_builder();
        b.set("c", "3").del("a").set("b", "");
        assert_eq!(b.build(), Labels::from_pairs([("c", "3")]));
    }

    #[test]
    fn validates_names() {
        assert!(is_valid_label_name("job_1"));
        assert!(!is_valid_label_name("1job"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name(""));
        assert!(is_valid_metric_name("a:b_c"));
        assert!(!is_valid_metric_name("a-b"));
    }
}
