//! Work that must finish even if the request that started it goes away.
//!
//! Requests run on the HTTP workers' runtimes, which end (dropping their
//! tasks) as soon as the requests are done: a send or a judged attempt that
//! outlives its request must not live there, but on the runtime that built the
//! service, which outlives them.

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

#[derive(Clone, Debug)]
pub struct Tasks {
    runtime: Handle,
}

impl Tasks {
    /// Must be called within the runtime that outlives the HTTP server.
    pub fn current() -> Self {
        Self {
            runtime: Handle::current(),
        }
    }

    /// Runs `work` on the long-lived runtime.
    pub fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(work)
    }

    /// The same, counted by `tracker` (so that a stop can wait for it).
    pub fn spawn_tracked<F>(&self, tracker: &TaskTracker, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tracker.spawn_on(work, &self.runtime)
    }
}
