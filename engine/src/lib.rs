//! The frontrun engine: decides which thread runs next and which
//! interleavings remain to be explored.
//!
//! This crate knows nothing of Python or of the preload library's hooks; the
//! binding crate and the tests drive it through a plain Rust API, centred on
//! [`Explorer`]. See the `explorer` module for the algorithm and the papers
//! it follows.

pub mod clock;
mod config;
mod error;
mod event;
mod explorer;
pub mod model;
mod report;
mod wakeup;

pub use clock::VersionVec;
pub use config::Config;
pub use error::EngineError;
pub use event::{AccessKind, ObjectKey, ThreadId};
pub use explorer::{Explorer, MAX_THREADS};
pub use report::{
    AbortReason, AccessInfo, Deadlock, ExecutionReport, Race, Stats, WaitEdge, WaitTarget,
};
