//! Acknowledgements (what Alertmanager #1860 asked for): someone takes an alert group, and
//! it is not notified again until it changes (a new alert fires in it) or the ack expires.
//! Escalation policies page the next receiver when a matching group stays unacknowledged.

use std::collections::HashSet;

use crate::types::Fingerprint;

/// An acknowledgement of one alert group.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub group_key: String,
    pub author: String,
    pub comment: String,
    /// When it was given (ms).
    pub at: i64,
    /// When it lapses (ms).
    pub expires_at: i64,
    /// The alerts firing when it was given; a new one ends the ack.
    pub firing: Vec<Fingerprint>,
}

impl Ack {
    /// Whether the ack still holds for a group firing `firing` at `now`.
    pub fn covers(&self, firing: &HashSet<Fingerprint>, now: i64) -> bool {
        if now >= self.expires_at {
            return false;
        }
        let acked: HashSet<&Fingerprint> = self.firing.iter().collect();
        firing.iter().all(|f| acked.contains(f))
    }
}
