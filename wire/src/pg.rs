//! PostgreSQL frontend messages (protocol 3.0), client side only.
//!
//! A `send` may hold several messages, or part of one; [`PgConn`] keeps what
//! it needs between calls in fixed-size fields:
//!
//! * a carry buffer of [`CARRY_CAP`] bytes for a message split across sends
//!   (a longer split message is skipped and its request falls back),
//! * the startup phase: the first bytes of a connection carry no type byte
//!   (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest),
//! * [`PREPARED_SLOTS`] prepared statements (`Parse`), each already
//!   classified, with `$n` row values left open, plus the portal made by the
//!   last `Bind`, whose text or binary parameters fill them in. `Execute`
//!   reports the bound statement; a `Parse` and its `Bind` may come in
//!   different sends.
//!
//! # TLS
//!
//! libpq sends SSLRequest first unless `sslmode=disable`. After the server's
//! `S` the stream is TLS and only ciphertext reaches the hook. [`PgConn`]
//! spots this either from the reply (pass the first reply bytes to
//! [`PgConn::on_recv`]) or from the next client bytes (a TLS record, not a
//! StartupMessage) and then answers [`Fallback::Encrypted`] for every send,
//! so the caller keeps the coarse socket key. A caller that sees the
//! plaintext inside the TLS session (the preload library hooks OpenSSL)
//! calls [`PgConn::start_plaintext`] and feeds that instead.
//!
//! # Attaching late
//!
//! A state created after the connection started works if its first bytes
//! begin a message (the startup family begins with a zero byte, typed
//! messages with a letter). Otherwise the framing check fails and the
//! connection stays in [`Fallback::Desynced`], which is safe, only coarse.
//!
//! # Replies
//!
//! [`PgConn::last`] is the classification of the most recent send that
//! completed a request (Query or Execute); a `recv` that follows belongs to
//! it and can be reported as reads of its resources.

use super::sql::{
    apply_txn, canonical_value, classify_single, Dialect, RowPolicy, SqlSession, SEND_SCAN_BUDGET,
};
use super::{fnv1a64, Classification, Fallback, InlineStr, RowValue};
use crate::framer::{Framer, Step};

pub use crate::framer::CARRY_CAP;
/// Prepared statements remembered per connection.
pub const PREPARED_SLOTS: usize = 4;
/// Parameter types remembered per prepared statement.
const PARAM_TYPES: usize = 8;
/// Longest message length believed; anything longer means lost framing.
const MAX_MESSAGE: usize = 1 << 30;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

const OID_INT8: u32 = 20;
const OID_INT2: u32 = 21;
const OID_INT4: u32 = 23;
const OID_TEXT: u32 = 25;
const OID_VARCHAR: u32 = 1043;
const OID_BPCHAR: u32 = 1042;
const OID_UUID: u32 = 2950;

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgPhase {
    /// Untyped startup-family messages expected.
    Startup,
    /// SSLRequest sent, answer not seen yet.
    AwaitSsl,
    /// GSSENCRequest sent, answer not seen yet.
    AwaitGss,
    /// Typed frontend messages.
    Plain,
    /// TLS or GSS encrypted: nothing readable.
    Encrypted,
    /// Framing lost: nothing trusted any more.
    Desynced,
}

#[derive(Clone, Copy, Debug)]
struct Prepared {
    used: bool,
    name: u64,
    shape: Classification,
    kind: super::sql::StatementKind,
    param_types: [u32; PARAM_TYPES],
}

const EMPTY_PREPARED: Prepared = Prepared {
    used: false,
    name: 0,
    shape: Classification::new(),
    kind: super::sql::StatementKind::Unknown,
    param_types: [0; PARAM_TYPES],
};

#[derive(Clone, Copy, Debug)]
struct Portal {
    valid: bool,
    name: u64,
    shape: Classification,
    kind: super::sql::StatementKind,
}

/// Per-socket state for a PostgreSQL client connection. Fixed size (about
/// 10 KiB); create one at `connect` and feed it every `send` on the socket.
#[derive(Clone, Debug)]
pub struct PgConn {
    phase: PgPhase,
    policy: RowPolicy,
    session: SqlSession,
    framer: Framer,
    /// SQL bytes this send may still classify ([`SEND_SCAN_BUDGET`]).
    budget: usize,
    prepared: [Prepared; PREPARED_SLOTS],
    next_slot: usize,
    portal: Portal,
    last: Classification,
}

impl Default for PgConn {
    fn default() -> Self {
        PgConn::new(RowPolicy::heuristic())
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A little reader over a message body that never panics.
struct Body<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Body<'a> {
    fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.i..)?;
        let n = rest.iter().position(|c| *c == 0)?;
        self.i += n + 1;
        Some(&rest[..n])
    }
    fn i16(&mut self) -> Option<i16> {
        let v = self.b.get(self.i..self.i + 2)?;
        self.i += 2;
        Some(i16::from_be_bytes([v[0], v[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        let v = self.b.get(self.i..self.i + 4)?;
        self.i += 4;
        Some(i32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(v)
    }
}

/// Header size of the next message in `phase`.
fn header_len(phase: PgPhase) -> usize {
    if phase == PgPhase::Startup {
        4
    } else {
        5
    }
}

/// The length of the message whose header starts `b`, header included;
/// `None` for a nonsense length.
fn total_len(phase: PgPhase, b: &[u8]) -> Option<usize> {
    let h = header_len(phase);
    let len = be_u32(&b[h - 4..h]) as usize;
    if phase == PgPhase::Startup {
        if !(8..=10_000).contains(&len) {
            return None;
        }
        return Some(len);
    }
    if !(4..=MAX_MESSAGE).contains(&len) || !is_frontend_type(b[0]) {
        return None;
    }
    Some(len + 1)
}

impl PgConn {
    pub fn new(policy: RowPolicy) -> Self {
        PgConn {
            phase: PgPhase::Startup,
            policy,
            session: SqlSession::new(),
            framer: Framer::new(),
            budget: SEND_SCAN_BUDGET,
            prepared: [EMPTY_PREPARED; PREPARED_SLOTS],
            next_slot: 0,
            portal: Portal {
                valid: false,
                name: 0,
                shape: Classification::new(),
                kind: super::sql::StatementKind::Unknown,
            },
            last: Classification::new(),
        }
    }

    pub fn phase(&self) -> PgPhase {
        self.phase
    }

    /// True once the stream is known to be encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.phase == PgPhase::Encrypted
    }

    /// From now on the bytes fed are the plaintext inside the TLS session
    /// (from hooks on the TLS library), not the socket's ciphertext: the
    /// startup message comes next.
    pub fn start_plaintext(&mut self) {
        if matches!(self.phase, PgPhase::Encrypted | PgPhase::AwaitSsl) {
            self.phase = PgPhase::Startup;
            self.framer.reset();
        }
    }

    /// The classification of the last send that completed a request.
    pub fn last(&self) -> &Classification {
        &self.last
    }

    /// Whether a transaction is open on this connection.
    pub fn in_transaction(&self) -> bool {
        self.session.in_transaction()
    }

    /// Feeds reply bytes; only the one-byte answer to SSLRequest /
    /// GSSENCRequest is looked at.
    pub fn on_recv(&mut self, bytes: &[u8]) {
        let Some(&b) = bytes.first() else { return };
        self.phase = match (self.phase, b) {
            (PgPhase::AwaitSsl, b'S') | (PgPhase::AwaitGss, b'G') => PgPhase::Encrypted,
            (PgPhase::AwaitSsl, b'N') | (PgPhase::AwaitGss, b'N') => PgPhase::Startup,
            (p, _) => p,
        };
    }

    /// Classifies the bytes of one `send`: the requests it completes.
    pub fn on_send(&mut self, bytes: &[u8]) -> Classification {
        let mut out = Classification::new();
        self.on_send_into(bytes, &mut out);
        out
    }

    /// Like [`Self::on_send`], into a buffer the caller keeps (it is cleared
    /// first), which saves copying the result.
    pub fn on_send_into(&mut self, bytes: &[u8], out: &mut Classification) {
        out.clear();
        self.budget = SEND_SCAN_BUDGET;
        let mut i = 0usize;
        while i < bytes.len() {
            match self.phase {
                PgPhase::Encrypted => {
                    out.set_fallback(Fallback::Encrypted);
                    break;
                }
                PgPhase::Desynced => {
                    out.set_fallback(Fallback::Desynced);
                    break;
                }
                _ => {}
            }
            let rest = &bytes[i..];
            if self.framer.at_message_start() {
                if matches!(self.phase, PgPhase::AwaitSsl | PgPhase::AwaitGss) {
                    // The answer was not fed to on_recv: judge by what the
                    // client sends next. A StartupMessage (first byte 0)
                    // means the server said no; anything else is the
                    // encrypted handshake.
                    self.phase = if rest[0] == 0 {
                        PgPhase::Startup
                    } else {
                        PgPhase::Encrypted
                    };
                    continue;
                }
                if self.phase == PgPhase::Startup && rest[0] != 0 {
                    // Direct TLS (a ClientHello) or a state attached
                    // mid-stream.
                    self.phase = if rest[0] == 0x16 {
                        PgPhase::Encrypted
                    } else {
                        PgPhase::Plain
                    };
                    continue;
                }
            }
            let phase = self.phase;
            let (used, step) = self
                .framer
                .step(rest, header_len(phase), |b| total_len(phase, b));
            i += used;
            match step {
                Step::Pending => {}
                Step::Message(msg) => self.handle(msg, out),
                Step::Carried(total) => {
                    let msg = *self.framer.carried();
                    self.handle(&msg[..total], out);
                }
                Step::TooLong(head) => self.too_long(head.as_bytes()[0], out),
                Step::Bad => self.phase = PgPhase::Desynced,
            }
        }
        if out.requests() > 0 {
            self.last = *out;
        }
    }

    /// A message too long to classify: requests fall back, and a skipped
    /// Parse or Bind leaves the portal unknown.
    fn too_long(&mut self, kind: u8, out: &mut Classification) {
        match kind {
            b'Q' => {
                out.count_request();
                out.set_fallback(Fallback::TooLong);
                self.session_unknown();
            }
            b'P' | b'B' => {
                self.portal.valid = false;
                if kind == b'P' {
                    // The unnamed or some named statement changed unseen.
                    for p in &mut self.prepared {
                        p.used = false;
                    }
                }
            }
            b'E' | b'F' => {
                out.count_request();
                out.set_fallback(Fallback::TooLong);
            }
            _ => {}
        }
    }

    /// Takes `n` bytes from this send's scan budget; false when spent.
    fn spend(&mut self, n: usize) -> bool {
        if n > self.budget {
            self.budget = 0;
            return false;
        }
        self.budget -= n;
        true
    }

    fn session_unknown(&mut self) {
        let mut c = Classification::new();
        c.set_fallback(Fallback::TooLong);
        apply_txn(
            &mut self.session,
            super::sql::StatementKind::Unknown,
            &mut c,
        );
    }

    fn handle(&mut self, msg: &[u8], out: &mut Classification) {
        if self.phase == PgPhase::Startup {
            let code = if msg.len() >= 8 {
                be_u32(&msg[4..8])
            } else {
                0
            };
            self.phase = match code {
                SSL_REQUEST => PgPhase::AwaitSsl,
                GSSENC_REQUEST => PgPhase::AwaitGss,
                CANCEL_REQUEST => PgPhase::Startup,
                c if c >> 16 == 3 => PgPhase::Plain,
                _ => PgPhase::Desynced,
            };
            return;
        }
        let body = &msg[5..];
        match msg[0] {
            b'Q' => {
                let Some(text) = body.strip_suffix(&[0]) else {
                    out.count_request();
                    out.set_fallback(Fallback::Unrecognized);
                    return;
                };
                if !self.spend(text.len()) {
                    self.too_long(b'Q', out);
                    return;
                }
                super::sql::classify_sql_append(
                    text,
                    Dialect::Postgres,
                    &self.policy,
                    &mut self.session,
                    out,
                    &mut 0,
                );
            }
            b'P' => self.parse(body),
            b'B' => self.bind(body),
            b'E' => self.execute(body, out),
            b'F' => {
                out.count_request();
                out.set_label(b"<function call>");
                out.set_fallback(Fallback::Unrecognized);
            }
            _ => {}
        }
    }

    fn parse(&mut self, body: &[u8]) {
        let mut r = Body { b: body, i: 0 };
        let (Some(name), Some(text)) = (r.cstr(), r.cstr()) else {
            self.phase = PgPhase::Desynced;
            return;
        };
        let name = fnv1a64(name);
        let mut p = EMPTY_PREPARED;
        p.used = true;
        p.name = name;
        p.kind = if self.spend(text.len()) {
            classify_single(text, Dialect::Postgres, &self.policy, &mut p.shape)
        } else {
            p.shape.set_fallback(Fallback::TooLong);
            super::sql::StatementKind::Unknown
        };
        if let Some(n) = r.i16() {
            for k in 0..(n.max(0) as usize).min(PARAM_TYPES) {
                p.param_types[k] = r.i32().unwrap_or(0) as u32;
            }
        }
        let slot = match self.prepared.iter().position(|s| s.used && s.name == name) {
            Some(s) => s,
            None => {
                let s = self.next_slot;
                self.next_slot = (self.next_slot + 1) % PREPARED_SLOTS;
                s
            }
        };
        self.prepared[slot] = p;
    }

    fn bind(&mut self, body: &[u8]) {
        self.portal.valid = false;
        let mut r = Body { b: body, i: 0 };
        let (Some(portal), Some(stmt)) = (r.cstr(), r.cstr()) else {
            self.phase = PgPhase::Desynced;
            return;
        };
        let stmt = fnv1a64(stmt);
        let Some(p) = self.prepared.iter().find(|s| s.used && s.name == stmt) else {
            return;
        };
        let mut shape = p.shape;
        let kind = p.kind;
        let types = p.param_types;
        // Formats: none = all text, one = for all, else one per parameter.
        let mut formats = [0i16; 16];
        let nfmt = r.i16().unwrap_or(-1);
        if nfmt < 0 {
            return;
        }
        for k in 0..nfmt as usize {
            let f = r.i16();
            if k < formats.len() {
                formats[k] = f.unwrap_or(-1);
            }
        }
        let nparams = r.i16().unwrap_or(-1);
        if nparams < 0 {
            return;
        }
        for a in shape.accesses_mut() {
            let Some(row) = &mut a.row else { continue };
            let RowValue::Param(n) = row.value else {
                continue;
            };
            let n = n as usize;
            let resolved = if n == 0 || n > nparams as usize {
                None
            } else {
                let fmt = match nfmt {
                    0 => 0,
                    1 => formats[0],
                    _ if n - 1 < formats.len() && n <= nfmt as usize => formats[n - 1],
                    _ => -1,
                };
                param_value(
                    body,
                    r.i,
                    n - 1,
                    fmt,
                    types.get(n - 1).copied().unwrap_or(0),
                )
            };
            match resolved {
                Some((digest, display)) => {
                    row.value = RowValue::Digest(digest);
                    row.display = display;
                }
                None => a.row = None,
            }
        }
        shape.drop_param_rows();
        self.portal = Portal {
            valid: true,
            name: fnv1a64(portal),
            shape,
            kind,
        };
    }

    fn execute(&mut self, body: &[u8], out: &mut Classification) {
        let mut r = Body { b: body, i: 0 };
        let name = r.cstr().map(fnv1a64);
        out.count_request();
        if self.portal.valid && Some(self.portal.name) == name {
            let mut stmt = self.portal.shape;
            apply_txn(&mut self.session, self.portal.kind, &mut stmt);
            if !out.has_label() || out.is_no_conflict() {
                out.set_label(stmt.label().as_bytes());
            }
            out.merge(&stmt);
        } else {
            out.set_fallback(Fallback::UnknownPrepared);
            if !out.has_label() {
                out.set_label(b"<execute of an unknown portal>");
            }
        }
    }
}

fn is_frontend_type(b: u8) -> bool {
    matches!(
        b,
        b'Q' | b'P'
            | b'B'
            | b'E'
            | b'S'
            | b'X'
            | b'D'
            | b'C'
            | b'H'
            | b'F'
            | b'd'
            | b'c'
            | b'f'
            | b'p'
    )
}

/// The canonical digest of Bind parameter `index` (0-based), whose values
/// start at byte `at` of the Bind body.
fn param_value(
    body: &[u8],
    at: usize,
    index: usize,
    format: i16,
    oid: u32,
) -> Option<(u64, InlineStr<{ super::VALUE_DISPLAY_CAP }>)> {
    let mut r = Body { b: body, i: at };
    let mut value: Option<&[u8]> = None;
    for k in 0..=index {
        let len = r.i32()?;
        let v = if len < 0 {
            None
        } else {
            Some(r.bytes(len as usize)?)
        };
        if k == index {
            value = v;
        }
    }
    // NULL matches no row: the table level covers it.
    let v = value?;
    match format {
        0 => canonical_value(v),
        1 => match (oid, v.len()) {
            (OID_INT2, 2) => int_value(i16::from_be_bytes([v[0], v[1]]) as i64),
            (OID_INT4, 4) => int_value(i32::from_be_bytes([v[0], v[1], v[2], v[3]]) as i64),
            (OID_INT8, 8) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(v);
                int_value(i64::from_be_bytes(b))
            }
            (OID_UUID, 16) => {
                let mut hex = [0u8; 32];
                for (k, byte) in v.iter().enumerate() {
                    hex[2 * k] = b"0123456789abcdef"[(byte >> 4) as usize];
                    hex[2 * k + 1] = b"0123456789abcdef"[(byte & 15) as usize];
                }
                canonical_value(&hex)
            }
            (OID_TEXT | OID_VARCHAR | OID_BPCHAR, _) => canonical_value(v),
            // Binary of an undeclared or other type: cannot be matched with
            // its text spelling, so the access stays table-level.
            _ => None,
        },
        _ => None,
    }
}

fn int_value(n: i64) -> Option<(u64, InlineStr<{ super::VALUE_DISPLAY_CAP }>)> {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let neg = n < 0;
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    canonical_value(&buf[i..])
}

impl super::WireConn for PgConn {
    fn on_send_into(&mut self, bytes: &[u8], out: &mut Classification) {
        PgConn::on_send_into(self, bytes, out)
    }

    fn on_recv(&mut self, bytes: &[u8]) {
        PgConn::on_recv(self, bytes)
    }

    fn last(&self) -> &Classification {
        PgConn::last(self)
    }

    fn is_encrypted(&self) -> bool {
        PgConn::is_encrypted(self)
    }

    fn reply_unmatched(&self) -> bool {
        self.phase == PgPhase::Desynced
    }

    fn start_plaintext(&mut self) {
        PgConn::start_plaintext(self)
    }
}
