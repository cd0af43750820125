//! The demo's terminal view: a timeline of events, each stamped with the time since the demo
//! began, and on a terminal a status line with a spinner while it waits.
//!
//! Events are printed in the order they happened, not the order the demo learned of them: medic
//! is polled, so an alert that fired before the supervisor restarted a patient may be seen
//! after the restart. Each event carries its time (medic's, for what medic did), is held for
//! [`HOLD_MS`], and the held events are printed sorted by time.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

/// How long an event waits for earlier ones that the poller has not seen yet (an alert is seen
/// firing up to a `for`, an evaluation and a poll after it became active).
const HOLD_MS: i64 = 1500;

pub struct Timeline {
    start_ms: i64,
    tty: bool,
    status: Mutex<Option<(String, Instant)>>,
    out: Mutex<()>,
    /// Events not printed yet: (time in ms since the epoch, arrival order, mark, text).
    held: Mutex<Vec<(i64, u64, String, String)>>,
    seq: std::sync::atomic::AtomicU64,
    /// The time of the last line printed: a later line is never shown as earlier.
    printed: std::sync::atomic::AtomicI64,
}

fn now_ms() -> i64 {
    medic_model::Clock::now_ms(&medic_model::SystemClock)
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            start_ms: now_ms(),
            tty: std::io::stdout().is_terminal(),
            status: Mutex::new(None),
            out: Mutex::new(()),
            held: Mutex::new(Vec::new()),
            seq: std::sync::atomic::AtomicU64::new(0),
            printed: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    /// One line of the timeline, happening now.
    pub fn event(&self, mark: &str, text: impl AsRef<str>) {
        self.event_at(now_ms(), mark, text);
    }

    /// One line of the timeline, for something that happened at `at` (ms since the epoch).
    pub fn event_at(&self, at: i64, mark: &str, text: impl AsRef<str>) {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.held.lock().unwrap_or_else(|p| p.into_inner()).push((
            at,
            n,
            mark.to_string(),
            text.as_ref().to_string(),
        ));
    }

    /// Prints the held events older than the hold time (all of them with `all`), in time order.
    pub fn flush(&self, all: bool) {
        let cutoff = if all { i64::MAX } else { now_ms() - HOLD_MS };
        let mut due = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let (due, keep): (Vec<_>, Vec<_>) = held.drain(..).partition(|e| e.0 <= cutoff);
            *held = keep;
            due
        };
        if due.is_empty() {
            return;
        }
        due.sort_by_key(|e| (e.0, e.1));
        let _g = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut o = std::io::stdout().lock();
        for (at, _, mark, text) in due {
            // Something seen too late for its place is shown at the last time printed.
            let at = at.max(
                self.printed
                    .fetch_max(at, std::sync::atomic::Ordering::Relaxed),
            );
            if self.tty {
                let _ = write!(o, "\r\x1b[2K");
            }
            let secs = (at - self.start_ms).max(0) as f64 / 1000.0;
            let _ = writeln!(o, "{secs:>7.1}s  {mark} {text}");
        }
        let _ = o.flush();
    }

    /// Text without a timestamp (headers, tables), after every event held so far.
    pub fn plain(&self, text: impl AsRef<str>) {
        self.flush(true);
        let _g = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut o = std::io::stdout().lock();
        if self.tty {
            let _ = write!(o, "\r\x1b[2K");
        }
        let _ = writeln!(o, "{}", text.as_ref());
        let _ = o.flush();
    }

    /// What the demo is waiting for (shown with a spinner and a clock on a terminal).
    pub fn waiting(&self, what: Option<String>) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = what.map(|w| (w, Instant::now()));
        if self.tty {
            self.tick(0);
        }
    }

    /// Redraws the status line; called a few times a second.
    pub fn tick(&self, n: usize) {
        self.flush(false);
        if !self.tty {
            return;
        }
        let status = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let _g = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut o = std::io::stdout().lock();
        let _ = write!(o, "\r\x1b[2K");
        if let Some((what, since)) = status {
            let _ = write!(
                o,
                "         {} {what} ({:.0}s)",
                SPINNER[n % SPINNER.len()],
                since.elapsed().as_secs_f64()
            );
        }
        let _ = o.flush();
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        self.flush(true);
    }
}
