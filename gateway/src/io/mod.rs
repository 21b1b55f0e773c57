//! I/O drivers: thin loops that move bytes between sockets and the sans-IO [`crate::session`].
//!
//! Stub: replaced by the real drivers.

use std::net::SocketAddr;

use crate::config::{Config, IoMode};

/// The driver actually running (after `auto` resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// io_uring via tokio-uring.
    Uring,
    /// epoll via tokio.
    Epoll,
}

/// A running gateway: its listeners and worker threads.
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    driver: Driver,
}

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration cannot be used (e.g. certificate unreadable, secret missing).
    #[error("{0}")]
    Config(String),
}

/// Starts the gateway in background threads; returns once every listener is bound.
pub fn start(config: Config, mode: IoMode) -> Result<ServerHandle, StartError> {
    let _ = (config, mode);
    Err(StartError::Config("not implemented yet".into()))
}

impl ServerHandle {
    /// The bound address of each listener, in config order (port 0 resolved).
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
    /// The driver in use.
    pub fn driver(&self) -> Driver {
        self.driver
    }
    /// Stops accepting, closes every session and joins the worker threads.
    pub fn shutdown(self) {}
    /// Blocks until the gateway stops (a signal, or a fatal error).
    pub fn wait(self) {}
}
