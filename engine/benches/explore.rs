//! Exploration throughput on the classic DPOR benchmarks.
//!
//! Run with `cargo bench -p frontrun-engine`. Times include the model VM,
//! which does little next to the engine.

use std::time::{Duration, Instant};

use frontrun_engine::model::{count, programs, Program};
use frontrun_engine::{Config, Stats};

fn measure(program: &Program) -> (Stats, Duration) {
    // Repeat until at least half a second has passed; keep the best run.
    let mut best = Duration::MAX;
    let mut stats = Stats::default();
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || (start.elapsed() < Duration::from_millis(500) && runs < 1000) {
        let t = Instant::now();
        stats = count(program, Config::default()).expect("exploration runs");
        best = best.min(t.elapsed());
        runs += 1;
    }
    (stats, best)
}

fn main() {
    for (name, program, expected) in [
        ("readers(10)", programs::readers(10), 1024),
        ("lastzero(8)", programs::lastzero(8), 704),
        ("locked_counter(5)", programs::locked_counter(5), 120),
    ] {
        let (stats, time) = measure(&program);
        assert_eq!(stats.executions_completed, expected, "{name}");
        let secs = time.as_secs_f64();
        println!(
            "{name:<18} {:>6} executions in {:>8.3} ms  {:>10.0} executions/s  \
             {:>6} scheduling points  {:>6.0} ns/scheduling point  sleep-blocked {}",
            stats.executions_completed,
            secs * 1e3,
            stats.executions_completed as f64 / secs,
            stats.scheduling_points,
            secs * 1e9 / stats.scheduling_points as f64,
            stats.sleep_blocked,
        );
    }
}
