//! The crate's own rayon pool, so `set_num_threads` can resize it at any time (rayon's global
//! pool is fixed once built). Work is always split into fixed-size tasks that do not depend on
//! the thread count, so results are bitwise identical for any number of threads.

use crate::error::{Error, Result};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, OnceLock, RwLock};

fn slot() -> &'static RwLock<Arc<ThreadPool>> {
    static POOL: OnceLock<RwLock<Arc<ThreadPool>>> = OnceLock::new();
    POOL.get_or_init(|| RwLock::new(Arc::new(build(default_threads()))))
}

/// `SOFTCORE_NUM_THREADS` if set to a positive integer, else the available parallelism.
fn default_threads() -> usize {
    std::env::var("SOFTCORE_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("softcore-{i}"))
        .build()
        .unwrap_or_else(|e| panic!("cannot start {n} softcore threads: {e}"))
}

fn pool() -> Arc<ThreadPool> {
    let guard = slot().read().unwrap_or_else(|p| p.into_inner());
    Arc::clone(&guard)
}

pub fn num_threads() -> usize {
    pool().current_num_threads()
}

pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Invalid(
            "set_num_threads: n (the number of threads) must be >= 1, got 0".into(),
        ));
    }
    if n > 4096 {
        return Err(Error::Invalid(format!(
            "set_num_threads: n (the number of threads) must be <= 4096, got {n}"
        )));
    }
    let new = Arc::new(build(n));
    *slot().write().unwrap_or_else(|p| p.into_inner()) = new;
    Ok(())
}

/// Runs `f` inside the pool, so rayon calls in `f` use it (and never rayon's global pool).
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

/// `f(state, (i, chunk i))` over the fixed `chunk`-sized chunks of `data`, results in chunk order,
/// with `state` from `init` per worker split (scratch reused across chunks). With one thread it
/// runs in the calling thread: handing the work to the pool's single worker and waiting for it
/// costs two futex wake-ups per call (measurable on a short call; benches/README.md). The chunks and the
/// per-chunk work are the same either way, so results do not depend on the thread count.
pub fn map_chunks_mut<T, S, R>(
    data: &mut [T],
    chunk: usize,
    init: impl Fn() -> S + Send + Sync,
    f: impl Fn(&mut S, (usize, &mut [T])) -> R + Send + Sync,
) -> Vec<R>
where
    T: Send,
    R: Send,
{
    let chunk = chunk.max(1);
    if num_threads() == 1 {
        let mut state = init();
        return data
            .chunks_mut(chunk)
            .enumerate()
            .map(|x| f(&mut state, x))
            .collect();
    }
    install(|| {
        data.par_chunks_mut(chunk)
            .enumerate()
            .map_init(init, f)
            .collect()
    })
}

/// `f(state, task)` over a fixed list of tasks (each owning its disjoint outputs), results in
/// task order, with `state` from `init` per worker split. The tasks are the same for any
/// thread count, so results are too; with one thread it runs in the calling thread.
pub fn map_tasks<T, S, R>(
    tasks: Vec<T>,
    init: impl Fn() -> S + Send + Sync,
    f: impl Fn(&mut S, T) -> R + Send + Sync,
) -> Vec<R>
where
    T: Send,
    R: Send,
{
    if num_threads() == 1 || tasks.len() <= 1 {
        let mut state = init();
        return tasks.into_iter().map(|t| f(&mut state, t)).collect();
    }
    install(|| {
        tasks
            .into_par_iter()
            .with_max_len(1)
            .map_init(init, f)
            .collect()
    })
}
