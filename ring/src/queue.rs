//! The queue: the header and slots of a mapped ring, and [`RingView`], the
//! producers' side (claim a slot, copy the record, publish) and the pop the
//! consumer uses (see the crate docs for the protocol).

use std::io;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{
    ring_len, EventKind, EventRecord, FLAG_CONSUMER_ATTACHED, HEADER_SIZE, LABEL_CAPACITY, MAGIC,
    MAX_CAPACITY, MIN_CAPACITY, NAME_CAPACITY, ORIGIN_CAPACITY, SLOT_SIZE, VERSION,
};

#[repr(C)]
pub(crate) struct Header {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) slot_size: u32,
    pub(crate) capacity: u64,
    pub(crate) total_len: u64,
    pub(crate) creator_pid: u32,
    pub(crate) flags: AtomicU32,
    pub(crate) consumer_pid: AtomicU32,
    pub(crate) _pad0: [u8; 20],
    pub(crate) enqueue_pos: AtomicU64,
    pub(crate) _pad1: [u8; 56],
    pub(crate) dequeue_pos: AtomicU64,
    pub(crate) _pad2: [u8; 56],
    pub(crate) lost: AtomicU64,
    pub(crate) stalled: AtomicU32,
    pub(crate) _pad3: [u8; 52],
}

#[repr(C)]
pub(crate) struct Slot {
    /// The Vyukov turn minus the slot's index (see the module docs).
    pub(crate) turn: AtomicU64,
    pub(crate) record: EventRecord,
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_SIZE);
const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_SIZE);
const _: () = assert!(std::mem::offset_of!(Header, enqueue_pos) == 64);
const _: () = assert!(std::mem::offset_of!(Header, dequeue_pos) == 128);
const _: () = assert!(std::mem::offset_of!(Header, lost) == 192);

/// Why a ring could not be created, opened or attached.
#[derive(Debug)]
pub enum RingError {
    Io { path: PathBuf, error: io::Error },
    TooSmall { len: usize },
    BadMagic { found: u64 },
    BadVersion { found: u32 },
    BadLayout { reason: &'static str },
    AlreadyConsumed { pid: u32 },
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            RingError::TooSmall { len } => write!(
                f,
                "file is {len} bytes, too small for a frontrun ring (header alone is {HEADER_SIZE})"
            ),
            RingError::BadMagic { found } => {
                write!(f, "not a frontrun ring (magic {found:#018x})")
            }
            RingError::BadVersion { found } => write!(
                f,
                "ring layout version {found}, this build reads version {VERSION}; \
                 use the library and engine of the same frontrun build"
            ),
            RingError::BadLayout { reason } => write!(f, "corrupt ring header: {reason}"),
            RingError::AlreadyConsumed { pid } => write!(
                f,
                "the ring already has a consumer (pid {pid}); only one engine may drain it"
            ),
        }
    }
}

impl std::error::Error for RingError {}

/// Outcome of [`RingView::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored under this sequence number.
    Pushed(u64),
    /// The ring stayed full (or lost its consumer); counted in `lost`.
    Lost,
}

/// A validated ring somewhere in memory: the producer side, and the raw
/// operations the [`Consumer`](crate::Consumer) builds on. It is a plain pointer, so it is
/// `Copy` and costs nothing to rebuild from a stored base address.
#[derive(Clone, Copy, Debug)]
pub struct RingView {
    pub(crate) base: NonNull<u8>,
    pub(crate) mask: u64,
}

// SAFETY: every shared field is accessed atomically, and slot payloads are
// handed over through the turn word with release/acquire ordering.
unsafe impl Send for RingView {}
unsafe impl Sync for RingView {}

impl RingView {
    /// Write a fresh header for a ring of `capacity` slots at `base`.
    ///
    /// # Safety
    /// `base` must be 64-byte aligned, writable for `ring_len(capacity)`
    /// bytes, zero-filled (a new mapping of a truncated file is), and not yet
    /// visible to any other party.
    pub unsafe fn initialize(base: *mut u8, capacity: u64, creator_pid: u32) -> RingView {
        debug_assert!(capacity.is_power_of_two());
        let header = base as *mut Header;
        std::ptr::addr_of_mut!((*header).version).write(VERSION);
        std::ptr::addr_of_mut!((*header).slot_size).write(SLOT_SIZE as u32);
        std::ptr::addr_of_mut!((*header).capacity).write(capacity);
        std::ptr::addr_of_mut!((*header).total_len).write(ring_len(capacity) as u64);
        std::ptr::addr_of_mut!((*header).creator_pid).write(creator_pid);
        // The magic goes last: a reader that sees it sees a complete header.
        fence(Ordering::Release);
        std::ptr::addr_of_mut!((*header).magic).write(MAGIC);
        RingView {
            base: NonNull::new_unchecked(base),
            mask: capacity - 1,
        }
    }

    /// Check the header of `len` mapped bytes at `base`.
    ///
    /// # Safety
    /// `base` must point to `len` readable and writable bytes that stay
    /// mapped for as long as the returned view (or copies of it) is used.
    pub unsafe fn validate(base: *mut u8, len: usize) -> Result<RingView, RingError> {
        if len < HEADER_SIZE {
            return Err(RingError::TooSmall { len });
        }
        let header = &*(base as *const Header);
        let magic = std::ptr::read_volatile(&header.magic);
        if magic != MAGIC {
            return Err(RingError::BadMagic { found: magic });
        }
        fence(Ordering::Acquire);
        if header.version != VERSION {
            return Err(RingError::BadVersion {
                found: header.version,
            });
        }
        if header.slot_size as usize != SLOT_SIZE {
            return Err(RingError::BadLayout {
                reason: "slot size differs from this build's",
            });
        }
        let cap = header.capacity;
        if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
            return Err(RingError::BadLayout {
                reason: "capacity is not a power of two in the allowed range",
            });
        }
        if header.total_len != ring_len(cap) as u64 || len != ring_len(cap) {
            return Err(RingError::BadLayout {
                reason: "file size does not match the capacity in the header",
            });
        }
        Ok(RingView {
            base: NonNull::new_unchecked(base),
            mask: cap - 1,
        })
    }

    /// Rebuild a view from a base address that [`RingView::validate`] or
    /// [`RingView::initialize`] accepted before.
    ///
    /// # Safety
    /// As for `validate`, and the header must have been validated.
    #[inline]
    pub unsafe fn from_validated(base: NonNull<u8>) -> RingView {
        let cap = (*(base.as_ptr() as *const Header)).capacity;
        RingView {
            base,
            mask: cap - 1,
        }
    }

    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: validated at construction.
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    #[inline]
    pub(crate) fn slot(&self, pos: u64) -> *mut Slot {
        let index = (pos & self.mask) as usize;
        // SAFETY: index < capacity and the mapping holds capacity slots.
        unsafe { self.base.as_ptr().add(HEADER_SIZE + index * SLOT_SIZE) as *mut Slot }
    }

    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    pub fn creator_pid(&self) -> u32 {
        self.header().creator_pid
    }

    #[inline]
    pub fn flags(&self) -> u32 {
        self.header().flags.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn consumer_attached(&self) -> bool {
        self.flags() & FLAG_CONSUMER_ATTACHED != 0
    }

    pub fn lost(&self) -> u64 {
        self.header().lost.load(Ordering::Relaxed)
    }

    /// Sequence number the next pushed event will get.
    pub fn next_seq(&self) -> u64 {
        self.header().enqueue_pos.load(Ordering::Relaxed)
    }

    /// Store `record` under a fresh sequence number if a slot is free now.
    /// None when there is no room, and when the consumer gave up waiting
    /// for this producer's slot and took it back (see [`Consumer::pop`](crate::Consumer::pop);
    /// the consumer counted the event as lost).
    #[inline]
    pub fn try_push(&self, record: &EventRecord) -> Option<u64> {
        match self.attempt(record) {
            Attempt::Stored(seq) => Some(seq),
            Attempt::Full | Attempt::TakenBack => None,
        }
    }

    /// One try at storing `record`. A producer owns ticket `pos` once it
    /// has named itself in the slot's claim word (one compare-exchange of
    /// pid and lap); `enqueue_pos` only follows, moved on by the owner or
    /// by any producer that finds the slot named. So a slot below
    /// `enqueue_pos` always names its producer, whenever that producer is
    /// killed, and the consumer can tell a dead claimer from a slow one.
    #[inline]
    pub(crate) fn attempt(&self, record: &EventRecord) -> Attempt {
        let header = self.header();
        let mut pos = header.enqueue_pos.load(Ordering::Acquire);
        loop {
            let slot = self.slot(pos);
            let index = pos & self.mask;
            // SAFETY: slot points into the mapping; turn is atomic.
            let turn = unsafe { (*slot).turn.load(Ordering::Acquire) }.wrapping_add(index);
            let diff = turn.wrapping_sub(pos) as i64;
            if diff < 0 {
                return Attempt::Full;
            }
            // SAFETY: as above; the claim word is atomic.
            let dst = unsafe { std::ptr::addr_of_mut!((*slot).record) };
            let word = unsafe { claim_word(dst) };
            let seen = word.load(Ordering::Acquire);
            // A slot already used this lap (`diff > 0`), or named for this
            // ticket or a later one: `pos` is taken, try the counter's.
            let ahead = (seen as u32).wrapping_sub(lap_of(pos)) as i32;
            if diff > 0 || ahead >= 0 {
                if diff == 0 && ahead == 0 {
                    // Its owner may not have moved the counter on yet.
                    let _ = header.enqueue_pos.compare_exchange(
                        pos,
                        pos + 1,
                        Ordering::Release,
                        Ordering::Relaxed,
                    );
                }
                pos = header.enqueue_pos.load(Ordering::Acquire);
                continue;
            }
            if word
                .compare_exchange(
                    seen,
                    claim_value(pos, record.pid),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                continue;
            }
            let _ = header.enqueue_pos.compare_exchange(
                pos,
                pos + 1,
                Ordering::Release,
                Ordering::Relaxed,
            );
            // SAFETY: the claim gives this producer the slot until it
            // publishes the next turn (or the consumer takes it back).
            unsafe {
                write_used_part(dst, record);
                // A compare-exchange, not a store: the consumer may have
                // taken the slot back meanwhile.
                if (*slot)
                    .turn
                    .compare_exchange(
                        pos.wrapping_sub(index),
                        (pos + 1).wrapping_sub(index),
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    return Attempt::TakenBack;
                }
            }
            return Attempt::Stored(pos);
        }
    }

    /// Store `record`, waiting at most `max_wait` for room. An event that
    /// finds no room in time is counted in the header's `lost` counter, and
    /// until the consumer next takes an event, later producers do not wait
    /// (so a ring without a draining consumer costs one wait, not one per
    /// event). Waiting also stops when the consumer detaches.
    pub fn push(&self, record: &EventRecord, max_wait: Duration) -> PushOutcome {
        match self.attempt(record) {
            Attempt::Stored(seq) => return PushOutcome::Pushed(seq),
            // Already counted by the consumer.
            Attempt::TakenBack => return PushOutcome::Lost,
            Attempt::Full => {}
        }
        let header = self.header();
        if header.stalled.load(Ordering::Relaxed) == 0 && !max_wait.is_zero() {
            let deadline = Instant::now() + max_wait;
            let mut spins = 0u32;
            loop {
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                spins = spins.saturating_add(1);
                match self.attempt(record) {
                    Attempt::Stored(seq) => return PushOutcome::Pushed(seq),
                    Attempt::TakenBack => return PushOutcome::Lost,
                    Attempt::Full => {}
                }
                if !self.consumer_attached()
                    || header.stalled.load(Ordering::Relaxed) != 0
                    || Instant::now() >= deadline
                {
                    break;
                }
            }
            header.stalled.store(1, Ordering::Relaxed);
        }
        header.lost.fetch_add(1, Ordering::Relaxed);
        PushOutcome::Lost
    }

    /// Take the oldest published record. Only one party may call this at a
    /// time (the ring is single-consumer); [`Consumer`](crate::Consumer) guarantees it.
    pub(crate) fn pop(&self) -> Option<EventRecord> {
        let header = self.header();
        let pos = header.dequeue_pos.load(Ordering::Relaxed);
        let slot = self.slot(pos);
        let index = pos & self.mask;
        // SAFETY: slot points into the mapping; turn is atomic.
        let turn = unsafe { (*slot).turn.load(Ordering::Acquire) }.wrapping_add(index);
        if turn != pos + 1 {
            return None;
        }
        // SAFETY: the turn says the record is published and not reused
        // until this consumer hands the slot back below.
        let mut record = unsafe { std::ptr::addr_of!((*slot).record).read() };
        // The first word held the claim; the sequence number is the ticket.
        record.seq = pos;
        unsafe {
            (*slot)
                .turn
                .store((pos + self.mask + 1).wrapping_sub(index), Ordering::Release);
        }
        header.dequeue_pos.store(pos + 1, Ordering::Release);
        if header.stalled.load(Ordering::Relaxed) != 0 {
            header.stalled.store(0, Ordering::Relaxed);
        }
        Some(record)
    }

    /// When the oldest slot is claimed (its ticket handed out) but not yet
    /// published: its sequence number and, when the producer got as far as
    /// recording it, the producer's pid. Consumer side only.
    pub(crate) fn unpublished_claim(&self) -> Option<(u64, Option<u32>)> {
        let header = self.header();
        let pos = header.dequeue_pos.load(Ordering::Relaxed);
        if header.enqueue_pos.load(Ordering::Acquire) <= pos {
            return None;
        }
        let slot = self.slot(pos);
        let index = pos & self.mask;
        // SAFETY: slot points into the mapping; the claim words are atomic.
        unsafe {
            let turn = (*slot).turn.load(Ordering::Acquire).wrapping_add(index);
            if turn != pos {
                return None;
            }
            let record = std::ptr::addr_of_mut!((*slot).record);
            let claimer = claimer_of(claim_word(record).load(Ordering::Acquire), pos);
            Some((pos, claimer))
        }
    }

    /// Give up on the unpublished slot `pos`: hand it to the next lap as a
    /// pop would, and count its event as lost. False when its producer
    /// published it after all (then it is popped as usual).
    pub(crate) fn take_back(&self, pos: u64) -> bool {
        let header = self.header();
        let slot = self.slot(pos);
        let index = pos & self.mask;
        // SAFETY: slot points into the mapping; turn is atomic.
        let taken = unsafe {
            (*slot).turn.compare_exchange(
                pos.wrapping_sub(index),
                (pos + self.mask + 1).wrapping_sub(index),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
        };
        if taken.is_err() {
            return false;
        }
        header.dequeue_pos.store(pos + 1, Ordering::Release);
        header.lost.fetch_add(1, Ordering::Relaxed);
        if header.stalled.load(Ordering::Relaxed) != 0 {
            header.stalled.store(0, Ordering::Relaxed);
        }
        true
    }
}

/// Copy the fixed fields and the used bytes of the name and origin (and,
/// for a protocol event, its fields and the used bytes of its label): the
/// rest of the slot keeps whatever an earlier event left there, which the
/// lengths make invisible. Copying less moves fewer cache lines from the
/// consumer's core to the producer's.
///
/// # Safety
/// `dst` must be a slot record this producer owns.
#[inline(always)]
pub(crate) unsafe fn write_used_part(dst: *mut EventRecord, record: &EventRecord) {
    // `seq` is the claim word, named atomically before this.
    const TIME: usize = std::mem::offset_of!(EventRecord, time_ns);
    const FIXED: usize = std::mem::offset_of!(EventRecord, name);
    const ORIGIN: usize = std::mem::offset_of!(EventRecord, origin);
    let src = record as *const EventRecord as *const u8;
    let dst = dst as *mut u8;
    std::ptr::copy_nonoverlapping(src.add(TIME), dst.add(TIME), FIXED - TIME);
    let name = usize::from(record.name_len).min(NAME_CAPACITY);
    std::ptr::copy_nonoverlapping(src.add(FIXED), dst.add(FIXED), name);
    let origin = usize::from(record.origin_len).min(ORIGIN_CAPACITY);
    std::ptr::copy_nonoverlapping(src.add(ORIGIN), dst.add(ORIGIN), origin);
    if record.kind == EventKind::DbAccess as u8 {
        const DB: usize = std::mem::offset_of!(EventRecord, row);
        const LABEL: usize = std::mem::offset_of!(EventRecord, label);
        std::ptr::copy_nonoverlapping(src.add(DB), dst.add(DB), LABEL - DB);
        let label = usize::from(record.label_len).min(LABEL_CAPACITY);
        std::ptr::copy_nonoverlapping(src.add(LABEL), dst.add(LABEL), label);
    }
}

const _: () = assert!(std::mem::offset_of!(EventRecord, seq) == 0);

/// The first word of a slot's record (its `seq` field) as the atomic word
/// of the claim. While the slot is claimed it holds who claimed it:
/// `(pid << 32) | low 32 bits of (ticket + 1)`. [`RingView::pop`] puts the
/// sequence number back in its place.
///
/// # Safety
/// `record` must point to a slot's record in the mapping (8-byte aligned:
/// slots are multiples of 8 bytes after a 256-byte header).
#[inline(always)]
pub(crate) unsafe fn claim_word<'a>(record: *mut EventRecord) -> &'a AtomicU64 {
    AtomicU64::from_ptr(std::ptr::addr_of_mut!((*record).seq))
}

/// The claim word's lap part for ticket `pos`. One more than the ticket,
/// so that the zeroes of a new ring read as the lap before the first.
#[inline(always)]
fn lap_of(pos: u64) -> u32 {
    pos.wrapping_add(1) as u32
}

/// The claim word a producer holding ticket `pos` stores.
#[inline(always)]
pub(crate) fn claim_value(pos: u64, pid: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(lap_of(pos))
}

/// The producer's pid when `claim` is the claim of ticket `pos` (None when
/// it is an earlier lap's, or names pid 0: a record made without a pid).
#[inline(always)]
pub(crate) fn claimer_of(claim: u64, pos: u64) -> Option<u32> {
    (claim as u32 == lap_of(pos))
        .then_some((claim >> 32) as u32)
        .filter(|&pid| pid != 0)
}

/// What one attempt to store an event came to.
pub(crate) enum Attempt {
    Stored(u64),
    Full,
    /// The ticket was taken, but the consumer gave up waiting for the slot
    /// and took it back before the record was published.
    TakenBack,
}
