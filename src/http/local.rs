//! The local hand-off: a bounded queue in the process, drained by `--jobs` workers that run the
//! builds here (the same life as the function's), into the local store. A batch's children go
//! through a queue of their own, taken first and not bounded: the batch was accepted whole (at
//! most 100 children), and a worker handing off the next children must never wait for room
//! only workers could make.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};

use crate::lifecycle::Builds;
use crate::lifecycle::{Dispatch, DispatchError};
use crate::source::Source;
use crate::trigger::BuildTarget;

/// Builds waiting to run, and the workers that run them.
#[derive(Clone)]
pub struct LocalQueue {
    sender: mpsc::Sender<BuildTarget>,
    children: mpsc::UnboundedSender<BuildTarget>,
    capacity: usize,
}

/// The queue of a batch's children (see the module's note).
#[derive(Clone)]
pub struct ChildQueue {
    sender: mpsc::UnboundedSender<BuildTarget>,
}

/// What the workers take from: the children first, then the builds.
struct Waiting {
    builds: mpsc::Receiver<BuildTarget>,
    children: mpsc::UnboundedReceiver<BuildTarget>,
}

impl Waiting {
    async fn next(&mut self) -> Option<BuildTarget> {
        tokio::select! {
            biased;
            Some(child) = self.children.recv() => Some(child),
            build = self.builds.recv() => build,
        }
    }
}

impl LocalQueue {
    /// Starts `jobs` workers (at least one) over a queue of `capacity` waiting builds, each
    /// build with `timeout` as its deadline. Call inside a tokio runtime.
    pub fn start<S: Source + 'static>(
        builds: Arc<Builds<S>>,
        jobs: usize,
        capacity: usize,
        timeout: Duration,
    ) -> LocalQueue {
        let capacity = capacity.max(1);
        let (sender, waiting_builds) = mpsc::channel::<BuildTarget>(capacity);
        let (children, waiting_children) = mpsc::unbounded_channel::<BuildTarget>();
        let receiver = Arc::new(Mutex::new(Waiting {
            builds: waiting_builds,
            children: waiting_children,
        }));
        for worker in 0..jobs.max(1) {
            let (builds, receiver) = (builds.clone(), receiver.clone());
            tokio::spawn(async move {
                loop {
                    let next = receiver.lock().await.next().await;
                    let Some(target) = next else { break };
                    let project = target.project.to_string();
                    let deadline = Instant::now().checked_add(timeout);
                    match builds.build(target, deadline).await {
                        Ok(summary) => tracing::info!(
                            worker,
                            project,
                            build_id = summary.build_id.as_deref().unwrap_or("-"),
                            status = summary.status.as_str(),
                            "build finished"
                        ),
                        Err(err) => tracing::error!(
                            worker,
                            project,
                            error_type = err.error_type(),
                            error = %err,
                            "build failed in pushbuild"
                        ),
                    }
                }
            });
        }
        LocalQueue {
            sender,
            children,
            capacity,
        }
    }

    /// Where a batch's children are handed off.
    pub fn children(&self) -> ChildQueue {
        ChildQueue {
            sender: self.children.clone(),
        }
    }
}

impl Dispatch for ChildQueue {
    async fn dispatch(&self, target: BuildTarget) -> Result<(), DispatchError> {
        self.sender
            .send(target)
            .map_err(|_| DispatchError::Closed("the workers have stopped".into()))
    }
}

impl Dispatch for LocalQueue {
    async fn dispatch(&self, target: BuildTarget) -> Result<(), DispatchError> {
        self.sender.try_send(target).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => DispatchError::QueueFull {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => {
                DispatchError::Closed("the workers have stopped".into())
            }
        })
    }
}
