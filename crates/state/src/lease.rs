//! Leadership among replicas sharing one database: the deterministic core. A replica holds a
//! lease with a fencing token (`pg::PgLease` keeps it in PostgreSQL, timed by the database's
//! clock); it renews it every `renew_every` and acts as leader only while the lease is surely
//! still its own by its *own* monotonic clock — until `sent + ttl − margin`, where `sent` is
//! when the renewal that succeeded was sent, which is before the database stamped it. A
//! replica paused (SIGSTOP, a long GC, a partition) past that moment steps down before doing
//! anything, even if it cannot reach the database to learn it lost the lease. Time is passed
//! in; the shell performs the attempts.

/// The lease's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a lease lasts after each renewal (default 10 s): a dead leader is replaced
    /// within about this.
    pub ttl_ms: i64,
    /// How often the holder renews and followers try to take it (default ttl/3).
    pub renew_every_ms: i64,
    /// Subtracted from the lease's end by the holder's own reckoning (default ttl/10), for
    /// clocks that run at slightly different rates.
    pub margin_ms: i64,
}

impl LeaseTiming {
    /// `ttl` with the defaults derived from it.
    pub fn from_ttl(ttl_ms: i64) -> LeaseTiming {
        LeaseTiming {
            ttl_ms,
            renew_every_ms: (ttl_ms / 3).max(1),
            margin_ms: ttl_ms / 10,
        }
    }
}

/// An attempt the shell should make now: take the lease (as a follower) or renew it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// When it is sent (the `now` given to [`Leadership::poll`]).
    pub sent_at: i64,
    /// The token held, when renewing.
    pub renewing: Option<i64>,
}

/// What the database answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The lease is ours, with this fencing token.
    Held(i64),
    /// Another replica holds it.
    Taken,
    /// No answer (the database is unreachable, the query failed).
    Failed(String),
}

/// A change of role, for the shell to act on and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    BecameLeader { token: i64 },
    SteppedDown { token: i64, why: String },
}

/// One replica's view of its leadership.
#[derive(Debug, Clone)]
pub struct Leadership {
    timing: LeaseTiming,
    held: Option<(i64, i64)>,
    next_attempt: i64,
    in_flight: Option<i64>,
}

impl Leadership {
    pub fn new(timing: LeaseTiming) -> Leadership {
        Leadership {
            timing,
            held: None,
            next_attempt: i64::MIN,
            in_flight: None,
        }
    }

    /// The fencing token while this replica may act as leader at `now`; `None` otherwise.
    /// Check it right before every action and notification.
    pub fn token(&self, now: i64) -> Option<i64> {
        self.held
            .filter(|&(_, safe_until)| now < safe_until)
            .map(|(t, _)| t)
    }

    /// Steps down if the lease ran out unrenewed, and says whether to attempt now.
    pub fn poll(&mut self, now: i64) -> (Option<Attempt>, Option<Change>) {
        let mut change = None;
        if let Some((token, safe_until)) = self.held {
            if now >= safe_until {
                self.held = None;
                change = Some(Change::SteppedDown {
                    token,
                    why: "the lease was not renewed in time".into(),
                });
            }
        }
        if self.in_flight.is_some() || now < self.next_attempt {
            return (None, change);
        }
        self.in_flight = Some(now);
        let renewing = self.held.map(|(t, _)| t);
        (
            Some(Attempt {
                sent_at: now,
                renewing,
            }),
            change,
        )
    }

    /// The answer to the attempt sent at `sent_at`, received at `now`.
    pub fn answered(&mut self, sent_at: i64, now: i64, answer: Answer) -> Option<Change> {
        if self.in_flight != Some(sent_at) {
            return None;
        }
        self.in_flight = None;
        let t = self.timing;
        self.next_attempt = sent_at + t.renew_every_ms;
        match answer {
            Answer::Held(token) => {
                let safe_until = sent_at + t.ttl_ms - t.margin_ms;
                let before = self.held.map(|(tok, _)| tok);
                if now >= safe_until {
                    // The answer came too late to act on: the lease may already be gone.
                    self.held = None;
                    return before.map(|token| Change::SteppedDown {
                        token,
                        why: "the renewal was answered too late".into(),
                    });
                }
                self.held = Some((token, safe_until));
                match before {
                    Some(old) if old == token => None,
                    _ => Some(Change::BecameLeader { token }),
                }
            }
            Answer::Taken => self.held.take().map(|(token, _)| Change::SteppedDown {
                token,
                why: "another replica holds the lease".into(),
            }),
            // Keep the lease while it is safe; `poll` steps down when it is not. Try again soon.
            Answer::Failed(_) => {
                self.next_attempt = now + t.renew_every_ms.min(1_000);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeline: at each time, poll; when told, answer the attempt in flight.
    enum Ev {
        Poll(i64),
        Answer(i64, Answer),
    }

    fn run(events: Vec<Ev>) -> (Leadership, Vec<(i64, String)>) {
        let mut l = Leadership::new(LeaseTiming::from_ttl(10_000));
        let mut out = Vec::new();
        let mut sent = None;
        for e in events {
            match e {
                Ev::Poll(now) => {
                    let (a, c) = l.poll(now);
                    if let Some(c) = c {
                        out.push((now, format!("{c:?}")));
                    }
                    if let Some(a) = a {
                        sent = Some(a.sent_at);
                        out.push((now, format!("attempt renewing={:?}", a.renewing)));
                    }
                }
                Ev::Answer(now, ans) => {
                    if let Some(c) = l.answered(sent.unwrap(), now, ans) {
                        out.push((now, format!("{c:?}")));
                    }
                }
            }
        }
        (l, out)
    }

    #[test]
    fn a_follower_takes_a_free_lease_renews_it_and_keeps_acting() {
        let (l, out) = run(vec![
            Ev::Poll(0),
            Ev::Answer(20, Answer::Held(7)),
            Ev::Poll(1_000),
            Ev::Poll(3_333),
            Ev::Answer(3_350, Answer::Held(7)),
        ]);
        assert_eq!(
            out,
            vec![
                (0, "attempt renewing=None".into()),
                (20, "BecameLeader { token: 7 }".into()),
                (3_333, "attempt renewing=Some(7)".into()),
            ]
        );
        // Safe until the last renewal's send time + ttl − margin: 3 333 + 9 000.
        assert_eq!(l.token(12_332), Some(7));
        assert_eq!(l.token(12_333), None);
    }

    #[test]
    fn a_leader_that_cannot_renew_steps_down_by_its_own_clock() {
        let (l, out) = run(vec![
            Ev::Poll(0),
            Ev::Answer(10, Answer::Held(1)),
            Ev::Poll(3_333),
            Ev::Answer(3_400, Answer::Failed("connection refused".into())),
            Ev::Poll(4_400),
            Ev::Poll(8_999),
            Ev::Poll(9_000),
            Ev::Answer(9_500, Answer::Failed("timeout".into())),
        ]);
        let downs: Vec<_> = out
            .iter()
            .filter(|(_, s)| s.contains("SteppedDown"))
            .collect();
        assert_eq!(
            downs,
            [&(
                9_000,
                "SteppedDown { token: 1, why: \"the lease was not renewed in time\" }".to_string()
            )],
            "{out:?}"
        );
        assert_eq!(l.token(9_500), None);
    }

    #[test]
    fn a_leader_paused_past_its_lease_does_not_act_when_it_wakes() {
        // SIGSTOP after the renewal at 0; woken at 60 s: before polling, the token is gone.
        let (l, _) = run(vec![Ev::Poll(0), Ev::Answer(5, Answer::Held(3))]);
        assert_eq!(l.token(5), Some(3));
        assert_eq!(l.token(60_000), None, "no action on waking");
        let mut l = l;
        let (attempt, change) = l.poll(60_000);
        assert!(matches!(change, Some(Change::SteppedDown { token: 3, .. })));
        assert_eq!(attempt.unwrap().renewing, None, "it asks as a follower");
        // Meanwhile another replica took the lease.
        assert_eq!(l.answered(60_000, 60_010, Answer::Taken), None);
        assert_eq!(l.token(60_010), None);
    }

    #[test]
    fn a_late_answer_or_a_lost_lease_ends_leadership() {
        let (l, out) = run(vec![Ev::Poll(0), Ev::Answer(9_500, Answer::Held(1))]);
        assert_eq!(
            l.token(9_500),
            None,
            "answered after the safe end: never leader"
        );
        assert!(
            out.iter().all(|(_, s)| !s.contains("BecameLeader")),
            "{out:?}"
        );
        let (_, out) = run(vec![
            Ev::Poll(0),
            Ev::Answer(5, Answer::Held(1)),
            Ev::Poll(3_333),
            Ev::Answer(3_340, Answer::Taken),
        ]);
        assert_eq!(
            out.last().unwrap(),
            &(
                3_340,
                "SteppedDown { token: 1, why: \"another replica holds the lease\" }".into()
            )
        );
    }
}
