//! The MySQL wire protocol: framing, parsers and encoders.
//!
//! Parsers are nom `complete` parsers over a whole payload (framing has already made sure it is
//! all there) and borrow from the read buffer: no allocation per packet. Each is a plain
//! function, so a fuzzer can call it. Encoders append to a caller's `Vec<u8>` so buffers are
//! reused. This module does no I/O and keeps no state; capabilities negotiated for a connection
//! are passed in where the layout depends on them.

pub mod binary;
pub mod codec;
pub mod command;
pub mod consts;
pub mod frame;
pub mod handshake;
pub mod response;
pub mod resultset;

pub use consts::{CapabilityFlags, Command, ErrorCode, StatusFlags};

/// A packet that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named packet is malformed.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Framing failed.
    #[error(transparent)]
    Frame(#[from] frame::FrameError),
}
