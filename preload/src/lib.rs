//! `libfrontrun_io.so`: interposes libc socket, file and mutex calls and
//! reports them into the shared-memory ring drained by the frontrun engine.
