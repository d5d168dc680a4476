use tokio::sync::watch;
use tokio::task::JoinSet;

/// Tasks that start and stop together: the shutdown signal they watch, and their handles.
pub struct TaskGroup {
    shutdown: watch::Sender<bool>,
    pub tasks: JoinSet<()>,
}

impl TaskGroup {
    /// A group with no task yet, and the receiver its tasks watch for shutdown.
    pub fn new() -> (TaskGroup, watch::Receiver<bool>) {
        let (shutdown, receiver) = watch::channel(false);
        (
            TaskGroup {
                shutdown,
                tasks: JoinSet::new(),
            },
            receiver,
        )
    }

    /// Signals shutdown and waits for every task to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
