//! Where issue files are read and rendered in `herald serve` and `herald send`: off the async
//! workers, on threads of their own with a large stack, a few at a time.
//!
//! Parsing and rendering an issue is CPU work of tens of milliseconds for a large file; done
//! on the async workers it would stall every other request (and `/health`) meanwhile. Each
//! job runs on a fresh thread with [`STACK_SIZE`] of stack (the limits in `issue::limits`
//! already keep nesting far from what could overflow it), at most [`RenderPool::new`]'s
//! number at once, and a job that panics fails with [`PoolError::Panicked`] instead of taking
//! the process with it. A thread per job costs some tens of microseconds, nothing next to a
//! render, and leaves nothing behind when a job goes wrong.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::{oneshot, Semaphore};

/// Stack of each render thread: 32 MiB, against the 2 MiB of a tokio worker.
pub const STACK_SIZE: usize = 32 * 1024 * 1024;

/// Why a job did not give its result.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("rendering failed unexpectedly ({0}); the issue was not rendered")]
    Panicked(String),
    #[error("cannot start a render thread: {0}")]
    Spawn(std::io::Error),
}

/// A bound on concurrent render threads. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RenderPool {
    permits: Arc<Semaphore>,
}

impl RenderPool {
    /// At most `threads` jobs at once (at least one).
    pub fn new(threads: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(threads.max(1))),
        }
    }

    /// Runs `job` on a render thread and gives back its result, or why there is none.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let _permit = self.permits.acquire().await.expect("the pool never closes");
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("herald-render".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(job)));
            })
            .map_err(PoolError::Spawn)?;
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(PoolError::Panicked(panic_message(panic.as_ref()))),
            Err(_) => Err(PoolError::Panicked("the render thread ended".into())),
        }
    }
}

impl Default for RenderPool {
    /// As many threads as cores, at most four.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores.min(4))
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_s_result_comes_back_and_a_panic_is_an_error_not_a_crash() {
        let pool = RenderPool::new(1);
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
        let err = pool
            .run(|| -> u8 { panic!("mrml gave up") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("mrml gave up"), "{err}");
        // The pool still works after a panic.
        assert_eq!(pool.run(|| "again").await.unwrap(), "again");
    }

    #[tokio::test]
    async fn deep_recursion_fits_the_render_stack() {
        fn depth(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 512]);
            if n == 0 {
                u32::from(pad[0])
            } else {
                depth(n - 1) + 1 + u32::from(pad[1])
            }
        }
        // About 10 MiB of stack: five times what a tokio worker has.
        let pool = RenderPool::new(1);
        assert_eq!(pool.run(|| depth(20_000)).await.unwrap(), 20_000);
    }
}
