//! Unit tests of the queue, the consumer and the database record keys.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use frontrun_wire::keys::{engine_accesses, Resource, Scheme};
use frontrun_wire::AccessKind;

fn temp_ring(capacity: u64) -> (PathBuf, Consumer) {
    let path = create_private_ring(capacity).expect("create ring");
    let consumer = Consumer::open(&path, ConsumerOptions::default()).expect("attach");
    (path, consumer)
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_dir(path.parent().unwrap());
}

fn record(tag: u64) -> EventRecord {
    let mut r = EventRecord::EMPTY;
    r.kind = EventKind::Write as u8;
    r.addr = tag;
    r.pid = std::process::id();
    r
}

#[test]
fn events_come_out_in_push_order_with_consecutive_sequence_numbers() {
    let (path, mut consumer) = temp_ring(64);
    let (_map, producer) = map_ring_file(&path).unwrap();
    for round in 0..5u64 {
        for i in 0..50 {
            assert!(producer.try_push(&record(round * 100 + i)).is_some());
        }
        let mut got = Vec::new();
        consumer.drain(|r| got.push((r.seq, r.addr)));
        let want: Vec<_> = (0..50).map(|i| (round * 50 + i, round * 100 + i)).collect();
        assert_eq!(got, want);
    }
    remove(&path);
}

#[test]
fn full_ring_counts_lost_events_and_stops_waiting() {
    let (path, mut consumer) = temp_ring(64);
    let (_map, producer) = map_ring_file(&path).unwrap();
    let wait = Duration::from_millis(5);
    for i in 0..64 {
        assert_eq!(producer.push(&record(i), wait), PushOutcome::Pushed(i));
    }
    let started = Instant::now();
    for i in 0..1000 {
        assert_eq!(producer.push(&record(i), wait), PushOutcome::Lost);
    }
    // One wait for the first lost event, none for the rest.
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(consumer.lost(), 1000);
    assert_eq!(consumer.drain(|_| {}), 64);
    // Room again: producers store and wait again.
    assert_eq!(producer.push(&record(7), wait), PushOutcome::Pushed(64));
    remove(&path);
}

#[test]
fn bad_files_are_rejected_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("frontrun-ring-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short");
    std::fs::write(&short, [0u8; 16]).unwrap();
    assert!(matches!(
        map_ring_file(&short),
        Err(RingError::TooSmall { len: 16 })
    ));
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, vec![0xabu8; ring_len(64)]).unwrap();
    assert!(matches!(
        map_ring_file(&wrong),
        Err(RingError::BadMagic { .. })
    ));
    let ring = dir.join("ring");
    create_ring_file(&ring, 64).unwrap();
    let file = OpenOptions::new().write(true).open(&ring).unwrap();
    file.set_len(ring_len(64) as u64 + 8).unwrap();
    assert!(matches!(
        map_ring_file(&ring),
        Err(RingError::BadLayout { .. })
    ));
    assert!(matches!(
        map_ring_file(&dir.join("missing")),
        Err(RingError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn second_consumer_is_refused_until_the_first_detaches() {
    let (path, first) = temp_ring(64);
    assert!(first.view().consumer_attached());
    assert!(matches!(
        Consumer::open(&path, ConsumerOptions::default()),
        Err(RingError::AlreadyConsumed { .. })
    ));
    drop(first);
    let (_map, view) = map_ring_file(&path).unwrap();
    assert!(!view.consumer_attached());
    let second = Consumer::open(&path, ConsumerOptions { mutex_events: true }).unwrap();
    assert_eq!(view.flags(), FLAG_CONSUMER_ATTACHED | FLAG_MUTEX_EVENTS);
    drop(second);
    remove(&path);
}

/// `threads` producer threads, each with its own mapping of the ring at
/// `path`, pushing `per_thread` events tagged `thread << 32 | i` (waiting
/// for room as long as it takes); each asserts that every push was stored.
fn spawn_producers(path: &Path, threads: u64, per_thread: u64) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let path = path.to_path_buf();
            std::thread::spawn(move || {
                let (_map, view) = map_ring_file(&path).unwrap();
                for i in 0..per_thread {
                    let outcome = view.push(&record(t << 32 | i), Duration::from_secs(10));
                    assert!(matches!(outcome, PushOutcome::Pushed(_)));
                }
            })
        })
        .collect()
}

#[test]
fn concurrent_producers_get_unique_gapless_sequence_numbers() {
    let (path, mut consumer) = temp_ring(1024);
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 50_000;
    let producers = spawn_producers(&path, THREADS, PER_THREAD);
    let mut next_per_thread = vec![0u64; THREADS as usize];
    let mut expected_seq = 0u64;
    while expected_seq < THREADS * PER_THREAD {
        consumer.drain(|r| {
            assert_eq!(r.seq, expected_seq);
            expected_seq += 1;
            let t = (r.addr >> 32) as usize;
            assert_eq!(r.addr & 0xffff_ffff, next_per_thread[t]);
            next_per_thread[t] += 1;
        });
        std::hint::spin_loop();
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(consumer.lost(), 0);
    remove(&path);
}

/// What a producer killed after taking its slot leaves behind: the slot
/// named and the ticket counter moved on, but the slot never published.
/// Without `pid`, a slot that names no producer, which only a producer of
/// another layout could leave.
fn claim_and_die(view: &RingView, pid: Option<u32>) -> u64 {
    let header = view.header();
    let pos = header.enqueue_pos.load(Ordering::Relaxed);
    if let Some(pid) = pid {
        let slot = view.slot(pos);
        unsafe {
            let record = std::ptr::addr_of_mut!((*slot).record);
            claim_word(record).store(claim_value(pos, pid), Ordering::Release);
        }
    }
    header.enqueue_pos.store(pos + 1, Ordering::Release);
    pos
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_slot_claimed_by_a_dead_process_is_taken_back_and_counted_as_lost() {
    let (path, mut consumer) = temp_ring(64);
    let (_map, producer) = map_ring_file(&path).unwrap();
    for i in 0..2 {
        assert!(producer.try_push(&record(i)).is_some());
    }
    let dead = claim_and_die(&producer, Some(dead_pid()));
    for i in 10..13 {
        assert!(producer.try_push(&record(i)).is_some());
    }
    let mut got = Vec::new();
    consumer.drain(|r| got.push((r.seq, r.addr)));
    assert_eq!(
        got,
        vec![(0, 0), (1, 1)],
        "the published events before the claim"
    );
    std::thread::sleep(CLAIM_CHECK_AFTER + Duration::from_millis(2));
    consumer.drain(|r| got.push((r.seq, r.addr)));
    assert_eq!(got[2..], [(dead + 1, 10), (dead + 2, 11), (dead + 3, 12)]);
    assert_eq!((consumer.lost(), consumer.taken_back()), (1, 1));
    // The slot serves the next lap as usual.
    for i in 0..200 {
        assert!(producer.try_push(&record(i)).is_some());
        assert_eq!(consumer.pop().map(|r| r.addr), Some(i));
    }
    assert_eq!(consumer.lost(), 1);
    remove(&path);
}

#[test]
fn a_slot_claimed_by_a_live_producer_is_waited_for_up_to_the_bound() {
    let (path, mut consumer) = temp_ring(64);
    let (_map, producer) = map_ring_file(&path).unwrap();
    claim_and_die(&producer, Some(std::process::id()));
    claim_and_die(&producer, None);
    assert!(producer.try_push(&record(7)).is_some());
    let started = Instant::now();
    let mut got = Vec::new();
    while got.is_empty() {
        consumer.drain(|r| got.push(r.addr));
        assert!(
            started.elapsed() < CLAIM_GIVE_UP_AFTER * 3,
            "never taken back"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Both slots (the live claimer's and the one naming no pid) were
    // waited for, for the bound each at most once in a row.
    assert!(started.elapsed() >= CLAIM_GIVE_UP_AFTER);
    assert_eq!(got, vec![7]);
    assert_eq!((consumer.lost(), consumer.taken_back()), (2, 2));
    remove(&path);
}

#[test]
fn a_producer_whose_slot_was_taken_back_drops_its_event_without_counting_it_again() {
    let (path, consumer) = temp_ring(64);
    let (_map, producer) = map_ring_file(&path).unwrap();
    // The consumer takes slot 0 back before its producer publishes.
    let pos = claim_and_die(&producer, Some(std::process::id()));
    assert!(consumer.view().take_back(pos));
    let index = pos & producer.mask;
    let slot = producer.slot(pos);
    let published = unsafe {
        (*slot).turn.compare_exchange(
            pos.wrapping_sub(index),
            (pos + 1).wrapping_sub(index),
            Ordering::Release,
            Ordering::Relaxed,
        )
    };
    assert!(published.is_err(), "the late publish must fail");
    assert_eq!(consumer.lost(), 1);
    remove(&path);
}

fn written(r: &EventRecord, thread: usize) -> Vec<u64> {
    let mut keys = Vec::new();
    r.db().unwrap().engine_accesses_by(thread, |a| {
        if a.kind == AccessKind::Write {
            keys.push(a.key)
        }
    });
    keys
}

#[test]
fn row_writes_of_two_threads_never_meet_in_a_bucket_whatever_their_digests() {
    use frontrun_wire::keys::bucket_of;
    use frontrun_wire::sql::COMMITS_TABLE;
    // Two digests in the same bucket: as two rows (or two commits)
    // whose names happen to hash alike.
    let first = 0x1234_5678_9abc_def0;
    let second = (first + 1..)
        .find(|&d| bucket_of(d) == bucket_of(first))
        .unwrap();
    for table in [b"accounts".as_slice(), COMMITS_TABLE] {
        let a = db_record(table, Some(first), AccessKind::Write, false);
        let b = db_record(table, Some(second), AccessKind::Write, false);
        let mut plain = (Vec::new(), Vec::new());
        a.db().unwrap().engine_accesses(|x| {
            if x.kind == AccessKind::Write {
                plain.0.push(x.key)
            }
        });
        b.db().unwrap().engine_accesses(|x| {
            if x.kind == AccessKind::Write {
                plain.1.push(x.key)
            }
        });
        assert!(
            plain.0.iter().any(|k| plain.1.contains(k)),
            "the digests' buckets collide"
        );
        let (wa, wb) = (written(&a, 0), written(&b, 1));
        assert!(wa.iter().all(|k| !wb.contains(k)), "{wa:x?} {wb:x?}");
        // The same row still conflicts across threads.
        let again = written(&a, 1);
        assert!(wa.iter().any(|k| again.contains(k)));
        // A whole-table read meets both writes; a read of another row
        // meets neither.
        let whole = db_record(table, None, AccessKind::Read, false);
        let other = db_record(table, Some(first ^ 1), AccessKind::Read, false);
        let (mut read_all, mut read_other) = (Vec::new(), Vec::new());
        whole
            .db()
            .unwrap()
            .engine_accesses_by(2, |x| read_all.push(x.key));
        other
            .db()
            .unwrap()
            .engine_accesses_by(2, |x| read_other.push(x.key));
        assert!(wa.iter().any(|k| read_all.contains(k)) && wb.iter().any(|k| read_all.contains(k)));
        assert!(wa.iter().chain(&wb).all(|k| !read_other.contains(k)));
        // Cut names give the same keys.
        let cut = db_record(table, Some(first), AccessKind::Write, true);
        assert_eq!(written(&cut, 0), wa);
    }
}

#[test]
fn resource_key_is_fnv1a() {
    assert_eq!(resource_key(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(resource_key(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_ne!(
        resource_key(b"socket:127.0.0.1:5432"),
        resource_key(b"socket:127.0.0.1:5433")
    );
}

fn db_record(table: &[u8], row: Option<u64>, kind: AccessKind, cut: bool) -> EventRecord {
    use frontrun_wire::keys::{coarse_key, table_key};
    let server = "localhost:5432";
    let mut r = EventRecord::EMPTY;
    r.kind = EventKind::DbAccess as u8;
    let mut name = b"sql:localhost:5432/".to_vec();
    name.extend_from_slice(table);
    r.set_name(&name);
    r.key = table_key(Scheme::Sql, server, table);
    r.coarse_key = coarse_key(server);
    r.scheme = DbScheme::Sql as u8;
    r.server_len = server.len() as u8;
    r.table_len = table.len() as u8;
    r.access = access_code(kind);
    r.db_flags = if cut { DB_NAME_CUT } else { 0 };
    if let Some(d) = row {
        r.row = d;
        r.db_flags |= DB_HAS_ROW;
    }
    r
}

#[test]
fn db_event_keys_are_the_wire_keys_with_or_without_the_name() {
    for row in [None, Some(0x1234_5678_9abc_def0)] {
        for kind in [AccessKind::Read, AccessKind::Write] {
            let mut expected = Vec::new();
            let res = Resource {
                scheme: Scheme::Sql,
                server: "localhost:5432",
                table: b"accounts",
                row,
            };
            engine_accesses(res, kind, |a| expected.push(a));
            for cut in [false, true] {
                let r = db_record(b"accounts", row, kind, cut);
                let db = r.db().unwrap();
                if !cut {
                    assert_eq!(db.server, "localhost:5432");
                    assert_eq!(db.table, b"accounts");
                }
                let mut got = Vec::new();
                let n = db.engine_accesses(|a| got.push(a));
                assert_eq!(n, got.len());
                assert_eq!(got, expected, "row {row:?} {kind:?} cut {cut}");
            }
        }
    }
}

#[test]
fn a_slot_below_the_ticket_counter_always_names_its_producer() {
    // A producer killed anywhere in a push must leave a slot the consumer
    // can attribute; a preempted producer is the same moment, seen alive.
    let (path, mut consumer) = temp_ring(64);
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 100_000;
    let producers = spawn_producers(&path, THREADS, PER_THREAD);
    let (mut got, mut looked) = (0u64, 0u64);
    while got < THREADS * PER_THREAD {
        if let Some((pos, claimer)) = consumer.view().unpublished_claim() {
            looked += 1;
            if let Some(pid) = claimer {
                assert_eq!(pid, std::process::id());
            } else {
                // It may have been published since: only a slot still
                // unpublished and unnamed is wrong.
                let again = consumer.view().unpublished_claim();
                assert!(
                    again != Some((pos, None)),
                    "slot {pos} is claimed but names no producer"
                );
            }
        }
        got += consumer.drain(|_| {}) as u64;
    }
    for p in producers {
        p.join().unwrap();
    }
    assert!(
        looked > 0,
        "never saw a claimed slot before it was published"
    );
    assert_eq!((consumer.lost(), consumer.taken_back()), (0, 0));
    remove(&path);
}
