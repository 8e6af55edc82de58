//! A rate limit that many tasks wait on at once: `sending.rate_per_second` for a whole send,
//! and each relay's `rate_per_second`.
//!
//! governor's `until_ready` has every waiter sleep until the next free slot. They all wake
//! then; one takes the slot and the others sleep again, so each slot costs a wake-up per
//! waiter: with a connection's worth of messages waiting, a send paced at 800 a second
//! cost 0.37 to 0.46 CPU seconds per 1,000 messages, and 0.32 with the queue below (0.20
//! unpaced; `scripts/bench-send-pg.sh`). Here the waiters queue on a fair lock and only the
//! first in line waits on the limiter: one wake-up per slot, and slots are taken first come,
//! first served.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A direct (unkeyed) rate limiter with a queue in front of it.
pub struct RateLimit {
    limiter: DefaultDirectRateLimiter,
    queue: tokio::sync::Mutex<()>,
}

impl RateLimit {
    pub fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::direct(quota),
            queue: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits for this caller's turn, then for a free slot, and takes it. Dropping the future
    /// gives up the place in the queue.
    pub async fn until_ready(&self) {
        let _turn = self.queue.lock().await;
        self.limiter.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use governor::Quota;

    use super::RateLimit;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_take_slots_in_the_order_they_came_and_at_the_rate() {
        let limit = Arc::new(RateLimit::new(
            Quota::with_period(Duration::from_millis(10)).unwrap(),
        ));
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
}
