//! The inverted index from `(label name, label value)` to sorted series ids, and the matcher
//! evaluation over it that the head and the blocks share.

use std::collections::HashMap;
use std::sync::Arc;

use medic_model::{Labels, MatchType, Matcher};

/// Sorted series ids per label pair, plus the sorted list of all ids.
#[derive(Debug, Default)]
pub struct Postings {
    map: HashMap<Arc<str>, HashMap<Arc<str>, Vec<u64>>>,
    all: Vec<u64>,
}

fn insert_sorted(list: &mut Vec<u64>, id: u64) {
    match list.last() {
        Some(&last) if last < id => list.push(id),
        None => list.push(id),
        _ => {
            if let Err(i) = list.binary_search(&id) {
                list.insert(i, id);
            }
        }
    }
}

impl Postings {
    /// Adds series `id` with `labels`.
    pub fn add(&mut self, id: u64, labels: &Labels) {
        for l in labels.iter() {
            let values = self.map.entry(l.name.clone()).or_default();
            insert_sorted(values.entry(l.value.clone()).or_default(), id);
        }
        insert_sorted(&mut self.all, id);
    }

    /// Removes a batch of series; `removed` must be sorted.
    pub fn remove(&mut self, removed: &[(u64, Labels)]) {
        if removed.is_empty() {
            return;
        }
        let mut ids: Vec<u64> = removed.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        for (id, labels) in removed {
            for l in labels.iter() {
                if let Some(values) = self.map.get_mut(&l.name) {
                    if let Some(list) = values.get_mut(&l.value) {
                        if let Ok(i) = list.binary_search(id) {
                            list.remove(i);
                        }
                        if list.is_empty() {
                            values.remove(&l.value);
                        }
                    }
                    if values.is_empty() {
                        self.map.remove(&l.name);
                    }
                }
            }
        }
        self.all.retain(|id| ids.binary_search(id).is_err());
    }

    /// Every id, sorted.
    pub fn all(&self) -> &[u64] {
        &self.all
    }

    /// Label names present, unsorted.
    pub fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.map.keys()
    }

    /// Values of `name` with their ids.
    pub fn values(&self, name: &str) -> impl Iterator<Item = (&Arc<str>, &Vec<u64>)> {
        self.map.get(name).into_iter().flat_map(|m| m.iter())
    }

    /// Ids of the series that may match all `matchers` (a superset: callers check every matcher
    /// against the series' labels). Matchers that reject the empty string narrow the candidates
    /// through the index; the others cannot, because they also match series without the label.
    pub fn candidates(&self, matchers: &[Matcher]) -> Vec<u64> {
        let mut result: Option<Vec<u64>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let list = match m.kind {
                MatchType::Equal => self
                    .map
                    .get(m.name.as_str())
                    .and_then(|v| v.get(m.value.as_str()))
                    .cloned()
                    .unwrap_or_default(),
                _ => union(
                    self.values(&m.name)
                        .filter(|(v, _)| m.matches(v))
                        .map(|(_, ids)| ids.as_slice()),
                ),
            };
            result = Some(match result {
                None => list,
                Some(prev) => intersect(&prev, &list),
            });
            if result.as_ref().is_some_and(|r| r.is_empty()) {
                return Vec::new();
            }
        }
        result.unwrap_or_else(|| self.all.clone())
    }

    /// Approximate heap bytes, for memory accounting.
    pub fn approx_bytes(&self) -> usize {
        let lists: usize = self
            .map
            .values()
            .flat_map(|m| m.values())
            .map(|l| l.capacity() * 8 + 48)
            .sum();
        lists + self.all.capacity() * 8
    }
}

/// Whether `labels` satisfy every matcher (a missing label reads as "").
pub fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

/// The sorted union of sorted lists.
pub fn union<'a>(lists: impl Iterator<Item = &'a [u64]>) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    let lists: Vec<&[u64]> = lists.collect();
    if lists.len() == 1 {
        return lists[0].to_vec();
    }
    for l in lists {
        out.extend_from_slice(l);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The intersection of two sorted lists.
pub fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx() -> (Postings, Vec<Labels>) {
        let series = vec![
            Labels::from_pairs([("__name__", "up"), ("job", "api"), ("env", "prod")]),
            Labels::from_pairs([("__name__", "up"), ("job", "web")]),
            Labels::from_pairs([("__name__", "rps"), ("job", "api"), ("env", "dev")]),
        ];
        let mut p = Postings::default();
        for (i, l) in series.iter().enumerate() {
            p.add(i as u64, l);
        }
        (p, series)
    }

    fn select(p: &Postings, series: &[Labels], ms: &[&str]) -> Vec<u64> {
        let ms: Vec<Matcher> = ms.iter().map(|m| Matcher::parse(m).unwrap()).collect();
        p.candidates(&ms)
            .into_iter()
            .filter(|id| matches_all(&series[*id as usize], &ms))
            .collect()
    }

    #[test]
    fn selects_with_all_matcher_kinds() {
        let (p, s) = idx();
        assert_eq!(select(&p, &s, &[r#"__name__="up""#]), vec![0, 1]);
        assert_eq!(select(&p, &s, &[r#"job=~"a.*""#, r#"env!="dev""#]), vec![0]);
        assert_eq!(select(&p, &s, &[r#"env="""#]), vec![1]);
        assert_eq!(select(&p, &s, &[r#"env!="""#]), vec![0, 2]);
        assert_eq!(select(&p, &s, &[r#"job!~"api""#]), vec![1]);
        assert_eq!(select(&p, &s, &[r#"env=~"prod|""#]), vec![0, 1]);
        assert_eq!(select(&p, &s, &[r#"nope="x""#]), Vec::<u64>::new());
    }

    #[test]
    fn remove_cleans_empty_entries() {
        let (mut p, s) = idx();
        p.remove(&[(1, s[1].clone())]);
        assert_eq!(p.all(), &[0, 2]);
        assert_eq!(p.values("job").count(), 1);
    }
}
