//! A program that does not repeat itself under the same schedule is
//! explored to the end without panics; the mismatches are counted.

use frontrun_engine::{AccessKind, Config, Explorer};

#[test]
fn a_program_that_changes_between_executions_still_terminates() {
    let mut x = Explorer::new(3, Config::default()).unwrap();
    let mut run = 0u64;
    while x.begin_execution().unwrap() {
        run += 1;
        assert!(run < 10_000, "exploration must terminate");
        let mut steps = [0u32; 3];
        while let Some(t) = x.schedule().unwrap() {
            steps[t] += 1;
            // Which object a step touches depends on hidden state (the run
            // number), so replayed prefixes see different events, and some
            // threads take a different number of steps.
            let key = (run + t as u64 + u64::from(steps[t])) % 3;
            let kind = if (run + u64::from(steps[t])) % 2 == 0 {
                AccessKind::Write
            } else {
                AccessKind::Read
            };
            x.access(t, key, kind).unwrap();
            if steps[t] as u64 >= 2 + (run + t as u64) % 2 {
                x.finish(t).unwrap();
            }
        }
        x.end_execution().unwrap();
    }
    let stats = x.stats();
    assert!(stats.divergences > 0, "the mismatches are noticed");
    assert_eq!(
        stats.executions_completed + stats.executions_aborted,
        run,
        "every execution is accounted for"
    );
}
