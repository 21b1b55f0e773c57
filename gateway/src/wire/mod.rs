//! MySQL wire protocol.
