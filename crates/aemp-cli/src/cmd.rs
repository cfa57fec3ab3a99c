//! One module per group of subcommands.

pub(crate) mod args;
pub(crate) mod bench;
pub(crate) mod demo;
pub(crate) mod net;
pub(crate) mod profile;

/// The tokio runtime a command runs on: multi-threaded with I/O and timers; `workers` worker
/// threads (`None`: one per CPU, for the benchmarks).
pub(crate) fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    anyhow::Context::context(builder.enable_all().build(), "starting the tokio runtime")
}
