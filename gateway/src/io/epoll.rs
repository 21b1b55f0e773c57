//! The epoll driver: tokio, one current-thread runtime per worker.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use super::conn::{Runtime, Stream};

/// Size of a pooled read buffer.
const READ_BUF: usize = 64 << 10;
/// Buffers kept per worker; more are freed.
const MAX_POOLED: usize = 64;

thread_local! {
    /// Read buffers lent to readers only while they read: an idle connection holds none.
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// tokio as a [`Runtime`].
pub(crate) struct Epoll;

impl Stream for tokio::net::TcpStream {
    async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        // Wait for readiness holding no buffer; borrow one from the worker's pool only to read.
        let mut buf = buf;
        loop {
            if let Err(e) = self.readable().await {
                return (Err(e), buf);
            }
            if buf.capacity() == 0 {
                buf = POOL
                    .with(|p| p.borrow_mut().pop())
                    .unwrap_or_else(|| Vec::with_capacity(READ_BUF));
            }
            buf.clear();
            // Reads into the spare capacity: no zeroing of the buffer per read.
            match self.try_read_buf(&mut buf) {
                Ok(n) => return (Ok(n), buf),
                // Stale readiness (tokio clears it only now): give the buffer back before
                // waiting again, or every idle connection would end up holding one.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => buf = Self::recycle(buf),
                Err(e) => return (Err(e), buf),
            }
        }
    }

    fn read_buffer(_: usize) -> Vec<u8> {
        Vec::new()
    }

    fn recycle(buf: Vec<u8>) -> Vec<u8> {
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < MAX_POOLED {
                pool.push(buf);
            }
        });
        Vec::new()
    }

    async fn write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut at = 0;
        while at < buf.len() {
            if let Err(e) = self.writable().await {
                return (Err(e), buf);
            }
            match self.try_write(&buf[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    fn shutdown(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Both);
    }

    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write);
    }
}

impl Runtime for Epoll {
    type Stream = tokio::net::TcpStream;

    async fn connect(addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    fn spawn(fut: impl Future<Output = ()> + 'static) {
        tokio::task::spawn_local(fut);
    }
}

/// Runs one worker thread's accept loops until `shutdown` fires.
pub(crate) fn run_worker(
    listeners: Vec<(std::net::TcpListener, super::ListenerShared)>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut loops = Vec::new();
        for (std_listener, shared) in listeners {
            std_listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            let mut shutdown = shutdown.clone();
            loops.push(tokio::task::spawn_local(async move {
                loop {
                    tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((stream, peer)) => {
                                let _ = stream.set_nodelay(true);
                                super::accept::<Epoll>(stream, peer, &shared);
                            }
                            Err(e) => super::accept_error(&e).await,
                        },
                        _ = shutdown.changed() => break,
                    }
                }
            }));
        }
        for l in loops {
            let _ = l.await;
        }
        io::Result::Ok(())
    })
}
