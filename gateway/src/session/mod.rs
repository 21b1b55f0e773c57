//! The per-connection session state machine.
