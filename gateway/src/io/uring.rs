//! The io_uring driver: tokio-uring, one runtime (and ring) per worker.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use super::conn::{Runtime, Stream};

/// tokio-uring as a [`Runtime`].
pub(crate) struct Uring;

impl Stream for tokio_uring::net::TcpStream {
    async fn read(&self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        buf.clear();
        let (res, buf) = tokio_uring::net::TcpStream::read(self, buf).await;
        (res, buf)
    }

    async fn write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        tokio_uring::net::TcpStream::write_all(self, buf).await
    }

    fn shutdown(&self) {
        let _ = tokio_uring::net::TcpStream::shutdown(self, std::net::Shutdown::Both);
    }

    fn shutdown_write(&self) {
        let _ = tokio_uring::net::TcpStream::shutdown(self, std::net::Shutdown::Write);
    }
}

impl Runtime for Uring {
    type Stream = tokio_uring::net::TcpStream;

    async fn connect(addr: SocketAddr) -> io::Result<tokio_uring::net::TcpStream> {
        let s = tokio_uring::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    fn spawn(fut: impl Future<Output = ()> + 'static) {
        tokio_uring::spawn(fut);
    }
}

/// Whether io_uring can be used here (kernel support, not blocked by seccomp or sysctl).
pub(crate) fn probe() -> Result<(), String> {
    std::panic::catch_unwind(|| {
        tokio_uring::builder().entries(8).start(async {
            // A real operation, not only ring setup: some sandboxes allow setup but fail ops.
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let addr = l.local_addr().map_err(|e| e.to_string())?;
            tokio_uring::net::TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    })
    .map_err(|_| "io_uring runtime could not start".to_owned())?
}

/// Runs one worker thread's accept loops until `shutdown` fires.
pub(crate) fn run_worker(
    listeners: Vec<(std::net::TcpListener, super::ListenerShared)>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> io::Result<()> {
    tokio_uring::builder().entries(1024).start(async move {
        let mut loops = Vec::new();
        for (std_listener, shared) in listeners {
            let listener = tokio_uring::net::TcpListener::from_std(std_listener);
            let mut shutdown = shutdown.clone();
            loops.push(tokio_uring::spawn(async move {
                loop {
                    tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((stream, peer)) => {
                                let _ = stream.set_nodelay(true);
                                super::accept::<Uring>(stream, peer, &shared);
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
