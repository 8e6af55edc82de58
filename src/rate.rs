//! A rate limit that many tasks wait on at once: `sending.rate_per_second` for a whole send,
//! and each relay's `rate_per_second`.
//!
//! It is the generic cell rate algorithm (GCRA, what governor implements): a slot is due every
//! `interval`, and up to `burst` slots may be taken at once after a quiet spell. Waiters queue
//! on a fair lock, so only the first in line sleeps, once per slot, and slots are taken first
//! come, first served. (governor's own `until_ready` has every waiter sleep until the next
//! free slot, and all of them wake then, one wake-up per waiter per slot.)
//!
//! The sleep is tokio's, on the worker threads' own timer, rather than a timer thread of its
//! own. tokio's timer wakes up to a millisecond late; the next slot is still due one interval
//! after the slot that was due, not after the late wake-up, so a relay's quota of one message
//! every 1.25 ms is kept on average rather than lost a little at every slot.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A rate limit with a queue in front of it.
pub struct RateLimit {
    interval: Duration,
    /// How far ahead of now the schedule may run: `burst - 1` intervals.
    tolerance: Duration,
    /// When the next slot is due (GCRA's theoretical arrival time), behind the queue.
    next: Mutex<Instant>,
}

impl RateLimit {
    /// A slot every `interval` (at least 1 ns), and up to `burst` (at least 1) at once.
    pub fn new(interval: Duration, burst: u32) -> Self {
        let interval = interval.max(Duration::from_nanos(1));
        Self {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// `rate` slots a second, as many at once after a quiet second.
    pub fn per_second(rate: std::num::NonZeroU32) -> Self {
        Self::new(Duration::from_secs(1) / rate.get(), rate.get())
    }

    /// Waits for this caller's turn, then for a free slot, and takes it. Dropping the future
    /// gives up the place in the queue, and the slot if it was not taken yet.
    pub async fn until_ready(&self) {
        let mut next = self.next.lock().await;
        let due = *next;
        let now = Instant::now();
        let start = match due.checked_sub(self.tolerance) {
            Some(earliest) if earliest > now => {
                tokio::time::sleep_until(earliest).await;
                // Counted from when the slot was due, however late the wake-up.
                due
            }
            _ => due.max(now),
        };
        *next = start + self.interval;
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::RateLimit;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_take_slots_in_the_order_they_came_and_at_the_rate() {
        let limit = Arc::new(RateLimit::new(Duration::from_millis(10), 1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (limit, order) = (limit.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                limit.until_ready().await;
                order.lock().unwrap().push(i);
            }));
            // Each waiter is in the queue before the next one comes.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "20 slots of 10 ms took {:?}",
            start.elapsed()
        );
    }

    /// Slots shorter than the timer's millisecond still come at the rate: 800 a second with
    /// a burst of one takes 1.25 s for 1,000 slots, not the 2 s that counting each slot
    /// from a wake-up rounded to the next millisecond would. (tokio's clock is paused and
    /// jumps from timer to timer, so the times are exact.)
    #[tokio::test(start_paused = true)]
    async fn slots_shorter_than_a_millisecond_are_not_lost_to_the_timer() {
        let limit = RateLimit::new(Duration::from_micros(1250), 1);
        let start = tokio::time::Instant::now();
        for _ in 0..1000 {
            limit.until_ready().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_micros(1_248_750) && took <= Duration::from_millis(1251),
            "1,000 slots of 1.25 ms took {took:?}"
        );
    }

    /// A burst is taken at once after a quiet spell, and then slots come at the rate.
    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_and_the_rest_at_the_rate() {
        let limit = RateLimit::per_second(NonZeroU32::new(50).unwrap());
        let start = tokio::time::Instant::now();
        for _ in 0..50 {
            limit.until_ready().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..10 {
            limit.until_ready().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took <= Duration::from_millis(201),
            "10 slots of 20 ms after the burst took {took:?}"
        );
    }
}
