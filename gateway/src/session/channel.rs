//! One side of a session's transport: plaintext, or TLS driven sans-IO through rustls.
//!
//! Bytes from the socket go in with [`Channel::feed`] and come out as plaintext in
//! [`Channel::inbound`]; plaintext to send goes in with [`Channel::send`] and leaves, encrypted
//! when TLS is on, through [`Channel::take_outbound`]. rustls never touches a socket here.

use std::io::{Read, Write};

/// Why a channel failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// TLS failed (bad record, handshake failure, certificate rejected).
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// A byte pipe that may be wrapped in TLS.
#[derive(Default)]
pub(crate) struct Channel {
    tls: Option<Box<rustls::Connection>>,
    /// Plaintext received and not yet consumed.
    pub(crate) inbound: Vec<u8>,
    /// Bytes ready for the socket.
    outbound: Vec<u8>,
    /// The peer sent a TLS close_notify.
    pub(crate) closed: bool,
}

impl Channel {
    /// Wraps the channel in TLS from now on. Bytes already buffered are plaintext that
    /// preceded the upgrade and must be empty: anything else is a protocol violation the
    /// caller reports.
    pub(crate) fn start_tls(&mut self, mut conn: rustls::Connection) {
        // The session bounds what it queues (back-pressure happens in the driver); rustls's own
        // 64 KiB cap on buffered plaintext would make large responses fail.
        conn.set_buffer_limit(None);
        self.tls = Some(Box::new(conn));
        self.flush_tls();
    }

    /// Whether TLS is on.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether a TLS handshake is still running.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Negotiated TLS version and cipher suite, for the record.
    pub(crate) fn tls_summary(&self) -> Option<String> {
        let t = self.tls.as_ref()?;
        Some(format!(
            "{:?} {:?}",
            t.protocol_version()?,
            t.negotiated_cipher_suite()?.suite()
        ))
    }

    /// Whether bytes can be parsed straight from the socket's buffer (no TLS, nothing
    /// buffered).
    pub(crate) fn is_plain_and_empty(&self) -> bool {
        self.tls.is_none() && self.inbound.is_empty()
    }

    /// Takes bytes from the socket.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), ChannelError> {
        let Some(tls) = self.tls.as_mut() else {
            self.inbound.extend_from_slice(data);
            return Ok(());
        };
        while !data.is_empty() {
            // read_tls takes at most one buffer's worth at a time; loop until all is taken.
            let n = tls
                .read_tls(&mut data)
                .expect("reading from a slice cannot fail");
            if n == 0 {
                break;
            }
            let state = match tls.process_new_packets() {
                Ok(s) => s,
                Err(e) => {
                    // Let rustls send its alert before the caller closes.
                    let _ = tls.write_tls(&mut self.outbound);
                    return Err(e.into());
                }
            };
            let want = state.plaintext_bytes_to_read();
            if want > 0 {
                let start = self.inbound.len();
                self.inbound.resize(start + want, 0);
                let got = tls.reader().read(&mut self.inbound[start..]).unwrap_or(0);
                self.inbound.truncate(start + got);
            }
            if state.peer_has_closed() {
                self.closed = true;
            }
        }
        self.flush_tls();
        Ok(())
    }

    /// Queues plaintext for the peer.
    pub(crate) fn send(&mut self, plaintext: &[u8]) {
        match self.tls.as_mut() {
            None => self.outbound.extend_from_slice(plaintext),
            Some(tls) => {
                // Cannot fail without a buffer limit; if it ever did, the peer would see a
                // truncated stream and the session's sequence checks would end it.
                if let Err(e) = tls.writer().write_all(plaintext) {
                    tracing::error!(error = %e, "TLS write failed");
                }
                self.flush_tls();
            }
        }
    }

    /// Gives direct access to the outbound buffer for in-place framing (plaintext only).
    /// Falls back to a scratch buffer and [`Channel::send`] when TLS is on.
    pub(crate) fn send_with(&mut self, scratch: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
        if self.tls.is_none() {
            fill(&mut self.outbound);
        } else {
            scratch.clear();
            fill(scratch);
            self.send(scratch);
        }
    }

    /// Sends a TLS close_notify, if TLS is on.
    pub(crate) fn close(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            self.flush_tls();
        }
    }

    fn flush_tls(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            while tls.wants_write() {
                if tls.write_tls(&mut self.outbound).unwrap_or(0) == 0 {
                    break;
                }
            }
        }
    }

    /// Bytes waiting for the socket.
    pub(crate) fn pending(&self) -> usize {
        self.outbound.len()
    }

    /// Moves the bytes waiting for the socket into `buf` (swapping buffers, so both keep
    /// their allocations).
    pub(crate) fn take_outbound(&mut self, buf: &mut Vec<u8>) {
        buf.clear();
        std::mem::swap(buf, &mut self.outbound);
    }
}
