//! Exploration throughput on the classic DPOR benchmarks.
//!
//! Run with `cargo bench -p frontrun-engine`. Times include the model VM,
//! which does little next to the engine.

use std::time::{Duration, Instant};

use frontrun_engine::model::{count, programs, Program};
use frontrun_engine::{Config, Stats};

fn measure(program: &Program) -> (Stats, Duration) {
    measure_with(program, Config::default())
}

fn measure_with(program: &Program, config: Config) -> (Stats, Duration) {
    // Repeat until at least half a second has passed; keep the best run.
    let mut best = Duration::MAX;
    let mut stats = Stats::default();
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || (start.elapsed() < Duration::from_millis(500) && runs < 1000) {
        let t = Instant::now();
        stats = count(program, config).expect("exploration runs");
        best = best.min(t.elapsed());
        runs += 1;
    }
    (stats, best)
}

/// Long executions through the raw API, as the binding drives it: two
/// threads, each step one access to one of 64 objects (mostly private).
/// The first execution grows the buffers; the figure is for the later ones.
fn hot_path() {
    use frontrun_engine::{AccessKind, Explorer};
    let steps_per_thread = 50_000u64;
    let mut x = Explorer::new(
        2,
        Config {
            max_executions: Some(4),
            ..Config::default()
        },
    )
    .expect("explorer");
    let mut start = Instant::now();
    let mut races = 0;
    let mut first_points = 0;
    let mut executions = 0;
    while x.begin_execution().expect("begin") {
        let mut done = [0u64; 2];
        while let Some(t) = x.schedule().expect("schedule") {
            let key = if done[t] % 16 == 0 {
                0
            } else {
                1 + (done[t] % 31) * 2 + t as u64
            };
            let kind = if done[t] % 3 == 0 {
                AccessKind::Write
            } else {
                AccessKind::Read
            };
            x.access(t, key, kind).expect("access");
            done[t] += 1;
            if done[t] == steps_per_thread {
                x.finish(t).expect("finish");
            }
        }
        races += x.end_execution().expect("end").races.len();
        executions += 1;
        if executions == 1 {
            first_points = x.stats().scheduling_points;
            start = Instant::now();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let points = x.stats().scheduling_points - first_points;
    println!(
        "hot path (raw API) {} executions, {points} scheduling points in {:>8.3} ms  \
         {:>6.0} ns/scheduling point  {races} races",
        executions - 1,
        secs * 1e3,
        secs * 1e9 / points as f64,
    );
}

fn main() {
    hot_path();
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
    // The default bound of the Python API, against full DPOR's count.
    let bound = Config {
        preemption_bound: Some(2),
        ..Config::default()
    };
    for (name, program) in [
        ("readers(10)", programs::readers(10)),
        ("lastzero(8)", programs::lastzero(8)),
        ("locked_counter(5)", programs::locked_counter(5)),
        ("racy_counter(3)", programs::racy_counter(3)),
        ("racy_counter(4)", programs::racy_counter(4)),
    ] {
        let (full, _) = measure(&program);
        let (stats, time) = measure_with(&program, bound);
        println!(
            "{name:<18} preemption_bound=2: {:>6} executions in {:>8.3} ms  (full DPOR: {})",
            stats.executions_completed + stats.executions_aborted,
            time.as_secs_f64() * 1e3,
            full.executions_completed,
        );
    }
}
