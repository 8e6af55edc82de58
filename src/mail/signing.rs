//! A fixed pool of OS threads for composing DKIM-signed copies.
//!
//! An RSA-2048 signature costs about 1.5 ms of CPU. Done on the async runtime's threads, it
//! would stall every connection served by the same thread; done with `spawn_blocking`, it
//! would start as many threads as there are messages in flight. The pool has one thread per
//! core (`std::thread::available_parallelism`), takes jobs in the order they were submitted
//! (one FIFO queue), and hands each result back to the task that asked for it, so the
//! dispatcher keeps its order of work and its group commits.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The threads and their queue. Dropping the pool lets the threads finish the queue and end.
pub(crate) struct SigningPool {
    queue: Mutex<mpsc::Sender<Job>>,
    threads: usize,
}

impl std::fmt::Debug for SigningPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningPool")
            .field("threads", &self.threads)
            .finish()
    }
}

impl SigningPool {
    /// One thread per core the process may use.
    pub(crate) fn sized_to_machine() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(threads)
    }

    pub(crate) fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("herald-sign-{i}"))
                .spawn(move || loop {
                    // The lock is held only while taking a job off the queue.
                    let job = match rx.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .expect("start a signing thread");
        }
        Self {
            queue: Mutex::new(tx),
            threads,
        }
    }

    /// How many threads sign.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on the pool and waits for its result without blocking the runtime.
    /// `None` if `work` panicked (the thread survives it).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if let Ok(result) = catch_unwind(AssertUnwindSafe(work)) {
                let _ = tx.send(result);
            }
        });
        self.queue.lock().ok()?.send(job).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_on_its_own_threads_and_survives_a_panic() {
        let pool = SigningPool::new(2);
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .flatten();
        assert!(name.is_some_and(|n| n.starts_with("herald-sign-")));
        assert_eq!(pool.run(|| -> u32 { panic!("boom") }).await, None);
        let results = futures::future::join_all((0..20).map(|i| pool.run(move || i * 2))).await;
        assert_eq!(results, (0..20).map(|i| Some(i * 2)).collect::<Vec<_>>());
    }
}
