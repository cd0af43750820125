//! Work over independent series spread across cores, when there is enough of it to pay for
//! the threads, with the query's deadline and cancellation checked as it goes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::Error;

/// Below this many values (series × steps) one thread does the work: starting threads costs
/// tens of microseconds, about what a few thousand values take.
pub(crate) const PARALLEL_MIN_CELLS: usize = 1 << 16;

/// Most threads one query uses.
const MAX_THREADS: usize = 8;

fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    })
}

/// When a query must stop: its deadline, or its caller's cancellation.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    pub(crate) deadline: Instant,
    pub(crate) cancel: Option<Arc<AtomicBool>>,
}

impl Stop {
    /// Fails when the query's time is up or its caller has cancelled it.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(Error::Cancelled);
        }
        if Instant::now() > self.deadline {
            return Err(Error::Timeout("query execution"));
        }
        Ok(())
    }
}

/// `f` of every item, in order; on several threads when `cells` (the work, in values) is at
/// least [`PARALLEL_MIN_CELLS`] and the machine has cores to spare. `stop` is checked every
/// 256 items on each thread.
pub(crate) fn map<T, R, F>(items: &[T], cells: usize, stop: &Stop, f: F) -> Result<Vec<R>, Error>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let run = |chunk: &[T]| -> Result<Vec<R>, Error> {
        let mut out = Vec::with_capacity(chunk.len());
        for (i, x) in chunk.iter().enumerate() {
            if i % 256 == 0 {
                stop.check()?;
            }
            out.push(f(x));
        }
        Ok(out)
    };
    let n = threads().min(items.len());
    if n <= 1 || cells < PARALLEL_MIN_CELLS {
        return run(items);
    }
    let per = items.len().div_ceil(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .skip(1)
            .map(|chunk| scope.spawn(move || run(chunk)))
            .collect();
        // This thread takes the first chunk rather than wait idle.
        let mut out = run(&items[..per.min(items.len())])?;
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop() -> Stop {
        Stop {
            deadline: Instant::now() + std::time::Duration::from_secs(60),
            cancel: None,
        }
    }

    #[test]
    fn results_keep_their_order_with_or_without_threads() {
        let items: Vec<u64> = (0..10_001).collect();
        for cells in [0, PARALLEL_MIN_CELLS, usize::MAX] {
            let got = map(&items, cells, &stop(), |x| x * 3).unwrap();
            assert_eq!(got, items.iter().map(|x| x * 3).collect::<Vec<_>>());
        }
        assert!(map(&[] as &[u64], usize::MAX, &stop(), |x| *x)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_cancelled_query_stops_on_every_thread() {
        let cancel = Arc::new(AtomicBool::new(true));
        let s = Stop {
            cancel: Some(cancel),
            ..stop()
        };
        let items: Vec<u64> = (0..10_000).collect();
        assert_eq!(map(&items, usize::MAX, &s, |x| *x), Err(Error::Cancelled));
    }
}
