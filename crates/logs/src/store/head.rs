//! The head: entries pushed since the last flush, in memory, by stream. Out-of-order entries
//! are accepted; a stream remembers whether it is still in order and sorts copies it hands out
//! otherwise.

use std::collections::HashMap;

use medic_model::{Labels, Matcher};

use crate::entry::{Entry, Stream};

#[derive(Default)]
pub struct Head {
    streams: Vec<HeadStream>,
    by_labels: HashMap<Labels, usize>,
    /// Bytes of lines and metadata held.
    pub bytes: usize,
    pub entries: usize,
    pub min_ts: i64,
    pub max_ts: i64,
}

struct HeadStream {
    labels: Labels,
    entries: Vec<Entry>,
    in_order: bool,
}

pub fn matches(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

impl Head {
    /// Adds a stream's entries.
    pub fn append(&mut self, stream: Stream) {
        if stream.entries.is_empty() {
            return;
        }
        let i = match self.by_labels.get(&stream.labels) {
            Some(i) => *i,
            None => {
                self.streams.push(HeadStream {
                    labels: stream.labels.clone(),
                    entries: Vec::new(),
                    in_order: true,
                });
                self.by_labels
                    .insert(stream.labels.clone(), self.streams.len() - 1);
                self.streams.len() - 1
            }
        };
        let s = &mut self.streams[i];
        s.entries.reserve(stream.entries.len());
        for e in stream.entries {
            if s.entries.last().is_some_and(|l| l.ts > e.ts) {
                s.in_order = false;
            }
            if self.entries == 0 {
                self.min_ts = e.ts;
                self.max_ts = e.ts;
            }
            self.min_ts = self.min_ts.min(e.ts);
            self.max_ts = self.max_ts.max(e.ts);
            self.entries += 1;
            self.bytes += entry_bytes(&e);
            s.entries.push(e);
        }
    }

    /// Copies of the matching streams' entries with `start <= ts < end`, each in time order.
    pub fn select(&self, matchers: &[Matcher], start: i64, end: i64, out: &mut Vec<Stream>) {
        if self.entries == 0 || end <= self.min_ts || start > self.max_ts {
            return;
        }
        for s in self.streams.iter().filter(|s| matches(&s.labels, matchers)) {
            let mut entries: Vec<Entry> = if s.in_order {
                let lo = s.entries.partition_point(|e| e.ts < start);
                let hi = s.entries.partition_point(|e| e.ts < end);
                s.entries[lo..hi].to_vec()
            } else {
                let mut v: Vec<Entry> = s
                    .entries
                    .iter()
                    .filter(|e| e.ts >= start && e.ts < end)
                    .cloned()
                    .collect();
                v.sort_by_key(|e| e.ts);
                v
            };
            if !entries.is_empty() {
                entries.shrink_to_fit();
                out.push(Stream {
                    labels: s.labels.clone(),
                    entries,
                });
            }
        }
    }

    /// Every stream with its entries in time order: borrowed when they are in order already,
    /// sorted copies otherwise (for a flush).
    pub fn sorted(&self) -> Vec<(Labels, std::borrow::Cow<'_, [Entry]>)> {
        self.streams
            .iter()
            .filter(|s| !s.entries.is_empty())
            .map(|s| {
                let entries = if s.in_order {
                    std::borrow::Cow::Borrowed(s.entries.as_slice())
                } else {
                    let mut v = s.entries.clone();
                    v.sort_by_key(|e| e.ts);
                    std::borrow::Cow::Owned(v)
                };
                (s.labels.clone(), entries)
            })
            .collect()
    }

    /// The label sets of the streams with entries in `[start, end)` matching `matchers`.
    pub fn series(&self, matchers: &[Matcher], start: i64, end: i64, out: &mut Vec<Labels>) {
        if self.entries == 0 || end <= self.min_ts || start > self.max_ts {
            return;
        }
        for s in self.streams.iter().filter(|s| matches(&s.labels, matchers)) {
            if s.entries.iter().any(|e| e.ts >= start && e.ts < end) {
                out.push(s.labels.clone());
            }
        }
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }
}

/// What an entry counts for in the head's size.
pub fn entry_bytes(e: &Entry) -> usize {
    e.line.len()
        + e.metadata
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + 16
}
