//! A reported schedule replays to the same execution.

use frontrun_engine::model::{explore, programs, run_once};
use frontrun_engine::{format_schedule, parse_schedule, Config, Explorer};

#[test]
fn replaying_a_reported_schedule_repeats_the_execution() {
    let program = programs::racy_counter(3);
    let e = explore(&program, Config::default()).unwrap();
    assert!(e.executions.len() > 2);
    for x in &e.executions {
        let mut replay = Explorer::replay(3, x.report.schedule.clone(), Config::default()).unwrap();
        let again = run_once(&program, &mut replay).unwrap().unwrap();
        assert_eq!(again.report.schedule, x.report.schedule);
        assert_eq!(again.outcome, x.outcome);
        assert_eq!(again.trace, x.trace);
        assert!(
            run_once(&program, &mut replay).unwrap().is_none(),
            "one execution only"
        );
    }
}

#[test]
fn a_short_replay_prefix_continues_with_default_choices() {
    let program = programs::racy_counter(2);
    // Thread 1 first, then as few preemptions as possible: 1, 1, 0, 0.
    let mut replay = Explorer::replay(2, vec![1], Config::default()).unwrap();
    let x = run_once(&program, &mut replay).unwrap().unwrap();
    assert_eq!(x.report.schedule, vec![1, 1, 0, 0]);
    assert_eq!(x.report.preemptions, 0);
}

#[test]
fn a_schedule_the_program_cannot_follow_is_an_error() {
    // Thread 0 has only two steps; a third step of thread 0 cannot run.
    let program = programs::racy_counter(2);
    let mut replay = Explorer::replay(2, vec![0, 0, 0], Config::default()).unwrap();
    let err = run_once(&program, &mut replay).unwrap_err();
    assert!(err.to_string().contains("step 2"), "{err}");
}

#[test]
fn races_name_both_accesses() {
    let e = explore(&programs::racy_counter(2), Config::default()).unwrap();
    let first = &e.executions[0].report;
    assert!(!first.races.is_empty());
    for r in &first.races {
        assert_ne!(r.first.thread, r.second.thread);
        assert!(r.first.step < r.second.step);
        assert_eq!(r.first.key, r.second.key);
        assert_eq!(first.schedule[r.first.step], r.first.thread);
        assert_eq!(first.schedule[r.second.step], r.second.thread);
    }
}

#[test]
fn schedule_strings_round_trip_and_bad_ones_say_what_is_expected() {
    assert_eq!(format_schedule(&[0, 0, 1, 2]), "v1:0,0,1,2");
    assert_eq!(parse_schedule("v1:0,0,1,2").unwrap(), vec![0, 0, 1, 2]);
    assert_eq!(parse_schedule("v1:").unwrap(), Vec::<usize>::new());
    let err = parse_schedule("0,1").unwrap_err();
    assert!(err.to_string().contains("v1:0,0,1"), "{err}");
    assert!(parse_schedule("v1:0,x").is_err());
}
