//! The demo's terminal view: a timeline of events, each stamped with the time since the demo
//! began, and on a terminal a status line with a spinner while it waits.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

pub struct Timeline {
    start: Instant,
    tty: bool,
    status: Mutex<Option<(String, Instant)>>,
    out: Mutex<()>,
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            start: Instant::now(),
            tty: std::io::stdout().is_terminal(),
            status: Mutex::new(None),
            out: Mutex::new(()),
        }
    }

    /// One line of the timeline.
    pub fn event(&self, mark: &str, text: impl AsRef<str>) {
        let _g = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut o = std::io::stdout().lock();
        if self.tty {
            let _ = write!(o, "\r\x1b[2K");
        }
        let _ = writeln!(
            o,
            "{:>7.1}s  {mark} {}",
            self.start.elapsed().as_secs_f64(),
            text.as_ref()
        );
        let _ = o.flush();
    }

    /// Text without a timestamp (headers, tables).
    pub fn plain(&self, text: impl AsRef<str>) {
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
