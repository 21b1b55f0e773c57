//! The epoll driver: tokio, one current-thread runtime per worker.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use tokio::io::unix::AsyncFd;

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

/// A socket registered with tokio's reactor through `AsyncFd`, so that a short read can clear
/// the readiness it consumed. (`tokio::net::TcpStream` keeps readiness until a read fails with
/// `WouldBlock`, which costs one extra `recv` for every input.)
pub(crate) struct EpollStream(AsyncFd<std::net::TcpStream>);

impl EpollStream {
    fn new(stream: std::net::TcpStream) -> io::Result<EpollStream> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        Ok(EpollStream(register(stream)?))
    }
}

/// Registers a socket with the worker's reactor.
fn register<T: std::os::fd::AsRawFd>(io: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `T` is a std socket that owns its file descriptor and keeps it open, unchanged,
    // until it is dropped together with the `AsyncFd`.
    Ok(unsafe { AsyncFd::register(io) }?)
}

impl Stream for EpollStream {
    async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        // Wait for readiness holding no buffer; borrow one from the worker's pool only to read.
        let mut buf = buf;
        loop {
            let mut ready = match self.0.readable().await {
                Ok(r) => r,
                Err(e) => return (Err(e), buf),
            };
            if buf.is_empty() {
                // Pooled buffers stay initialized at full length: no zeroing per read.
                buf = POOL
                    .with(|p| p.borrow_mut().pop())
                    .unwrap_or_else(|| vec![0; READ_BUF]);
            }
            match ready.try_io(|fd| fd.get_ref().read(&mut buf)) {
                Ok(Ok(n)) => {
                    if n < buf.len() {
                        // Drained: wait for the next edge instead of trying again. A later
                        // arrival re-arms readiness (tokio compares event ticks).
                        ready.clear_ready();
                    }
                    return (Ok(n), buf);
                }
                Ok(Err(e)) => return (Err(e), buf),
                // Stale readiness (now cleared): give the buffer back before waiting again,
                // or every idle connection would end up holding one.
                Err(_would_block) => buf = Self::recycle(buf),
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
            let mut ready = match self.0.writable().await {
                Ok(r) => r,
                Err(e) => return (Err(e), buf),
            };
            match ready.try_io(|fd| fd.get_ref().write(&buf[at..])) {
                Ok(Ok(n)) => at += n,
                Ok(Err(e)) => return (Err(e), buf),
                Err(_would_block) => continue,
            }
        }
        (Ok(()), buf)
    }

    fn shutdown(&self) {
        let _ = self.0.get_ref().shutdown(std::net::Shutdown::Both);
    }

    fn shutdown_write(&self) {
        let _ = self.0.get_ref().shutdown(std::net::Shutdown::Write);
    }
}

impl Runtime for Epoll {
    type Stream = EpollStream;

    async fn connect(addr: SocketAddr) -> io::Result<EpollStream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        EpollStream::new(s.into_std()?)
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
            let listener = register(std_listener)?;
            let mut shutdown = shutdown.clone();
            loops.push(tokio::task::spawn_local(async move {
                loop {
                    tokio::select! {
                        ready = listener.readable() => {
                            let Ok(mut ready) = ready else { break };
                            match ready.try_io(|l| l.get_ref().accept()) {
                                Ok(Ok((stream, peer))) => match EpollStream::new(stream) {
                                    Ok(stream) => super::accept::<Epoll>(stream, peer, &shared),
                                    Err(e) => super::accept_error(&e).await,
                                },
                                Ok(Err(e)) => super::accept_error(&e).await,
                                Err(_would_block) => {}
                            }
                        }
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
