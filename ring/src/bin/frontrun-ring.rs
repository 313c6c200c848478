//! `frontrun-ring`: the engine's side of the ring, as a command.
//!
//! ```text
//! frontrun-ring run [--preload LIB] [--slots N] [--mutex] [--no-drain] [--tsv FILE] -- CMD [ARGS...]
//!     Create a ring, attach to it as the consumer, run CMD with FRONTRUN_RING
//!     pointing at it and LD_PRELOAD=LIB (or the inherited LD_PRELOAD), drain it while
//!     CMD runs, and print "events N lost M" on stderr. With --tsv, write one
//!     line per event (seq, pid, tid, kind, call, fd, result, name, and the
//!     mutex's origin, or for a DbAccess event its access, flags, fallback
//!     and label). With --no-drain, events are only taken after CMD exits
//!     (to exercise a full ring). Exits with CMD's status.
//! frontrun-ring throughput [--events N] [--slots N]
//!     Push N events from one producer thread to a consumer thread and print
//!     the rate.
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use frontrun_ring::{env, Consumer, ConsumerOptions, EventRecord, PushOutcome, DEFAULT_CAPACITY};
use frontrun_wire::AccessKind;

fn usage() -> ExitCode {
    eprintln!(
        "usage: frontrun-ring run [--preload LIB] [--slots N] [--mutex] [--no-drain] [--tsv FILE] -- CMD [ARGS...]\n       frontrun-ring throughput [--events N] [--slots N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("throughput") => throughput(&args[1..]),
        _ => usage(),
    }
}

struct Options {
    slots: u64,
    mutex: bool,
    drain: bool,
    tsv: Option<PathBuf>,
    preload: Option<PathBuf>,
    events: u64,
    command: Vec<String>,
}

fn parse(args: &[String]) -> Option<Options> {
    let mut o = Options {
        slots: DEFAULT_CAPACITY,
        mutex: false,
        drain: true,
        tsv: None,
        preload: None,
        events: 10_000_000,
        command: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--slots" => o.slots = it.next()?.parse().ok()?,
            "--events" => o.events = it.next()?.parse().ok()?,
            "--mutex" => o.mutex = true,
            "--no-drain" => o.drain = false,
            "--preload" => o.preload = Some(PathBuf::from(it.next()?)),
            "--tsv" => o.tsv = Some(PathBuf::from(it.next()?)),
            "--" => {
                o.command = it.cloned().collect();
                break;
            }
            _ => return None,
        }
    }
    Some(o)
}

fn remove_ring(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// The last column of a protocol event: `read`/`write`/`none`, the flags
/// that apply, the fallback reason and the request's label.
fn db_detail(r: &EventRecord) -> Option<String> {
    let db = r.db()?;
    let mut s = match db.kind {
        Some(AccessKind::Read) => "read".to_string(),
        Some(AccessKind::Write) => "write".to_string(),
        None => "none".to_string(),
    };
    for (on, word) in [
        (db.is_coarse(), " coarse"),
        (db.is_reply(), " reply"),
        (db.is_no_conflict(), " no-conflict"),
    ] {
        if on {
            s.push_str(word);
        }
    }
    if let Some(f) = db.fallback {
        s.push_str(&format!(" fallback={f:?}"));
    }
    s.push_str(&format!(" label={:?}", db.label));
    Some(s)
}

fn tsv_line(out: &mut impl std::io::Write, r: &EventRecord) -> std::io::Result<()> {
    writeln!(
        out,
        "{}\t{}\t{}\t{:?}\t{}\t{}\t{}\t{}\t{}",
        r.seq,
        r.pid,
        r.tid,
        r.kind().map_or("?".into(), |k| format!("{k:?}")),
        r.call().map_or("?", |c| c.name()),
        r.fd,
        r.result,
        r.name(),
        db_detail(r).unwrap_or_else(|| r.origin())
    )
}

fn run(args: &[String]) -> ExitCode {
    let Some(o) = parse(args) else {
        return usage();
    };
    if o.command.is_empty() {
        return usage();
    }
    let path = match frontrun_ring::create_private_ring(o.slots) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("frontrun-ring: {e}");
            return ExitCode::from(1);
        }
    };
    let mut consumer = match Consumer::open(
        &path,
        ConsumerOptions {
            mutex_events: o.mutex,
        },
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("frontrun-ring: {e}");
            remove_ring(&path);
            return ExitCode::from(1);
        }
    };
    let mut command = Command::new(&o.command[0]);
    command.args(&o.command[1..]).env(env::ENV_RING, &path);
    if let Some(lib) = &o.preload {
        command.env("LD_PRELOAD", lib);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("frontrun-ring: cannot run {}: {e}", o.command[0]);
            remove_ring(&path);
            return ExitCode::from(1);
        }
    };
    let mut tsv = o.tsv.as_ref().map(|p| {
        std::io::BufWriter::new(std::fs::File::create(p).expect("cannot create the --tsv file"))
    });
    let mut events = 0u64;
    let mut take = |consumer: &mut Consumer| {
        consumer.drain(|r| {
            events += 1;
            if let Some(out) = tsv.as_mut() {
                let _ = tsv_line(out, r);
            }
        })
    };
    let status = loop {
        if o.drain && take(&mut consumer) > 0 {
            continue;
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_micros(200)),
            Err(e) => {
                eprintln!("frontrun-ring: waiting for the command failed: {e}");
                return ExitCode::from(1);
            }
        }
    };
    take(&mut consumer);
    let lost = consumer.lost();
    if let Some(mut out) = tsv {
        let _ = out.flush();
    }
    eprintln!("events {events} lost {lost}");
    drop(consumer);
    remove_ring(&path);
    match status.code() {
        Some(code) => ExitCode::from(code as u8),
        None => ExitCode::from(128),
    }
}

fn throughput(args: &[String]) -> ExitCode {
    let Some(o) = parse(args) else {
        return usage();
    };
    let path = frontrun_ring::create_private_ring(o.slots).expect("create ring");
    let mut consumer = Consumer::open(&path, ConsumerOptions::default()).expect("attach");
    let (map, producer) = frontrun_ring::map_ring_file(&path).expect("map");
    let done = Arc::new(AtomicBool::new(false));
    let total = o.events;
    let started = Instant::now();
    let done_p = Arc::clone(&done);
    let handle = std::thread::spawn(move || {
        let mut record = EventRecord::EMPTY;
        record.set_name(b"socket:127.0.0.1:5432");
        record.key = frontrun_ring::resource_key(b"socket:127.0.0.1:5432");
        let mut lost = 0u64;
        for i in 0..total {
            record.addr = i;
            if producer.push(&record, Duration::from_secs(1)) == PushOutcome::Lost {
                lost += 1;
            }
        }
        done_p.store(true, Ordering::Release);
        drop(map);
        lost
    });
    let mut seen = 0u64;
    let mut expected_seq = 0u64;
    let mut ordered = true;
    loop {
        let finished = done.load(Ordering::Acquire);
        seen += consumer.drain(|r| {
            ordered &= r.seq == expected_seq;
            expected_seq += 1;
        }) as u64;
        if finished && seen + consumer.lost() >= total {
            break;
        }
        std::hint::spin_loop();
    }
    let elapsed = started.elapsed();
    let lost = handle.join().expect("producer thread");
    remove_ring(&path);
    println!(
        "ring throughput, one producer: {:.1} M events/s ({} events in {:.3} s, {} lost, sequence {})",
        total as f64 / elapsed.as_secs_f64() / 1e6,
        total,
        elapsed.as_secs_f64(),
        lost,
        if ordered { "gapless" } else { "BROKEN" }
    );
    if ordered && lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
