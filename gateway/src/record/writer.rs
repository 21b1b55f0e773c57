//! The writer thread (being written).
