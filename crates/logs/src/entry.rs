//! What the log store holds: entries (a timestamp in nanoseconds, a line, structured metadata)
//! in streams identified by their label set.

use medic_model::Labels;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    pub line: String,
    /// Loki's structured metadata (OTLP attributes land here): not indexed, filterable.
    pub metadata: Vec<(String, String)>,
}

impl Entry {
    pub fn new(ts: i64, line: impl Into<String>) -> Self {
        Entry {
            ts,
            line: line.into(),
            metadata: Vec::new(),
        }
    }

    /// The bytes this entry counts for in limits and `bytes_over_time`.
    pub fn size(&self) -> usize {
        self.line.len()
    }
}

/// A stream's entries, as pushed or as read back (then sorted by time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

/// One push: streams with their entries.
pub type Push = Vec<Stream>;
