//! Redis requests (RESP2/RESP3 client side): arrays of bulk strings
//! (`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n`) and inline commands
//! (`PING\r\n`), several per `send` when pipelined, or split anywhere.
//!
//! [`RespConn`] is a byte-level state machine, so a command may be cut at
//! any byte; its state is fixed-size. Only the command name and the key
//! arguments are read; the FNV-1a digest of each key is computed while the
//! bytes stream past, and values are skipped without being looked at, so a
//! 100 MB `SET` costs the same as a small one.
//!
//! Keys map onto the key scheme of [`super::keys`] as rows of one table per
//! server (the empty table name): `GET k` reads row `k`, `SET k v` writes
//! it, `FLUSHDB` writes the whole table and `KEYS *` reads it. The logical
//! database selected with `SELECT n` is not part of the key (merging
//! databases only over-reports).
//!
//! Scripts (`EVAL`, `EVALSHA`, `FCALL`) run atomically on the keys they
//! declare: each declared key is written (read for the `_RO` forms). Keys a
//! script reaches without declaring them (which Redis asks scripts not to
//! do) are not seen. `SCRIPT` and `FUNCTION` commands fall back.
//!
//! `MULTI ... EXEC`: queued commands do nothing until `EXEC`, so they are
//! reported there, all at once, together with the keys named by `WATCH`
//! (whose outcome depends on writes between `WATCH` and `EXEC`). `INCR` and
//! friends are single atomic writes; `GET` then `SET` are a read then a
//! write, and the lost update between them shows as two conflicts.

mod commands;

use commands::{spec_of, special, Keys, Spec, Special, SCRIPT_NUMKEYS};

use super::{
    fnv1a64, AccessKind, Classification, Fallback, Fnv1a, InlineStr, RowKey, RowValue, TableAccess,
    VALUE_DISPLAY_CAP,
};

/// Arguments whose digests are kept per command; key arguments beyond this
/// make the command fall back.
pub const MAX_ARGS: usize = 16;
/// Bytes of a key hashed into its digest. Longer keys are hashed by this
/// prefix only, which can merge two long keys (a safe over-report) but
/// keeps the work per key bounded.
pub const KEY_HASH_CAP: usize = 4096;
/// Longest inline command line.
const INLINE_CAP: usize = 64 * 1024;
/// Most arguments believed in one command.
const MAX_NARGS: u64 = 1 << 20;
/// Longest bulk string believed (Redis' own limit is 512 MB).
const MAX_BULK: u64 = 1 << 30;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Between commands.
    Start,
    /// In `*<n>`.
    ArrayLen,
    /// Expecting `$` of the next bulk string.
    BulkHeader,
    /// In `$<n>`.
    BulkLen,
    /// Expecting `\n` after a length line.
    LenLf,
    /// Inside a bulk string's bytes.
    BulkBody,
    /// Expecting `\r` then `\n` after a bulk string.
    BulkCr,
    BulkLf,
    /// Inside an inline command line.
    Inline,
}

#[derive(Clone, Copy, Debug)]
struct Arg {
    digest: u64,
    display: InlineStr<VALUE_DISPLAY_CAP>,
}

const EMPTY_ARG: Arg = Arg {
    digest: 0,
    display: InlineStr::new(),
};

/// Per-socket state for a Redis client connection. Fixed size.
#[derive(Clone, Debug)]
pub struct RespConn {
    st: St,
    /// The length being read, and whether it was for the array.
    num: u64,
    num_digits: u8,
    len_is_array: bool,
    nargs: u64,
    arg: u64,
    remaining: u64,
    hash: Fnv1a,
    /// Bytes of the current argument hashed so far.
    hashed: usize,
    display: InlineStr<VALUE_DISPLAY_CAP>,
    /// Upper-cased command name (arg 0), cut at 24 bytes.
    name: InlineStr<24>,
    name_too_long: bool,
    spec: Spec,
    /// The key count of the script command being read.
    script_keys: u64,
    args: [Arg; MAX_ARGS],
    inline_len: usize,
    inline_in_word: bool,
    inline_bad: bool,
    bytes_seen: u64,
    encrypted: bool,
    desynced: bool,
    in_multi: bool,
    queued: Classification,
    watched: Classification,
    last: Classification,
}

impl Default for RespConn {
    fn default() -> Self {
        RespConn::new()
    }
}

impl RespConn {
    pub fn new() -> Self {
        RespConn {
            st: St::Start,
            num: 0,
            num_digits: 0,
            len_is_array: false,
            nargs: 0,
            arg: 0,
            remaining: 0,
            hash: Fnv1a::new(),
            hashed: 0,
            display: InlineStr::new(),
            name: InlineStr::new(),
            name_too_long: false,
            spec: special(Special::Unknown),
            script_keys: 0,
            args: [EMPTY_ARG; MAX_ARGS],
            inline_len: 0,
            inline_in_word: false,
            inline_bad: false,
            bytes_seen: 0,
            encrypted: false,
            desynced: false,
            in_multi: false,
            queued: Classification::new(),
            watched: Classification::new(),
            last: Classification::new(),
        }
    }

    /// The classification of the last send that completed a command.
    pub fn last(&self) -> &Classification {
        &self.last
    }

    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// From now on the bytes fed are the plaintext inside the TLS session.
    pub fn start_plaintext(&mut self) {
        if self.encrypted {
            self.encrypted = false;
            self.desynced = false;
            self.st = St::Start;
        }
    }

    /// True between `MULTI` and `EXEC`/`DISCARD`.
    pub fn in_multi(&self) -> bool {
        self.in_multi
    }

    /// Classifies the bytes of one `send`: the commands it completes.
    pub fn on_send(&mut self, bytes: &[u8]) -> Classification {
        let mut out = Classification::new();
        self.on_send_into(bytes, &mut out);
        out
    }

    /// Like [`Self::on_send`], into a buffer the caller keeps (it is cleared
    /// first), which saves copying the result.
    pub fn on_send_into(&mut self, bytes: &[u8], out: &mut Classification) {
        out.clear();
        if self.bytes_seen == 0 && bytes.first() == Some(&0x16) {
            self.encrypted = true;
        }
        self.bytes_seen = self.bytes_seen.saturating_add(bytes.len() as u64);
        if self.encrypted {
            out.set_fallback(Fallback::Encrypted);
            return;
        }
        let mut i = 0usize;
        while i < bytes.len() && !self.desynced {
            if self.st == St::BulkBody {
                let n = (self.remaining.min((bytes.len() - i) as u64)) as usize;
                if self.arg == 0 || self.spec.keys.is_kept(self.arg as usize, self.script_keys) {
                    let chunk = &bytes[i..i + n];
                    if self.arg == 0 {
                        for &c in chunk {
                            if !self.name.push(c.to_ascii_uppercase()) {
                                self.name_too_long = true;
                            }
                        }
                    } else {
                        let room = KEY_HASH_CAP.saturating_sub(self.hashed);
                        let take = chunk.len().min(room);
                        self.hash.bytes(&chunk[..take]);
                        self.hashed += take;
                        for &c in chunk {
                            if self.display.is_full() {
                                break;
                            }
                            self.display
                                .push(if (0x20..0x7f).contains(&c) { c } else { b'?' });
                        }
                    }
                }
                self.remaining -= n as u64;
                i += n;
                if self.remaining == 0 {
                    self.st = St::BulkCr;
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.step(b, out);
        }
        if self.desynced {
            out.set_fallback(Fallback::Desynced);
        }
        if out.requests() > 0 {
            self.last = *out;
        }
    }

    fn desync(&mut self) {
        self.desynced = true;
    }

    fn begin_command(&mut self) {
        self.arg = 0;
        self.script_keys = 0;
        self.name.clear();
        self.name_too_long = false;
        self.spec = special(Special::Unknown);
        self.begin_arg();
    }

    fn begin_arg(&mut self) {
        self.hash = Fnv1a::new();
        self.hashed = 0;
        self.display.clear();
    }

    /// Ends argument `self.arg`.
    fn end_arg(&mut self) {
        if self.arg == 0 {
            self.spec = if self.name_too_long {
                special(Special::Unknown)
            } else {
                spec_of(self.name.as_bytes())
            };
        } else if self.spec.keys == Keys::Script && self.arg as usize == SCRIPT_NUMKEYS {
            // The key count; a script whose count cannot be read is not
            // understood.
            let digits = self.display.as_bytes();
            let count =
                (!digits.is_empty() && digits.len() <= 6 && digits.iter().all(u8::is_ascii_digit))
                    .then(|| {
                        digits
                            .iter()
                            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
                    });
            match count {
                Some(n) => self.script_keys = n,
                None => self.spec = special(Special::Unknown),
            }
        } else if (self.arg as usize) < MAX_ARGS {
            self.args[self.arg as usize] = Arg {
                digest: self.hash.finish(),
                display: self.display,
            };
        }
        self.arg += 1;
        self.begin_arg();
    }

    fn step(&mut self, b: u8, out: &mut Classification) {
        match self.st {
            St::Start => match b {
                b'*' => {
                    self.st = St::ArrayLen;
                    self.num = 0;
                    self.num_digits = 0;
                    self.len_is_array = true;
                }
                b'\r' | b'\n' | b' ' => {}
                _ => {
                    self.begin_command();
                    self.nargs = 0;
                    self.inline_len = 0;
                    self.inline_in_word = false;
                    self.inline_bad = false;
                    self.st = St::Inline;
                    self.inline_byte(b, out);
                }
            },
            St::ArrayLen | St::BulkLen => match b {
                b'0'..=b'9' => {
                    self.num = self
                        .num
                        .saturating_mul(10)
                        .saturating_add((b - b'0') as u64);
                    self.num_digits = self.num_digits.saturating_add(1);
                }
                b'\r' if self.num_digits > 0 => self.st = St::LenLf,
                _ => self.desync(),
            },
            St::LenLf => {
                if b != b'\n' {
                    return self.desync();
                }
                if self.len_is_array {
                    if self.num > MAX_NARGS {
                        return self.desync();
                    }
                    self.nargs = self.num;
                    self.begin_command();
                    if self.nargs == 0 {
                        self.st = St::Start;
                    } else {
                        self.st = St::BulkHeader;
                    }
                } else {
                    if self.num > MAX_BULK {
                        return self.desync();
                    }
                    self.remaining = self.num;
                    self.st = if self.remaining == 0 {
                        St::BulkCr
                    } else {
                        St::BulkBody
                    };
                }
            }
            St::BulkHeader => {
                if b != b'$' {
                    return self.desync();
                }
                self.st = St::BulkLen;
                self.num = 0;
                self.num_digits = 0;
                self.len_is_array = false;
            }
            // Bulk bytes are consumed a slice at a time by on_send.
            St::BulkBody => {}
            St::BulkCr => {
                if b != b'\r' {
                    return self.desync();
                }
                self.st = St::BulkLf;
            }
            St::BulkLf => {
                if b != b'\n' {
                    return self.desync();
                }
                self.end_arg();
                if self.arg >= self.nargs {
                    self.st = St::Start;
                    self.finish_command(out);
                } else {
                    self.st = St::BulkHeader;
                }
            }
            St::Inline => self.inline_byte(b, out),
        }
    }

    fn inline_byte(&mut self, b: u8, out: &mut Classification) {
        self.inline_len += 1;
        if self.inline_len > INLINE_CAP {
            return self.desync();
        }
        match b {
            b'\n' => {
                if self.inline_in_word {
                    self.end_arg();
                }
                self.nargs = self.arg;
                self.st = St::Start;
                if self.nargs > 0 {
                    if self.inline_bad {
                        out.count_request();
                        out.set_fallback(Fallback::Unrecognized);
                    } else {
                        self.finish_command(out);
                    }
                }
            }
            b'\r' => {}
            b' ' | b'\t' => {
                if self.inline_in_word {
                    self.end_arg();
                    self.inline_in_word = false;
                }
            }
            _ => {
                if b == b'"' || b == b'\'' {
                    // Quoted inline arguments are rare; do not guess.
                    self.inline_bad = true;
                }
                if b < 0x20 {
                    return self.desync();
                }
                self.inline_in_word = true;
                if self.arg == 0 {
                    if !self.name.push(b.to_ascii_uppercase()) {
                        self.name_too_long = true;
                    }
                } else if self.spec.keys.is_kept(self.arg as usize, self.script_keys) {
                    if self.hashed < KEY_HASH_CAP {
                        self.hash.byte(b);
                        self.hashed += 1;
                    }
                    if !self.display.is_full() {
                        self.display.push(b);
                    }
                }
            }
        }
    }

    /// The command and its first key, for reports.
    fn label(&self) -> InlineStr<64> {
        let mut label: InlineStr<64> = InlineStr::new();
        label.push_str(self.name.as_bytes());
        if self.spec.keys.is_key(1, 0) && self.nargs > 1 {
            label.push(b' ');
            label.push_str(self.args[1].display.as_bytes());
        } else if self.spec.keys == Keys::Script && self.script_keys > 0 && self.nargs > 3 {
            label.push(b' ');
            label.push_str(self.args[SCRIPT_NUMKEYS + 1].display.as_bytes());
        }
        label
    }

    /// Adds the accesses of the finished command to `cmd`. Missing key
    /// arguments (`GET` alone) are an error reply and add nothing.
    fn push_keys(&self, cmd: &mut Classification) {
        let spec = self.spec;
        let n = self.nargs as usize;
        let push_key = |cmd: &mut Classification, i: usize, kind: AccessKind| {
            if i >= MAX_ARGS {
                cmd.set_fallback(Fallback::TooManyAccesses);
                return;
            }
            let a = self.args[i];
            cmd.push(TableAccess {
                table: InlineStr::new(),
                row: Some(RowKey {
                    column: InlineStr::new(),
                    value: RowValue::Digest(a.digest),
                    display: a.display,
                }),
                kind,
            });
        };
        match spec.keys {
            Keys::None => {}
            Keys::Everything => cmd.push(TableAccess {
                table: InlineStr::new(),
                row: None,
                kind: spec.kind,
            }),
            Keys::AllButLast => {
                for i in 1..n.saturating_sub(1) {
                    push_key(cmd, i, spec.kind);
                }
            }
            k => {
                for i in 1..n {
                    if k.is_key(i, self.script_keys) {
                        push_key(cmd, i, spec.kind);
                    }
                }
            }
        }
    }

    fn finish_command(&mut self, out: &mut Classification) {
        out.count_request();
        let label = self.label();
        if self.spec.special == Special::Plain && !self.in_multi {
            // The common case goes straight into the caller's result.
            if !out.has_label() {
                out.set_label(label.as_bytes());
            }
            self.push_keys(out);
            return;
        }
        let mut cmd = Classification::new();
        cmd.set_label(label.as_bytes());
        self.push_keys(&mut cmd);
        let spec = self.spec;
        match spec.special {
            Special::Plain => {
                if self.in_multi {
                    self.queued.merge(&cmd);
                    cmd = Classification::new();
                    cmd.set_label(label.as_bytes());
                }
            }
            Special::NoConflict => {}
            Special::Unknown => {
                if self.in_multi {
                    self.queued.set_fallback(Fallback::Unrecognized);
                } else {
                    cmd.set_fallback(Fallback::Unrecognized);
                }
            }
            Special::Multi => {
                self.in_multi = true;
                self.queued.clear();
            }
            Special::Exec => {
                if self.in_multi {
                    cmd.merge(&self.queued);
                    cmd.merge(&self.watched);
                }
                self.in_multi = false;
                self.queued.clear();
                self.watched.clear();
            }
            Special::Discard => {
                self.in_multi = false;
                self.queued.clear();
                self.watched.clear();
            }
            Special::Watch => {
                self.watched.merge(&cmd);
            }
            Special::Unwatch => self.watched.clear(),
        }
        out.merge(&cmd);
    }
}

/// The digest Redis keys use as their row value: FNV-1a of the raw key's
/// first [`KEY_HASH_CAP`] bytes.
pub fn key_digest(key: &[u8]) -> u64 {
    fnv1a64(&key[..key.len().min(KEY_HASH_CAP)])
}

impl super::WireConn for RespConn {
    fn on_send_into(&mut self, bytes: &[u8], out: &mut Classification) {
        RespConn::on_send_into(self, bytes, out)
    }

    fn on_recv(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }

    fn last(&self) -> &Classification {
        RespConn::last(self)
    }

    fn is_encrypted(&self) -> bool {
        RespConn::is_encrypted(self)
    }

    fn reply_unmatched(&self) -> bool {
        // Replies are not read at all: a reply is taken to answer the last
        // command that completed, also after the requests' framing was lost
        // (every later request then falls back on its own).
        false
    }

    fn start_plaintext(&mut self) {
        RespConn::start_plaintext(self)
    }
}
