//! Producers SIGKILLed in the middle of writing an event: the slot they
//! claimed is never published. The consumer must skip it (counting it as
//! lost) instead of waiting at it for the rest of the process.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{c_program, preload_lib};
use frontrun_ring as ring;
use frontrun_ring::{env, Consumer, ConsumerOptions};

fn producer(threads: u32, pairs: u64, ring: &std::path::Path) -> std::process::Child {
    Command::new(c_program("mutex_stress", false, &[]))
        .args([threads.to_string(), pairs.to_string(), "0".to_string()])
        .env("LD_PRELOAD", preload_lib())
        .env(env::ENV_RING, ring)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting mutex_stress")
}

#[test]
fn the_ring_keeps_delivering_after_eight_thread_producers_are_killed_mid_write() {
    let path = ring::create_private_ring(1 << 12).expect("create ring");
    let mut consumer =
        Consumer::open(&path, ConsumerOptions { mutex_events: true }).expect("attach");
    let mut drained_while_killing = 0u64;
    for round in 0..12u64 {
        let mut child = producer(8, 1 << 40, &path);
        // Let all eight threads churn for a while (a different while each
        // round), then kill the process wherever its threads are.
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(20 + 7 * round) {
            drained_while_killing += consumer.drain(|_| {}) as u64;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping the killed producer");
    }
    assert!(
        drained_while_killing > 0,
        "the killed producers wrote nothing"
    );
    let lost_before = consumer.lost();

    // A producer that runs to completion: every one of its events arrives.
    let mut child = producer(1, 1000, &path);
    let pid = child.id();
    let mut got = 0u64;
    // Every slot a killed thread claimed names its process, so each is
    // given up as soon as the consumer reaches it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut exited = false;
    while Instant::now() < deadline && got < 2000 {
        // (Not its announcements of itself and its threads.)
        consumer.drain(|r| {
            got += u64::from(r.pid == pid && !r.kind().is_some_and(ring::EventKind::is_lineage))
        });
        if !exited {
            exited = child.try_wait().unwrap().is_some();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.wait().unwrap();
    assert_eq!(
        got,
        2000,
        "events of a healthy producer after the kills (lost: {} before, {} after; {} slots taken back)",
        lost_before,
        consumer.lost(),
        consumer.taken_back()
    );
    drop(consumer);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(path.parent().unwrap());
}
