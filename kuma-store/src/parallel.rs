//! Parsing on every core.
//!
//! Parsing is most of the time it takes to read a store: a 10,000-rule
//! gateway in 100 files spends about two thirds of `validate` in it. Files
//! (and database rows) parse independently, so they are shared out among
//! one thread per core; results come back in input order, so what is read
//! does not depend on which thread finished first.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` applied to every item, on up to one thread per core, in input order.
/// One item is done on the calling thread.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    // Items are taken one at a time from a shared counter rather than in
    // fixed chunks, so one large file does not leave the other cores idle.
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { return done };
            done.push((i, f(item)));
        }
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for handle in others {
            // A panic in `f` is re-raised here, as it would be without threads.
            all.extend(handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        all
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_input_order() {
        let items: Vec<u64> = (0..1000).collect();
        let out = map(&items, |i| {
            // Uneven work, so threads finish out of order.
            std::thread::sleep(std::time::Duration::from_micros(i % 7 * 10));
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(map(&[] as &[u64], |i| *i).is_empty());
    }
}
