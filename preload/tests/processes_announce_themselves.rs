//! A process started by an attached one says so: an exec'd program
//! records a `Process` event with its parent's pid and its command, a
//! forked child one with its parent's pid and no name. A consumer follows
//! descendants of a process with them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{python, run, Attach, Outcome};
use frontrun_ring::{EventKind, EventRecord};

fn processes(events: &[EventRecord]) -> Vec<(u32, u32, String)> {
    events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Process))
        .map(|e| (e.pid, e.addr as u32, e.name()))
        .collect()
}

/// Runs `cmd` attached: its outcome and the processes announced.
fn announced(cmd: Command) -> (Outcome, Vec<(u32, u32, String)>) {
    let out = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        1 << 12,
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let seen = processes(&out.events);
    (out, seen)
}

#[test]
fn an_execd_program_and_its_execd_child_announce_their_parents() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "cat /dev/null; true"]);
    let (_, seen) = announced(cmd);
    let sh = seen
        .iter()
        .find(|(_, parent, name)| name == "sh" && *parent == std::process::id())
        .unwrap_or_else(|| panic!("no announcement of sh by this process: {seen:?}"));
    assert!(
        seen.iter()
            .any(|(pid, parent, name)| name == "cat" && *parent == sh.0 && *pid != sh.0),
        "no announcement of cat as sh's child: {seen:?}"
    );
}

#[test]
fn a_forked_child_announces_its_parent_with_no_name() {
    let mut cmd = Command::new(python());
    cmd.args([
        "-c",
        "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nprint(os.getpid(), pid)",
    ]);
    let (out, seen) = announced(cmd);
    let mut ids = out
        .stdout
        .split_whitespace()
        .map(|w| w.parse::<u32>().unwrap());
    let (parent, child) = (ids.next().unwrap(), ids.next().unwrap());
    assert!(
        seen.contains(&(child, parent, String::new())),
        "no announcement of the fork {child} of {parent}: {seen:?}"
    );
}
