//! The Python-level I/O detection (`frontrun._io`) names a resource exactly
//! as the library does, so that a call both layers see is one engine key:
//! a Python script does file and socket I/O under the library, prints the
//! names and keys `frontrun._io` gives the same files and sockets, and each
//! must be among the library's events.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{python, run, scratch, Attach};

const SCRIPT: &str = r#"
import os, shutil, socket, sys, tempfile, threading
from frontrun import _engine, _io

directory = sys.argv[1]

def emit(name):
    assert name is not None
    print(name.decode(), _engine.resource_key(name), sep="\t")

def echo_server(family, address):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.bind(address)
    srv.listen()
    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(conn.recv(100))
    thread = threading.Thread(target=serve)
    thread.start()
    return srv, thread

def talk(family, address):
    srv, thread = echo_server(family, address)
    with socket.socket(family, socket.SOCK_STREAM) as c:
        c.connect(srv.getsockname() if family != socket.AF_UNIX else address)
        c.sendall(b"ping")
        assert c.recv(100) == b"ping"
        emit(_io.socket_name(c))
    thread.join()
    srv.close()

path = os.path.join(directory, "data.txt")
with open(path, "w") as f:
    f.write("x")
emit(_io.file_name(path))
link = os.path.join(directory, "link")
os.symlink("data.txt", link)
with open(link) as f:
    f.read()
emit(_io.file_name(link))
fd = os.open(path, os.O_RDONLY)
os.read(fd, 10)
emit(_io.fd_name(fd))
os.close(fd)

talk(socket.AF_INET, ("127.0.0.1", 0))
talk(socket.AF_INET6, ("::1", 0))
# A socket path must fit in sun_path (108 bytes); the checkout can be deeper.
short = tempfile.mkdtemp(prefix="fr-names-")
try:
    talk(socket.AF_UNIX, os.path.join(short, "echo.sock"))
finally:
    shutil.rmtree(short)
talk(socket.AF_UNIX, "\0frontrun-names-test-%d" % os.getpid())
"#;

#[test]
fn python_names_and_keys_are_the_ones_the_library_records() {
    let dir = scratch("python_names");
    let mut cmd = Command::new(python());
    cmd.args(["-c", SCRIPT]).arg(&dir);
    let out = run(
        cmd,
        Attach::Consumed {
            mutex_events: false,
        },
        1 << 16,
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let names: Vec<(String, u64)> = out
        .stdout
        .lines()
        .map(|l| {
            let (name, key) = l.split_once('\t').expect("name<TAB>key");
            (name.to_string(), key.parse().expect("a key"))
        })
        .collect();
    assert_eq!(names.len(), 7, "{}", out.stdout);
    let prefixes = [
        "file:",
        "file:",
        "file:",
        "socket:127.0.0.1:",
        "socket:[::1]:",
    ];
    for ((name, _), prefix) in names.iter().zip(prefixes) {
        assert!(
            name.starts_with(prefix),
            "{name} should start with {prefix}"
        );
    }
    assert!(names[5].0.starts_with("socket:unix:/"));
    assert!(names[6].0.starts_with("socket:unix:@frontrun-names-test-"));
    for (name, key) in &names {
        let seen = out
            .events
            .iter()
            .filter(|e| e.key == *key)
            .collect::<Vec<_>>();
        assert!(
            !seen.is_empty(),
            "no event of the library has the key of {name}; its names: {:?}",
            out.events.iter().map(|e| e.name()).collect::<Vec<_>>()
        );
        for e in seen {
            assert!(
                name.as_bytes().starts_with(e.name_bytes()),
                "{name} vs {}",
                e.name()
            );
        }
    }
}
