//! The frontrun engine: decides which thread runs next and which
//! interleavings remain to be explored.
//!
//! This crate knows nothing of Python or of the preload library's hooks; the
//! binding crate and the tests drive it through a plain Rust API.
pub mod ring;
pub mod wire;
