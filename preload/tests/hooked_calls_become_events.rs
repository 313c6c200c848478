//! Every hooked call on a resource becomes the right event, with the right
//! resource name, pid and thread id.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{c_program, io_events, run, scratch, Attach};
use frontrun_ring::{resource_key, Call, EventKind, EventRecord, NAME_CAPACITY};

#[derive(Debug, PartialEq, Eq)]
struct Expected {
    kind: EventKind,
    call: String,
    fd: i32,
    result: i64,
    /// As stored: cut to NAME_CAPACITY bytes (the scratch paths of these
    /// tests are long enough to be cut).
    name: String,
    /// Key of the whole name.
    key: u64,
}

fn stored(name: &str) -> String {
    name[..name.len().min(NAME_CAPACITY)].to_string()
}

fn observed(e: &EventRecord) -> Expected {
    Expected {
        kind: e.kind().expect("known kind"),
        call: e.call().expect("known call").name().to_string(),
        fd: e.fd,
        result: e.result,
        name: e.name(),
        key: e.key,
    }
}

/// Turn the program's manifest (see io_calls.c) into the events the
/// library must record, in order.
fn expected_from_manifest(stdout: &str) -> (u32, u32, Vec<Expected>) {
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::new();
    let (mut pid, mut tid) = (0, 0);
    for line in stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "PID" => {
                pid = f[1].parse().unwrap();
                tid = f[2].parse().unwrap();
            }
            "NAME" => {
                names.insert(f[1].parse::<i32>().unwrap(), f[2].to_string());
            }
            "CALL" => {
                let call = f[1].to_string();
                let fd: i32 = f[2].parse().unwrap();
                let result: i64 = f[3].parse().unwrap();
                let block = f[4] == "block";
                let name = f
                    .get(5)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| names[&fd].clone());
                let e = |kind, result| Expected {
                    kind,
                    call: call.clone(),
                    fd,
                    result,
                    name: stored(&name),
                    key: resource_key(name.as_bytes()),
                };
                let data_kind = match call.as_str() {
                    "connect" => Some(EventKind::Connect),
                    "close" => Some(EventKind::Close),
                    "send" | "sendto" | "sendmsg" | "write" | "writev" => Some(EventKind::Write),
                    "recv" | "recvfrom" | "recvmsg" | "read" | "readv" => Some(EventKind::Read),
                    _ => None,
                };
                if block {
                    out.push(e(EventKind::BlockEnter, 0));
                    out.push(e(EventKind::BlockLeave, result));
                }
                if let Some(kind) = data_kind {
                    out.push(e(kind, result));
                }
            }
            _ => {}
        }
    }
    (pid, tid, out)
}

#[test]
fn each_hooked_call_records_its_resource_pid_and_thread() {
    let prog = c_program("io_calls", false, &[]);
    // Long enough that file names in it exceed the inline name capacity,
    // so the cut name and the key of the whole name are both checked.
    let dir = scratch(&format!("io_calls/{}", "long-directory-name-".repeat(5)));
    assert!(dir.as_os_str().len() > NAME_CAPACITY);
    let mut cmd = Command::new(prog);
    cmd.arg(&dir);
    let outcome = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        4096,
        Duration::from_secs(60),
    );
    assert_eq!(outcome.status.code(), Some(7), "stderr: {}", outcome.stderr);
    assert_eq!(outcome.lost, 0);
    let (pid, tid, expected) = expected_from_manifest(&outcome.stdout);
    assert!(
        expected.len() > 40,
        "manifest too short:\n{}",
        outcome.stdout
    );
    let events = io_events(&outcome.events);
    for e in &events {
        assert_eq!((e.pid, e.tid), (pid, tid), "{e:?}");
    }
    let got: Vec<Expected> = events.iter().map(|e| observed(e)).collect();
    if got != expected {
        let render = |v: &[Expected]| {
            v.iter()
                .map(|e| {
                    format!(
                        "{:?} {} fd={} r={} {} {:x}",
                        e.kind, e.call, e.fd, e.result, e.name, e.key
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "events differ from the manifest\n--- expected\n{}\n--- recorded\n{}",
            render(&expected),
            render(&got)
        );
    }
    // Sequence numbers are consecutive and start at 0 on a fresh ring.
    for (i, e) in outcome.events.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
    }
    // Every kind of call the library hooks for I/O showed up.
    for call in [
        Call::Connect,
        Call::Send,
        Call::Sendto,
        Call::Sendmsg,
        Call::Recv,
        Call::Recvfrom,
        Call::Recvmsg,
        Call::Read,
        Call::Readv,
        Call::Write,
        Call::Writev,
        Call::Close,
        Call::Poll,
        Call::Ppoll,
        Call::Select,
    ] {
        assert!(
            events.iter().any(|e| e.call() == Some(call)),
            "no {} event",
            call.name()
        );
    }
}

#[test]
fn writes_from_a_library_constructor_and_at_thread_exit_are_recorded() {
    c_program("ctor_writer", true, &[]);
    let prog = c_program("thread_exit", false, &["ctor_writer"]);
    let dir = std::fs::canonicalize(scratch("thread_exit")).unwrap();
    let (ctor, main, exit) = (
        dir.join("ctor.txt"),
        dir.join("main.txt"),
        dir.join("exit.txt"),
    );
    let mut cmd = Command::new(prog);
    cmd.arg(&main).arg(&exit).env("CTOR_FILE", &ctor);
    let outcome = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        4096,
        Duration::from_secs(60),
    );
    assert!(outcome.status.success(), "stderr: {}", outcome.stderr);
    let mut checked = 0;
    for line in outcome.stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let file = match f[0] {
            "CTOR" => &ctor,
            "MAIN" => &main,
            "EXIT" => &exit,
            _ => continue,
        };
        let (pid, tid, fd, result): (u32, u32, i32, i64) = (
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
        );
        let name = format!("file:{}", file.display());
        let key = resource_key(name.as_bytes());
        let writes: Vec<_> = outcome
            .events
            .iter()
            .filter(|e| e.key == key && e.kind() == Some(EventKind::Write))
            .collect();
        assert_eq!(writes.len(), 1, "{line}: {:?}", outcome.events);
        let w = writes[0];
        assert_eq!(
            (w.pid, w.tid, w.fd, w.result, w.call()),
            (pid, tid, fd, result, Some(Call::Write)),
            "{line}"
        );
        assert!(
            name.starts_with(&w.name()),
            "{} is not a prefix of {name}",
            w.name()
        );
        assert!(
            outcome
                .events
                .iter()
                .any(|e| e.key == key && e.kind() == Some(EventKind::Close) && e.tid == tid),
            "no close of {name}"
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "stdout: {}", outcome.stdout);
}

#[test]
fn a_vfork_child_does_not_rename_its_parents_descriptors() {
    let prog = c_program("vfork_child", false, &[]);
    let dir = std::fs::canonicalize(scratch("vfork")).unwrap();
    let (parent_file, child_file) = (dir.join("parent.txt"), dir.join("child.txt"));
    let mut cmd = Command::new(prog);
    cmd.arg(&parent_file).arg(&child_file);
    let outcome = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        4096,
        Duration::from_secs(60),
    );
    assert!(outcome.status.success(), "stderr: {}", outcome.stderr);
    assert_eq!(std::fs::read(&child_file).unwrap(), b"child");
    let line = outcome
        .stdout
        .lines()
        .find(|l| l.starts_with("PARENT "))
        .expect("the parent reported");
    let f: Vec<i64> = line
        .split(' ')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let parent_write = outcome
        .events
        .iter()
        .find(|e| e.kind() == Some(EventKind::Write) && e.result == 6 && e.fd == f[2] as i32)
        .expect("the parent's write was recorded");
    assert_eq!(
        (parent_write.pid, parent_write.tid),
        (f[0] as u32, f[1] as u32)
    );
    let want = format!("file:{}", parent_file.display());
    assert_eq!(
        parent_write.key,
        resource_key(want.as_bytes()),
        "{parent_write:?}"
    );
}
