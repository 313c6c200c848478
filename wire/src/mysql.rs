//! MySQL / MariaDB client packets: a 3-byte little-endian payload length, a
//! sequence byte, then the payload. The first client packet (sequence 1) is
//! the handshake response; after authentication each command is a packet
//! with sequence 0 whose first byte names it.
//!
//! [`MysqlConn`] follows packets across `send` calls with a fixed carry
//! buffer, like [`super::pg::PgConn`]:
//!
//! * `COM_QUERY` carries SQL text, classified with [`Dialect::Mysql`]
//!   (including the MySQL 8 query-attribute prefix when the client asked for
//!   it in its handshake);
//! * `COM_STMT_PREPARE` is classified once and kept in one of
//!   [`PREPARED_SLOTS`] slots. The server assigns the statement id in its
//!   reply, so callers pass received bytes to [`MysqlConn::on_recv`]; then
//!   `COM_STMT_EXECUTE` with that id reports the statement, with `?` row
//!   values read from the binary parameters (integers and strings; other
//!   types leave the access table-level). An execute of an id this state
//!   never learnt falls back;
//! * `COM_QUIT`, `COM_PING`, `COM_INIT_DB`, `COM_STMT_CLOSE`, ... conflict
//!   with nothing; unknown commands fall back.
//!
//! A handshake response of exactly 32 bytes with `CLIENT_SSL` set is an
//! SSL request: the rest of the stream is TLS and every send falls back
//! with [`Fallback::Encrypted`], until the caller, seeing the plaintext
//! inside the session, calls [`MysqlConn::start_plaintext`] and feeds that
//! (the full handshake response comes first).

use super::sql::{
    apply_txn, canonical_value, classify_single, classify_sql_append, Dialect, RowPolicy,
    SqlSession, StatementKind, SEND_SCAN_BUDGET,
};
use super::{Classification, Fallback, InlineStr, RowValue, VALUE_DISPLAY_CAP};
use crate::framer::{Framer, Step};

pub use crate::framer::CARRY_CAP;
/// Prepared statements remembered per connection.
pub const PREPARED_SLOTS: usize = 4;
/// Parameter types remembered per prepared statement.
const PARAM_TYPES: usize = 16;

const CLIENT_SSL: u32 = 0x0800;
const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_QUERY_ATTRIBUTES: u32 = 1 << 27;

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_STATISTICS: u8 = 0x09;
const COM_PING: u8 = 0x0e;
const COM_CHANGE_USER: u8 = 0x11;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
const COM_STMT_CLOSE: u8 = 0x19;
const COM_STMT_RESET: u8 = 0x1a;
const COM_SET_OPTION: u8 = 0x1b;
const COM_RESET_CONNECTION: u8 = 0x1f;

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MysqlPhase {
    /// Nothing seen yet.
    Start,
    /// Handshake response sent; authentication packets follow.
    Auth,
    /// Commands.
    Command,
    Encrypted,
    Desynced,
}

#[derive(Clone, Copy, Debug)]
struct Prepared {
    used: bool,
    /// Server-assigned id; 0 until the prepare reply is seen.
    id: u32,
    shape: Classification,
    kind: StatementKind,
    /// Parameter types from the last execute that sent them.
    types: [u8; PARAM_TYPES],
    types_known: bool,
    /// Parameter count from the prepare reply.
    nparams: u16,
}

const EMPTY_PREPARED: Prepared = Prepared {
    used: false,
    id: 0,
    shape: Classification::new(),
    kind: StatementKind::Unknown,
    types: [0; PARAM_TYPES],
    types_known: false,
    nparams: 0,
};

/// Per-socket state for a MySQL client connection. Fixed size.
#[derive(Clone, Debug)]
pub struct MysqlConn {
    phase: MysqlPhase,
    caps: u32,
    policy: RowPolicy,
    session: SqlSession,
    framer: Framer,
    /// SQL bytes this send may still classify ([`SEND_SCAN_BUDGET`]).
    budget: usize,
    prepared: [Prepared; PREPARED_SLOTS],
    next_slot: usize,
    awaiting_prepare: Option<usize>,
    last: Classification,
}

impl Default for MysqlConn {
    fn default() -> Self {
        MysqlConn::new(RowPolicy::heuristic())
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads a length-encoded integer at `*i`.
fn lenenc(b: &[u8], i: &mut usize) -> Option<u64> {
    let first = *b.get(*i)?;
    let (n, v) = match first {
        0..=0xfa => (1, first as u64),
        0xfc => (
            3,
            u16::from_le_bytes([*b.get(*i + 1)?, *b.get(*i + 2)?]) as u64,
        ),
        0xfd => (
            4,
            u32::from_le_bytes([*b.get(*i + 1)?, *b.get(*i + 2)?, *b.get(*i + 3)?, 0]) as u64,
        ),
        0xfe => {
            let s = b.get(*i + 1..*i + 9)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            (9, u64::from_le_bytes(a))
        }
        _ => return None,
    };
    *i += n;
    Some(v)
}

impl MysqlConn {
    pub fn new(policy: RowPolicy) -> Self {
        MysqlConn {
            phase: MysqlPhase::Start,
            caps: 0,
            policy,
            session: SqlSession::for_mysql(),
            framer: Framer::new(),
            budget: SEND_SCAN_BUDGET,
            prepared: [EMPTY_PREPARED; PREPARED_SLOTS],
            next_slot: 0,
            awaiting_prepare: None,
            last: Classification::new(),
        }
    }

    pub fn phase(&self) -> MysqlPhase {
        self.phase
    }

    pub fn is_encrypted(&self) -> bool {
        self.phase == MysqlPhase::Encrypted
    }

    /// From now on the bytes fed are the plaintext inside the TLS session:
    /// the full handshake response comes next.
    pub fn start_plaintext(&mut self) {
        if self.phase == MysqlPhase::Encrypted {
            self.phase = MysqlPhase::Start;
            self.framer.reset();
        }
    }

    /// The classification of the last send that completed a command.
    pub fn last(&self) -> &Classification {
        &self.last
    }

    /// Whether a transaction is open (explicitly, or with autocommit off).
    pub fn in_transaction(&self) -> bool {
        self.session.in_transaction()
    }

    /// Feeds reply bytes: only the reply to `COM_STMT_PREPARE` is read, for
    /// the statement id the server assigned.
    pub fn on_recv(&mut self, bytes: &[u8]) {
        let Some(slot) = self.awaiting_prepare.take() else {
            return;
        };
        if bytes.len() < 4 + 9 {
            // Status byte, id, columns, params: not all here. The statement
            // stays unknown and its executes fall back.
            self.prepared[slot].used = false;
            return;
        }
        let p = &bytes[4..];
        if p[0] == 0x00 {
            let id = le_u32(&p[1..5]);
            self.prepared[slot].id = id;
            self.prepared[slot].nparams = u16::from_le_bytes([p[7], p[8]]);
            // An id can only name one statement.
            for (k, other) in self.prepared.iter_mut().enumerate() {
                if k != slot && other.id == id {
                    other.used = false;
                }
            }
        } else {
            self.prepared[slot].used = false;
        }
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
        self.budget = SEND_SCAN_BUDGET;
        let mut i = 0usize;
        while i < bytes.len() {
            match self.phase {
                MysqlPhase::Encrypted => {
                    out.set_fallback(Fallback::Encrypted);
                    break;
                }
                MysqlPhase::Desynced => {
                    out.set_fallback(Fallback::Desynced);
                    break;
                }
                _ => {}
            }
            let (used, step) = self.framer.step(&bytes[i..], 4, |b| {
                Some(4 + (b[0] as usize | (b[1] as usize) << 8 | (b[2] as usize) << 16))
            });
            i += used;
            match step {
                Step::Pending => {}
                Step::Message(packet) => self.handle(packet, out),
                Step::Carried(total) => {
                    let packet = *self.framer.carried();
                    self.handle(&packet[..total], out);
                }
                Step::TooLong(head) => self.too_long(head.as_bytes(), out),
                // Not produced (every 24-bit length is a packet length);
                // the safe answer if it were.
                Step::Bad => self.phase = MysqlPhase::Desynced,
            }
        }
        if out.requests() > 0 {
            self.last = *out;
        }
    }

    /// A command packet too long to keep: queries and executes fall back.
    fn too_long(&mut self, head: &[u8], out: &mut Classification) {
        let seq = head.get(3).copied().unwrap_or(1);
        let cmd = head.get(4).copied();
        if seq != 0 || matches!(self.phase, MysqlPhase::Start | MysqlPhase::Auth) {
            if self.phase == MysqlPhase::Start {
                self.phase = MysqlPhase::Auth;
            }
            return;
        }
        self.phase = MysqlPhase::Command;
        match cmd {
            Some(COM_QUERY) | Some(COM_STMT_EXECUTE) | None => {
                out.count_request();
                out.set_fallback(Fallback::TooLong);
                let mut c = Classification::new();
                c.set_fallback(Fallback::TooLong);
                apply_txn(&mut self.session, StatementKind::Unknown, &mut c);
            }
            Some(COM_STMT_PREPARE) => {
                // Its id will name a statement we could not read.
                self.awaiting_prepare = None;
            }
            _ => {}
        }
    }

    fn handle(&mut self, packet: &[u8], out: &mut Classification) {
        let seq = packet[3];
        let payload = &packet[4..];
        match self.phase {
            MysqlPhase::Start => {
                if seq == 0 {
                    // Attached after authentication: this is a command.
                    self.phase = MysqlPhase::Command;
                } else {
                    self.handshake(payload);
                    return;
                }
            }
            MysqlPhase::Auth => {
                if seq != 0 {
                    return;
                }
                self.phase = MysqlPhase::Command;
            }
            _ => {}
        }
        if seq != 0 {
            // LOAD DATA LOCAL contents or a continuation: part of a command
            // already reported.
            return;
        }
        let Some((&cmd, body)) = payload.split_first() else {
            return;
        };
        match cmd {
            COM_QUERY => self.query(body, out),
            COM_STMT_PREPARE => self.prepare(body),
            COM_STMT_EXECUTE => self.execute(body, out),
            COM_STMT_CLOSE => {
                if body.len() >= 4 {
                    let id = le_u32(body);
                    for p in &mut self.prepared {
                        if p.id == id {
                            p.used = false;
                        }
                    }
                }
            }
            COM_RESET_CONNECTION | COM_CHANGE_USER => {
                // Rolls back, forgets statements, restores autocommit.
                self.session = SqlSession::for_mysql();
                for p in &mut self.prepared {
                    p.used = false;
                }
            }
            COM_QUIT
            | COM_INIT_DB
            | COM_STATISTICS
            | COM_PING
            | COM_STMT_SEND_LONG_DATA
            | COM_STMT_RESET
            | COM_SET_OPTION => {}
            _ => {
                out.count_request();
                out.set_fallback(Fallback::Unrecognized);
            }
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

    fn handshake(&mut self, payload: &[u8]) {
        self.phase = MysqlPhase::Auth;
        if payload.len() < 4 {
            return;
        }
        let caps = le_u32(payload);
        if caps & CLIENT_PROTOCOL_41 == 0 {
            // Pre-4.1 handshake: two-byte flags, no query attributes.
            self.caps = caps & 0xffff;
        } else {
            self.caps = caps;
        }
        if self.caps & CLIENT_SSL != 0 && payload.len() == 32 {
            self.phase = MysqlPhase::Encrypted;
        }
    }

    fn query(&mut self, body: &[u8], out: &mut Classification) {
        let mut text = body;
        if self.caps & CLIENT_QUERY_ATTRIBUTES != 0 {
            let mut i = 0;
            let (Some(nparams), Some(_sets)) = (lenenc(body, &mut i), lenenc(body, &mut i)) else {
                out.count_request();
                out.set_fallback(Fallback::Unrecognized);
                return;
            };
            if nparams != 0 {
                out.count_request();
                out.set_fallback(Fallback::Unrecognized);
                return;
            }
            text = &body[i..];
        }
        if !self.spend(text.len()) {
            out.count_request();
            out.set_fallback(Fallback::TooLong);
            let mut c = Classification::new();
            c.set_fallback(Fallback::TooLong);
            apply_txn(&mut self.session, StatementKind::Unknown, &mut c);
            return;
        }
        classify_sql_append(
            text,
            Dialect::Mysql,
            &self.policy,
            &mut self.session,
            out,
            &mut 0,
        );
    }

    fn prepare(&mut self, body: &[u8]) {
        let slot = self.next_slot;
        self.next_slot = (self.next_slot + 1) % PREPARED_SLOTS;
        let mut p = EMPTY_PREPARED;
        p.used = true;
        p.kind = if self.spend(body.len()) {
            classify_single(body, Dialect::Mysql, &self.policy, &mut p.shape)
        } else {
            p.shape.set_fallback(Fallback::TooLong);
            StatementKind::Unknown
        };
        self.prepared[slot] = p;
        self.awaiting_prepare = Some(slot);
    }

    fn execute(&mut self, body: &[u8], out: &mut Classification) {
        out.count_request();
        let id = if body.len() >= 4 { le_u32(body) } else { 0 };
        let found = self
            .prepared
            .iter()
            .position(|p| p.used && p.id != 0 && p.id == id);
        let Some(slot) = found else {
            out.set_fallback(Fallback::UnknownPrepared);
            if !out.has_label() {
                out.set_label(b"<execute of an unknown statement>");
            }
            return;
        };
        let mut shape = self.prepared[slot].shape;
        let kind = self.prepared[slot].kind;
        self.bind_params(slot, body, &mut shape);
        shape.drop_param_rows();
        apply_txn(&mut self.session, kind, &mut shape);
        out.merge(&shape);
    }

    /// Fills `?` rows from the binary parameters of an execute packet.
    fn bind_params(&mut self, slot: usize, body: &[u8], shape: &mut Classification) {
        let max_param = shape
            .accesses()
            .iter()
            .filter_map(|a| match a.row.map(|r| r.value) {
                Some(RowValue::Param(n)) => Some(n as usize),
                _ => None,
            })
            .max();
        let Some(max_param) = max_param else { return };
        // The packet layout needs the exact count, from the prepare reply.
        let nparams = self.prepared[slot].nparams as usize;
        if nparams < max_param || nparams > PARAM_TYPES {
            return;
        }
        // id(4) flags(1) iterations(4)
        let mut i = 9usize;
        let nulls_len = nparams.div_ceil(8);
        let Some(nulls) = body.get(i..i + nulls_len) else {
            return;
        };
        i += nulls_len;
        let Some(&bound) = body.get(i) else { return };
        i += 1;
        let p = &mut self.prepared[slot];
        if bound == 1 {
            for k in 0..nparams {
                let Some(&t) = body.get(i + 2 * k) else {
                    return;
                };
                p.types[k] = t;
            }
            p.types_known = true;
            i += 2 * nparams;
        }
        if !p.types_known {
            return;
        }
        let types = p.types;
        let mut values: [Option<(u64, InlineStr<VALUE_DISPLAY_CAP>)>; PARAM_TYPES] =
            [None; PARAM_TYPES];
        for k in 0..nparams {
            if nulls[k / 8] & (1 << (k % 8)) != 0 {
                continue;
            }
            let Some((v, next)) = binary_value(body, i, types[k]) else {
                break;
            };
            values[k] = v;
            i = next;
        }
        for a in shape.accesses_mut() {
            let Some(row) = &mut a.row else { continue };
            if let RowValue::Param(n) = row.value {
                match values.get((n as usize).wrapping_sub(1)).copied().flatten() {
                    Some((d, disp)) => {
                        row.value = RowValue::Digest(d);
                        row.display = disp;
                    }
                    None => a.row = None,
                }
            }
        }
    }
}

/// Decodes one binary-protocol value at `at`: its canonical digest (if it
/// is an integer or a string) and the offset after it. `None` when the
/// layout of the type is not known, which stops the walk.
#[allow(clippy::type_complexity)]
fn binary_value(
    body: &[u8],
    at: usize,
    ty: u8,
) -> Option<(Option<(u64, InlineStr<VALUE_DISPLAY_CAP>)>, usize)> {
    let int = |n: i128| {
        let mut buf = [0u8; 48];
        let mut k = buf.len();
        let neg = n < 0;
        let mut m = n.unsigned_abs();
        loop {
            k -= 1;
            buf[k] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if neg {
            k -= 1;
            buf[k] = b'-';
        }
        canonical_value(&buf[k..])
    };
    match ty {
        // TINY, SHORT, LONG/INT24, LONGLONG: signedness is unknown here
        // (the flag byte says it), so negative-looking values are read as
        // signed; an unsigned id above i64::MAX would be rare.
        0x01 => Some((int(body.get(at).map(|b| *b as i8 as i128)?), at + 1)),
        0x02 => {
            let b = body.get(at..at + 2)?;
            Some((int(i16::from_le_bytes([b[0], b[1]]) as i128), at + 2))
        }
        0x03 | 0x09 => {
            let b = body.get(at..at + 4)?;
            Some((
                int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i128),
                at + 4,
            ))
        }
        0x08 => {
            let b = body.get(at..at + 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Some((int(i64::from_le_bytes(a) as i128), at + 8))
        }
        0x04 => Some((None, at + 4)),
        0x05 => Some((None, at + 8)),
        0x06 => Some((None, at)),
        0x07 | 0x0a | 0x0b | 0x0c => {
            let n = *body.get(at)? as usize;
            Some((None, at + 1 + n))
        }
        0x0f | 0xfd | 0xfe | 0xfc | 0x00 | 0xf6 | 0xf5 | 0xf7 | 0xf8 | 0xf9 | 0xfa | 0xfb => {
            let mut i = at;
            let n = lenenc(body, &mut i)? as usize;
            let v = body.get(i..i.checked_add(n)?)?;
            let val = if matches!(ty, 0x0f | 0xfd | 0xfe | 0x00 | 0xf6) {
                canonical_value(v)
            } else {
                None
            };
            Some((val, i + n))
        }
        _ => None,
    }
}

impl super::WireConn for MysqlConn {
    fn on_send_into(&mut self, bytes: &[u8], out: &mut Classification) {
        MysqlConn::on_send_into(self, bytes, out)
    }

    fn on_recv(&mut self, bytes: &[u8]) {
        MysqlConn::on_recv(self, bytes)
    }

    fn last(&self) -> &Classification {
        MysqlConn::last(self)
    }

    fn is_encrypted(&self) -> bool {
        MysqlConn::is_encrypted(self)
    }

    fn reply_unmatched(&self) -> bool {
        self.phase == MysqlPhase::Desynced
    }

    fn start_plaintext(&mut self) {
        MysqlConn::start_plaintext(self)
    }
}
