//! Request rate per client (`server.client_rate_limit`): a token bucket per identity, or per
//! address for requests without one, so one noisy dashboard or script cannot starve the
//! others. Time is passed in; the table of buckets is bounded.

use std::collections::HashMap;
use std::sync::Mutex;

/// The most clients tracked at once; past it, buckets idle for a minute are dropped, and if
/// that is not enough, all (a full bucket is what a new client gets anyway).
const MAX_CLIENTS: usize = 10_000;

/// `server.client_rate_limit` in force: `per_second` requests refilled each second, up to
/// `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientRate {
    pub per_second: f64,
    pub burst: f64,
}

/// The buckets.
#[derive(Debug, Default)]
pub struct ClientRates {
    buckets: Mutex<HashMap<String, (f64, f64)>>,
}

impl ClientRates {
    /// Whether `client` may make a request at `now` (seconds, monotonic); takes a token if so.
    pub fn admit(&self, rate: ClientRate, client: &str, now: f64) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() >= MAX_CLIENTS && !b.contains_key(client) {
            b.retain(|_, (_, at)| now - *at < 60.0);
            if b.len() >= MAX_CLIENTS {
                b.clear();
            }
        }
        let (tokens, at) = b.entry(client.to_string()).or_insert((rate.burst, now));
        *tokens = (*tokens + (now - *at).max(0.0) * rate.per_second).min(rate.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_burst_then_its_rate() {
        let r = ClientRates::default();
        let rate = ClientRate {
            per_second: 2.0,
            burst: 3.0,
        };
        let admitted = |client: &str, t: f64| r.admit(rate, client, t);
        assert!((0..3).all(|_| admitted("a", 0.0)));
        assert!(!admitted("a", 0.0), "burst spent");
        assert!(admitted("b", 0.0), "another client is not affected");
        assert!(!admitted("a", 0.25), "half a token");
        assert!(admitted("a", 0.5), "one token after 0.5 s at 2/s");
        assert!(!admitted("a", 0.5));
        // Refill is capped at the burst.
        assert!((0..3).all(|_| admitted("a", 100.0)));
        assert!(!admitted("a", 100.0));
    }

    #[test]
    fn the_table_of_clients_stays_bounded() {
        let r = ClientRates::default();
        let rate = ClientRate {
            per_second: 1.0,
            burst: 1.0,
        };
        for i in 0..(3 * MAX_CLIENTS) {
            r.admit(
                rate,
                &format!("10.0.{}.{}", i / 256, i % 256),
                i as f64 * 1e-3,
            );
        }
        assert!(r.buckets.lock().unwrap().len() <= MAX_CLIENTS);
    }
}
