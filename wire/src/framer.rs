//! Framing shared by the PostgreSQL and MySQL machines. Both protocols send
//! length-prefixed messages, and one `send` may hold several of them, or a
//! part of one: the framer carries an incomplete message across sends (up
//! to [`CARRY_CAP`] bytes) and skips the rest of one too long to keep. The
//! machines keep the protocol: the header size, how a header gives the
//! message's length, and what a message means.

/// Bytes kept of a message split across sends.
pub const CARRY_CAP: usize = 2048;

/// The first bytes of a message too long to keep, enough for the machines
/// to tell what kind of message it was.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    bytes: [u8; 8],
    len: usize,
}

impl Head {
    fn of(b: &[u8]) -> Head {
        let len = b.len().min(8);
        let mut bytes = [0; 8];
        bytes[..len].copy_from_slice(&b[..len]);
        Head { bytes, len }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// What one [`Framer::step`] found.
pub(crate) enum Step<'a> {
    /// Bytes were skipped or carried; no message is complete yet.
    Pending,
    /// A whole message, inside the bytes fed.
    Message(&'a [u8]),
    /// A whole message of this many bytes, completed in the carry buffer
    /// ([`Framer::carried`]).
    Carried(usize),
    /// A message too long to keep starts here; the framer skips its rest.
    TooLong(Head),
    /// A header with a length that makes no sense: the framing is lost.
    Bad,
}

#[derive(Clone, Debug)]
pub(crate) struct Framer {
    carry: [u8; CARRY_CAP],
    carry_len: usize,
    /// Bytes of an over-long message still to skip.
    skip: usize,
}

impl Framer {
    pub(crate) const fn new() -> Framer {
        Framer {
            carry: [0; CARRY_CAP],
            carry_len: 0,
            skip: 0,
        }
    }

    /// Forgets a carried or skipped message (the stream starts over).
    pub(crate) fn reset(&mut self) {
        self.carry_len = 0;
        self.skip = 0;
    }

    /// Whether the next byte fed starts a new message.
    pub(crate) fn at_message_start(&self) -> bool {
        self.skip == 0 && self.carry_len == 0
    }

    /// The carry buffer, after [`Step::Carried`]: the message is its first
    /// bytes.
    pub(crate) fn carried(&self) -> &[u8; CARRY_CAP] {
        &self.carry
    }

    /// Takes the bytes of at most one message from the start of `bytes`
    /// (not empty); returns how many it took and what they completed.
    /// `header` is the size of a message header; `total_len` reads a whole
    /// header and gives the message's length, header included, or `None`
    /// when the header makes no sense.
    pub(crate) fn step<'a>(
        &mut self,
        bytes: &'a [u8],
        header: usize,
        total_len: impl Fn(&[u8]) -> Option<usize>,
    ) -> (usize, Step<'a>) {
        if self.skip > 0 {
            let n = self.skip.min(bytes.len());
            self.skip -= n;
            return (n, Step::Pending);
        }
        if self.carry_len > 0 {
            return self.continue_carry(bytes, header, total_len);
        }
        if bytes.len() < header {
            // Not even a full header: carry it.
            self.keep(bytes);
            return (bytes.len(), Step::Pending);
        }
        let Some(total) = total_len(bytes) else {
            return (0, Step::Bad);
        };
        if bytes.len() >= total {
            (total, Step::Message(&bytes[..total]))
        } else if total <= CARRY_CAP {
            self.keep(bytes);
            (bytes.len(), Step::Pending)
        } else {
            self.skip = total - bytes.len();
            (bytes.len(), Step::TooLong(Head::of(bytes)))
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.carry[..bytes.len()].copy_from_slice(bytes);
        self.carry_len = bytes.len();
    }

    /// Adds bytes to a carried partial message.
    fn continue_carry<'a>(
        &mut self,
        bytes: &'a [u8],
        header: usize,
        total_len: impl Fn(&[u8]) -> Option<usize>,
    ) -> (usize, Step<'a>) {
        let mut used = 0usize;
        if self.carry_len < header {
            let n = (header - self.carry_len).min(bytes.len());
            self.carry[self.carry_len..self.carry_len + n].copy_from_slice(&bytes[..n]);
            self.carry_len += n;
            used += n;
            if self.carry_len < header {
                return (used, Step::Pending);
            }
        }
        let Some(total) = total_len(&self.carry[..self.carry_len]) else {
            self.carry_len = 0;
            return (used, Step::Bad);
        };
        if total > CARRY_CAP {
            let head = Head::of(&self.carry[..self.carry_len]);
            self.skip = total - self.carry_len;
            self.carry_len = 0;
            return (used, Step::TooLong(head));
        }
        let n = (total - self.carry_len).min(bytes.len() - used);
        self.carry[self.carry_len..self.carry_len + n].copy_from_slice(&bytes[used..used + n]);
        self.carry_len += n;
        used += n;
        if self.carry_len == total {
            self.carry_len = 0;
            return (used, Step::Carried(total));
        }
        (used, Step::Pending)
    }
}
