//! The session index (being written).
