//! The consumer: the one party that takes events out of a ring, and takes
//! back slots that dead producers claimed but never published.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use memmap2::MmapMut;

use crate::{
    map_ring_file, process_alive, EventRecord, RingError, RingView, FLAG_CONSUMER_ATTACHED,
    FLAG_MUTEX_EVENTS,
};

/// Options for [`Consumer::open`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsumerOptions {
    /// Ask producers for `pthread_mutex_*` events.
    pub mutex_events: bool,
}

/// How long the consumer waits at a claimed but unpublished slot before it
/// looks at the claimer (publishing takes a producer a few stores).
pub const CLAIM_CHECK_AFTER: Duration = Duration::from_millis(5);
/// How long the consumer waits at such a slot at most, when it cannot tell
/// that the claimer died (its process lives on without the thread, as after
/// `exec`; or the slot names no producer, which producers of this layout
/// never leave behind).
pub const CLAIM_GIVE_UP_AFTER: Duration = Duration::from_secs(2);

/// The engine's end of the ring: the only party that takes events out.
///
/// A producer killed (`SIGKILL`, a crash) between taking its ticket and
/// publishing its slot would leave the consumer waiting at that slot for
/// good, and every later event would pile up behind it until the ring
/// filled. So the consumer takes such a slot back and counts its event as
/// lost: at once when the pid the producer recorded in it is gone (or a
/// zombie), after [`CLAIM_GIVE_UP_AFTER`] when the producer lives. A slot
/// always names its producer, since taking a slot and naming oneself in it
/// are one compare-exchange (see [`RingView`]). A producer paused for the
/// whole bound finds its slot taken back when it publishes and drops its
/// event (already counted); should the ring have gone a full lap
/// meanwhile, its late copy can tear the newer record in that slot.
pub struct Consumer {
    pub(crate) _map: MmapMut,
    pub(crate) view: RingView,
    pub(crate) taken_back: u64,
    /// The ring file's device and inode: which ring this is, whatever
    /// address it is mapped at.
    pub(crate) ring_id: RingId,
    /// This ring may have an entry in [`STUCK`].
    pub(crate) may_be_stuck: bool,
}

/// The unpublished slot the consumers of this process wait at, per ring
/// (its file's device and inode): the slot's sequence number and since
/// when. Kept
/// for the process rather than per [`Consumer`]: explorations attach and
/// detach their consumer many times, and the wait must add up across them.
pub(crate) static STUCK: std::sync::Mutex<Vec<(RingId, u64, Instant)>> =
    std::sync::Mutex::new(Vec::new());

/// A ring file's device and inode.
pub(crate) type RingId = (u64, u64);

/// When a consumer of ring `base` first found slot `pos` unpublished
/// (None the first time); `pos` None forgets the ring's entry.
pub(crate) fn stuck_since(base: RingId, pos: Option<u64>) -> Option<Instant> {
    let mut stuck = STUCK.lock().unwrap_or_else(|p| p.into_inner());
    let entry = stuck.iter().position(|&(b, _, _)| b == base);
    match (pos, entry) {
        (None, Some(i)) => {
            stuck.swap_remove(i);
            None
        }
        (None, None) => None,
        (Some(pos), Some(i)) if stuck[i].1 == pos => Some(stuck[i].2),
        (Some(pos), Some(i)) => {
            stuck[i] = (base, pos, Instant::now());
            None
        }
        (Some(pos), None) => {
            stuck.push((base, pos, Instant::now()));
            None
        }
    }
}

impl Consumer {
    /// Map the ring at `path` and attach to it as its consumer.
    pub fn open(path: &Path, options: ConsumerOptions) -> Result<Consumer, RingError> {
        let (map, view) = map_ring_file(path)?;
        let header = view.header();
        let pid = std::process::id();
        if header
            .consumer_pid
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(RingError::AlreadyConsumed {
                pid: header.consumer_pid.load(Ordering::Relaxed),
            });
        }
        let mut set = FLAG_CONSUMER_ATTACHED;
        if options.mutex_events {
            set |= FLAG_MUTEX_EVENTS;
        }
        header.flags.fetch_or(set, Ordering::Release);
        let ring_id = std::fs::metadata(path)
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino())
            })
            .unwrap_or((0, view.base().as_ptr() as u64));
        Ok(Consumer {
            _map: map,
            view,
            taken_back: 0,
            ring_id,
            may_be_stuck: true,
        })
    }

    pub fn view(&self) -> RingView {
        self.view
    }

    pub fn capacity(&self) -> u64 {
        self.view.capacity()
    }

    /// Turn mutex events on or off for every producer.
    pub fn set_mutex_events(&self, on: bool) {
        let flags = &self.view.header().flags;
        if on {
            flags.fetch_or(FLAG_MUTEX_EVENTS, Ordering::Release);
        } else {
            flags.fetch_and(!FLAG_MUTEX_EVENTS, Ordering::Release);
        }
    }

    /// Events dropped so far because the ring stayed full. Report it: a
    /// non-zero count means the engine saw an incomplete history.
    pub fn lost(&self) -> u64 {
        self.view.lost()
    }

    /// Slots taken back from producers that never published them (see
    /// the type's docs); each is also counted in [`Consumer::lost`].
    pub fn taken_back(&self) -> u64 {
        self.taken_back
    }

    /// Take the oldest event, if one is published; first takes back the
    /// oldest slot when its producer died before publishing it.
    pub fn pop(&mut self) -> Option<EventRecord> {
        loop {
            if let Some(record) = self.view.pop() {
                return Some(record);
            }
            if !self.take_back_dead_claim() {
                return None;
            }
        }
    }

    /// True when the oldest slot was taken back.
    pub(crate) fn take_back_dead_claim(&mut self) -> bool {
        let base = self.ring_id;
        let Some((pos, claimer)) = self.view.unpublished_claim() else {
            if self.may_be_stuck {
                stuck_since(base, None);
                self.may_be_stuck = false;
            }
            return false;
        };
        self.may_be_stuck = true;
        let Some(since) = stuck_since(base, Some(pos)) else {
            return false;
        };
        let waited = since.elapsed();
        if waited < CLAIM_CHECK_AFTER {
            return false;
        }
        let dead = claimer.is_some_and(|pid| !process_alive(pid));
        if !dead && waited < CLAIM_GIVE_UP_AFTER {
            return false;
        }
        if !self.view.take_back(pos) {
            return false;
        }
        stuck_since(base, None);
        self.taken_back += 1;
        true
    }

    /// Take every event published so far, oldest first; returns how many.
    pub fn drain(&mut self, mut each: impl FnMut(&EventRecord)) -> usize {
        let mut n = 0;
        while let Some(record) = self.pop() {
            each(&record);
            n += 1;
        }
        n
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let header = self.view.header();
        // A copy made by fork is not the consumer: the parent still is.
        if header.consumer_pid.load(Ordering::Acquire) != std::process::id() {
            return;
        }
        header.flags.fetch_and(
            !(FLAG_CONSUMER_ATTACHED | FLAG_MUTEX_EVENTS),
            Ordering::Release,
        );
        header.consumer_pid.store(0, Ordering::Release);
    }
}
