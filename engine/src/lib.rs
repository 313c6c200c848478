//! The frontrun engine: decides which thread runs next and which
//! interleavings remain to be explored.
//!
//! This crate knows nothing of Python or of the preload library's hooks; the
//! binding crate and the tests drive it through a plain Rust API, centred on
//! [`Explorer`]. The explorer implements optimal dynamic partial order
//! reduction (Abdulla et al., "Source Sets: A Foundation for Optimal Dynamic
//! Partial Order Reduction", JACM 2017): with no preemption bound it runs
//! exactly one execution per Mazurkiewicz trace. The `explorer` module's
//! source documents the algorithm and where it departs from the paper.
//!
//! One step is one visible operation of one thread: `schedule()` names the
//! thread, the thread reports what the operation touched, and the next
//! `schedule()` call ends the step.
//!
//! ```
//! use frontrun_engine::{AccessKind, Config, Explorer};
//!
//! // Two threads each run `tmp = x; x = tmp + 1`.
//! let mut explorer = Explorer::new(2, Config::default()).unwrap();
//! let mut lost_update = false;
//! while explorer.begin_execution().unwrap() {
//!     let (mut x, mut tmp, mut pc) = (0, [0; 2], [0; 2]);
//!     while let Some(t) = explorer.schedule().unwrap() {
//!         if pc[t] == 0 {
//!             explorer.access(t, 1, AccessKind::Read).unwrap();
//!             tmp[t] = x;
//!         } else {
//!             explorer.access(t, 1, AccessKind::Write).unwrap();
//!             x = tmp[t] + 1;
//!             explorer.finish(t).unwrap();
//!         }
//!         pc[t] += 1;
//!     }
//!     explorer.end_execution().unwrap();
//!     lost_update |= x == 1;
//! }
//! assert!(lost_update);
//! assert_eq!(explorer.stats().sleep_blocked, 0);
//! ```
//!
//! [`model`] holds a small model-program VM used by the tests and benches.
//!
//! The explorer's inputs from native code come from two sibling crates:
//! `frontrun-ring`, the shared-memory event ring that `libfrontrun_io.so`
//! writes into and the binding drains, and `frontrun-wire`, which turns
//! database requests seen on a socket into table, row and key accesses.
//! This crate depends on neither.

pub mod clock;
mod config;
mod error;
mod event;
mod explorer;
pub mod hash;
pub mod model;
mod report;
mod schedule;
mod wakeup;

pub use clock::VersionVec;
pub use config::Config;
pub use error::EngineError;
pub use event::{AccessKind, ObjectKey, ThreadId};
pub use explorer::{Explorer, MAX_THREADS};
pub use hash::{FastHasher, FastMap};
pub use report::{
    AbortReason, AccessInfo, Deadlock, ExecutionReport, Race, Stats, WaitEdge, WaitTarget,
};
pub use schedule::{format_schedule, parse_schedule, ScheduleParseError};
