//! Fixed-capacity strings and the FNV-1a hash: the two building blocks that
//! let classification results live on the stack and in per-connection state
//! without touching the allocator.

use core::fmt::{self, Write as _};

/// Up to `N` bytes stored inline (`N` at most 255). Holds raw bytes; only
/// printable ASCII is ever put in one by this module's display paths, and
/// [`InlineStr::as_str`] degrades to `"?"` rather than fail otherwise.
#[derive(Clone, Copy)]
pub struct InlineStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> InlineStr<N> {
    pub const fn new() -> Self {
        InlineStr {
            len: 0,
            bytes: [0; N],
        }
    }

    /// The first `N` bytes of `b` (the rest is dropped).
    pub fn from_truncated(b: &[u8]) -> Self {
        let mut s = Self::new();
        let n = b.len().min(N).min(255);
        s.bytes[..n].copy_from_slice(&b[..n]);
        s.len = n as u8;
        s
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The contents as text; non-UTF-8 contents read as `"?"`.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len as usize >= N.min(255)
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends one byte; false (and nothing stored) when full.
    pub fn push(&mut self, b: u8) -> bool {
        if self.is_full() {
            return false;
        }
        self.bytes[self.len as usize] = b;
        self.len += 1;
        true
    }

    /// Appends as much of `b` as fits; false if anything was cut.
    pub fn push_str(&mut self, b: &[u8]) -> bool {
        for &c in b {
            if !self.push(c) {
                return false;
            }
        }
        true
    }

    pub fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.bytes[self.len as usize])
    }
}

/// Formatting into an `InlineStr` keeps what fits and reports an error
/// when something was cut.
impl<const N: usize> fmt::Write for InlineStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.push_str(s.as_bytes()) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

// Equality and hashing look at the contents only: bytes past `len` may hold
// leftovers from before a `clear`.
impl<const N: usize> PartialEq for InlineStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for InlineStr<N> {}

impl<const N: usize> core::hash::Hash for InlineStr<N> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As `String::from_utf8_lossy(..)` would print, without allocating.
        f.write_char('"')?;
        for chunk in self.as_bytes().utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '\'' {
                    f.write_char(c)?;
                } else {
                    write!(f, "{}", c.escape_debug())?;
                }
            }
            if !chunk.invalid().is_empty() {
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        f.write_char('"')
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            let c = if (0x20..0x7f).contains(&b) { b } else { b'?' };
            fmt::Write::write_char(f, c as char)?;
        }
        Ok(())
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Streaming 64-bit FNV-1a. Stable across platforms and releases, trivial to
/// reimplement in Python (`h ^= byte; h = (h * 0x100000001b3) % 2**64`,
/// starting from `0xcbf29ce484222325`), which is why the resource keys use
/// it. Writing formatted text into it (`fmt::Write`) hashes the text without
/// building a string.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(FNV_OFFSET)
    }
}

impl Fnv1a {
    pub fn new() -> Self {
        Self::default()
    }

    /// Continues a hash from the value [`Fnv1a::finish`] gave: FNV-1a's
    /// state is its output, so `resume(fnv1a64(a))` then `b` hashes `a`
    /// followed by `b`.
    pub const fn resume(state: u64) -> Self {
        Fnv1a(state)
    }

    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.0 ^= b as u64;
        self.0 = self.0.wrapping_mul(FNV_PRIME);
    }

    #[inline]
    pub fn bytes(&mut self, b: &[u8]) {
        for &c in b {
            self.byte(c);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Write for Fnv1a {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// FNV-1a of a byte string.
pub fn fnv1a64(b: &[u8]) -> u64 {
    let mut h = Fnv1a::new();
    h.bytes(b);
    h.finish()
}
