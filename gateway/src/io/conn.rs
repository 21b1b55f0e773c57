//! One connection, driven the same way under both runtimes.
//!
//! Per connection there are up to three tasks on the worker's single thread, sharing the
//! [`Session`] through `Rc<RefCell<_>>`:
//!
//! ```text
//! client reader ─┐                          ┌─▶ client socket (writes, in order, one at a time)
//! server reader ─┼─▶ Session::handle_* ─▶ flush
//! timer ─────────┘                          └─▶ server socket
//! ```
//!
//! Reads are never cancelled (an io_uring read in flight owns its buffer and may already have
//! consumed bytes), so each socket has its own long-lived reader task. Writes to one socket are
//! serialized by an async mutex that also holds that socket's reusable write buffer; a reader
//! that is flushing waits for the peer to drain — that is the back-pressure.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::record::event::{EntryKind, Payload, ResultEntry, SessionEnd, SessionStart};
use crate::record::{wall_ns, Entry, Recorder};
use crate::session::{CloseReason, Event, Peer, Session, SessionConfig};

/// Where a listener's sessions are recorded.
#[derive(Clone)]
pub(crate) struct RecordTo {
    /// The recorder.
    pub(crate) recorder: Recorder,
    /// `durability = "strict"`: nothing goes upstream before its statement record is on disk.
    pub(crate) strict: bool,
    /// The listener's name (for `session_start`).
    pub(crate) listener: Arc<str>,
}

/// A connected TCP socket with owned-buffer I/O (what io_uring needs; epoll adapts).
pub(crate) trait Stream: Sized + 'static {
    /// Reads into `buf`'s spare capacity, replacing its contents; returns bytes read (0 = EOF).
    fn read(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)>;
    /// Writes all of `buf`.
    fn write_all(&self, buf: Vec<u8>) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;
    /// Shuts both directions down, waking a pending read.
    fn shutdown(&self);
    /// Sends FIN but keeps reading (a lingering close).
    fn shutdown_write(&self);
    /// The buffer a reader starts with (`size` is a hint).
    fn read_buffer(size: usize) -> Vec<u8> {
        Vec::with_capacity(size)
    }
    /// Called with the read buffer once its bytes are handled: a driver that can lend buffers
    /// only for the duration of a read takes it back here (idle connections then hold none).
    fn recycle(buf: Vec<u8>) -> Vec<u8> {
        buf
    }
}

/// The runtime-specific pieces: connecting and spawning.
pub(crate) trait Runtime: 'static {
    /// The socket type.
    type Stream: Stream;
    /// Opens a TCP connection.
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>>;
    /// Spawns a task on the current worker thread.
    fn spawn(fut: impl Future<Output = ()> + 'static);
}

/// Read buffer sizes for drivers whose reads own a buffer while they wait (io_uring): small for
/// clients, larger upstream (result sets flow that way). Every idle connection holds both.
const CLIENT_READ_BUF: usize = 8 << 10;
const SERVER_READ_BUF: usize = 32 << 10;

struct Conn<R: Runtime> {
    session: RefCell<Session>,
    client: R::Stream,
    server: RefCell<Option<Rc<R::Stream>>>,
    client_writer: tokio::sync::Mutex<Vec<u8>>,
    server_writer: tokio::sync::Mutex<Vec<u8>>,
    /// Wakes the timer task when the deadline may have moved.
    timer: tokio::sync::Notify,
    /// The deadline the timer task sleeps until.
    armed: Cell<Option<Instant>>,
    done: Cell<bool>,
    upstream: SocketAddr,
    connect_timeout: Duration,
    peer: SocketAddr,
    record: Option<RecordTo>,
    /// Totals for `session_end`.
    totals: Cell<Totals>,
    /// Statement records being made durable (strict): nothing is written upstream meanwhile.
    holding_upstream: Cell<u32>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    statements: u64,
    refused: u64,
    rows: u64,
    bytes: u64,
}

/// Serves one accepted client connection until the session ends.
pub(crate) async fn serve<R: Runtime>(
    client: R::Stream,
    peer: SocketAddr,
    cfg: Arc<SessionConfig>,
    upstream: SocketAddr,
    id: u64,
    record: Option<RecordTo>,
) {
    let random: [u8; 20] = rand::random();
    let connect_timeout = cfg.limits.connect_timeout();
    let session = Session::new(cfg, id, peer, Instant::now(), random);
    let conn = Rc::new(Conn::<R> {
        session: RefCell::new(session),
        client,
        server: RefCell::new(None),
        client_writer: tokio::sync::Mutex::new(Vec::new()),
        server_writer: tokio::sync::Mutex::new(Vec::new()),
        timer: tokio::sync::Notify::new(),
        armed: Cell::new(None),
        done: Cell::new(false),
        upstream,
        connect_timeout,
        peer,
        record,
        totals: Cell::new(Totals::default()),
        holding_upstream: Cell::new(0),
    });
    R::spawn(timer_task(conn.clone()));
    after_input(&conn).await;
    client_reader(conn).await;
}

/// How long a write may make no progress before the session is closed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a closed session keeps reading (and discarding) what the client still sends, so
/// that its final ERR is not destroyed by a reset (closing a socket with unread data sends RST,
/// and the peer's kernel then drops what it had not yet read).
const LINGER: Duration = Duration::from_secs(2);

async fn client_reader<R: Runtime>(conn: Rc<Conn<R>>) {
    let mut buf = R::Stream::read_buffer(CLIENT_READ_BUF);
    client_loop(&conn, &mut buf).await;
    // Lingering close: the write side is already shut; drain until the client closes too, or
    // until the linger task shuts the socket (which ends this read).
    while let (Ok(1..), b) = conn.client.read(std::mem::take(&mut buf)).await {
        buf = R::Stream::recycle(b);
    }
    conn.client.shutdown();
}

async fn client_loop<R: Runtime>(conn: &Rc<Conn<R>>, buf: &mut Vec<u8>) {
    while !conn.done.get() {
        let (res, b) = conn.client.read(std::mem::take(buf)).await;
        *buf = b;
        match res {
            Ok(0) | Err(_) => {
                conn.session.borrow_mut().handle_client_eof(Instant::now());
                after_input(conn).await;
                return;
            }
            Ok(n) => {
                conn.session
                    .borrow_mut()
                    .handle_client(Instant::now(), &buf[..n]);
                *buf = R::Stream::recycle(std::mem::take(buf));
                after_input(conn).await;
            }
        }
    }
}

async fn server_reader<R: Runtime>(conn: Rc<Conn<R>>, server: Rc<R::Stream>) {
    let mut buf = R::Stream::read_buffer(SERVER_READ_BUF);
    while !conn.done.get() {
        let (res, b) = server.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => {
                conn.session.borrow_mut().handle_server_eof(Instant::now());
                after_input(&conn).await;
                break;
            }
            Ok(n) => {
                conn.session
                    .borrow_mut()
                    .handle_server(Instant::now(), &buf[..n]);
                buf = R::Stream::recycle(buf);
                after_input(&conn).await;
            }
        }
    }
}

async fn connect_task<R: Runtime>(conn: Rc<Conn<R>>) {
    let result = match tokio::time::timeout(conn.connect_timeout, R::connect(conn.upstream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {:?}", conn.connect_timeout)),
    };
    match result {
        Ok(stream) => {
            if conn.done.get() {
                stream.shutdown();
                return;
            }
            let stream = Rc::new(stream);
            *conn.server.borrow_mut() = Some(stream.clone());
            conn.session
                .borrow_mut()
                .handle_server_connected(Instant::now());
            R::spawn(server_reader(conn.clone(), stream));
        }
        Err(reason) => {
            conn.session
                .borrow_mut()
                .handle_server_unreachable(Instant::now(), &reason);
        }
    }
    after_input(&conn).await;
}

async fn timer_task<R: Runtime>(conn: Rc<Conn<R>>) {
    while !conn.done.get() {
        let deadline = conn.session.borrow().poll_timeout();
        conn.armed.set(deadline);
        match deadline {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {
                        // The session ignores a deadline that has moved on meanwhile.
                        conn.session.borrow_mut().handle_timeout(Instant::now());
                        after_input(&conn).await;
                    }
                    _ = conn.timer.notified() => {}
                }
            }
            None => conn.timer.notified().await,
        }
    }
}

/// Wakes the timer task only when the session's deadline moved earlier than the one the
/// timer sleeps for (idle deadlines move later on every command: no wake-up per statement).
fn rearm_timer<R: Runtime>(conn: &Conn<R>) {
    let wanted = conn.session.borrow().poll_timeout();
    let earlier = match (wanted, conn.armed.get()) {
        (Some(w), Some(a)) => w < a,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if earlier {
        conn.timer.notify_one();
    }
}

/// Drains the session's outputs after any input: events, then bytes, then the timer, then
/// closing.
async fn after_input<R: Runtime>(conn: &Rc<Conn<R>>) {
    loop {
        let event = conn.session.borrow_mut().poll_event();
        let Some(event) = event else { break };
        {
            let session = conn.session.borrow();
            session.config().events.on_event(session.id(), &event);
        }
        if conn.record.is_some() {
            record(conn, &event).await;
        }
        match event {
            Event::ConnectUpstream => R::spawn(connect_task(conn.clone())),
            Event::Closed(reason) => debug!(?reason, "session closed"),
            Event::Authenticated {
                identity,
                upstream_connection_id,
                ..
            } => info!(identity = %identity.name, upstream_connection_id, "session started"),
            Event::Command(record) => debug!(command = %record.command, "command done"),
            Event::ApprovalRequested { request_id, .. } => {
                debug!(request_id, "approval requested")
            }
            Event::Statement(..) => {}
        }
    }
    flush(conn, Peer::Client).await;
    flush(conn, Peer::Server).await;
    rearm_timer(conn);
    if conn.session.borrow().is_closed() && !conn.done.get() {
        // Let queued bytes (a final ERR) reach the sockets, then close both.
        flush(conn, Peer::Client).await;
        conn.done.set(true);
        // The client reader drains what is still in flight, then closes (see LINGER); a
        // client that neither sends nor closes is cut off after LINGER, waking that read.
        conn.client.shutdown_write();
        let lingering = conn.clone();
        R::spawn(async move {
            tokio::time::sleep(LINGER).await;
            lingering.client.shutdown();
        });
        if let Some(s) = conn.server.borrow().as_ref() {
            s.shutdown();
        }
        conn.timer.notify_one();
    }
}

async fn flush<R: Runtime>(conn: &Rc<Conn<R>>, to: Peer) {
    if to == Peer::Server && conn.holding_upstream.get() > 0 {
        // Strict recording: a statement record is being made durable; whoever waits for it
        // flushes afterwards.
        return;
    }
    let server = match to {
        Peer::Client => None,
        Peer::Server => match conn.server.borrow().clone() {
            Some(s) => Some(s),
            None => return,
        },
    };
    let writer = match to {
        Peer::Client => &conn.client_writer,
        Peer::Server => &conn.server_writer,
    };
    let mut guard = writer.lock().await;
    loop {
        let mut buf = std::mem::take(&mut *guard);
        if !conn.session.borrow_mut().poll_transmit(to, &mut buf) {
            *guard = buf;
            return;
        }
        // A peer that stops reading must not pin the session forever (MySQL's own
        // net_write_timeout plays this part for direct connections).
        let write = async {
            match &server {
                None => conn.client.write_all(buf).await,
                Some(s) => s.write_all(buf).await,
            }
        };
        let res = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok((res, buf)) => {
                *guard = buf;
                res
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer stopped reading",
            )),
        };
        if res.is_err() {
            let now = Instant::now();
            match to {
                Peer::Client => conn.session.borrow_mut().handle_client_eof(now),
                Peer::Server => conn.session.borrow_mut().handle_server_eof(now),
            }
            // Drop whatever else was queued for the dead socket.
            let mut sink = Vec::new();
            conn.session.borrow_mut().poll_transmit(to, &mut sink);
            return;
        }
    }
}

/// Hands one session event to the recorder: waits while its queue is full (back-pressure,
/// never a lost record) and, in strict mode, until an allowed statement's record is on disk.
async fn record<R: Runtime>(conn: &Rc<Conn<R>>, event: &Event) {
    let Some(to) = &conn.record else { return };
    let session = conn.session.borrow().id();
    let mut totals = conn.totals.get();
    let (entry, durable) = match event {
        Event::ConnectUpstream => return,
        Event::Authenticated {
            identity,
            auth,
            change_user,
            upstream_connection_id,
            tls,
        } => (
            Entry::ready(
                crate::record::now_ns(),
                Payload::SessionStart(SessionStart {
                    session,
                    identity: identity.name.clone(),
                    groups: identity.groups.clone(),
                    auth: auth.clone(),
                    client: conn.peer.to_string(),
                    original_dst: None,
                    listener: to.listener.to_string(),
                    target: conn.session.borrow().config().target_name.clone(),
                    tls: tls.clone(),
                    upstream_connection_id: *upstream_connection_id,
                    change_user: *change_user,
                }),
            ),
            false,
        ),
        Event::Statement(at, statement) => {
            totals.statements += 1;
            if statement.decision == "refuse" {
                totals.refused += 1;
            }
            let durable = to.strict && statement.decision == "allow";
            (
                Entry {
                    time_ns: wall_ns(*at),
                    what: EntryKind::Statement(statement.clone()),
                },
                durable,
            )
        }
        Event::Command(r) if r.refused_by_gate => return,
        Event::Command(r) => {
            totals.rows += r.outcome.rows;
            totals.bytes += r.response_bytes;
            if r.refused.is_some() {
                totals.refused += 1;
            }
            let result = ResultEntry {
                session,
                n: r.n,
                forwarded_ns: wall_ns(r.forwarded.unwrap_or(r.received)),
                first_byte_ns: r.first_byte.map(wall_ns),
                done_ns: wall_ns(r.finished),
                rows: r.outcome.rows,
                result_sets: r.outcome.result_sets,
                bytes: r.response_bytes,
                affected_rows: r.outcome.affected_rows,
                warnings: r.outcome.warnings,
                error: r.outcome.error.or(r.refused),
                prepared_stmt_id: r.outcome.prepared.map(|(id, _)| id),
                result_hash: r.result_hash,
                rows_captured: r.captured.clone(),
                capture_truncated: r.capture_truncated,
            };
            (
                Entry {
                    time_ns: wall_ns(r.finished),
                    what: EntryKind::Result(Box::new(result)),
                },
                false,
            )
        }
        Event::ApprovalRequested { request_id, n } => (
            Entry::ready(
                crate::record::now_ns(),
                Payload::Approval(crate::record::event::Approval {
                    session,
                    n: *n,
                    request_id: *request_id,
                }),
            ),
            false,
        ),
        Event::Closed(reason) => {
            let (reason, detail) = close_reason(reason);
            (
                Entry::ready(
                    crate::record::now_ns(),
                    Payload::SessionEnd(SessionEnd {
                        session,
                        reason: reason.into(),
                        detail,
                        statements: totals.statements,
                        refused: totals.refused,
                        rows: totals.rows,
                        bytes: totals.bytes,
                    }),
                ),
                false,
            )
        }
    };
    conn.totals.set(totals);
    if durable {
        conn.holding_upstream.set(conn.holding_upstream.get() + 1);
        to.recorder.record_durable(entry).await;
        conn.holding_upstream.set(conn.holding_upstream.get() - 1);
    } else if let Err(entry) = to.recorder.try_record(entry) {
        to.recorder.record(entry).await;
    }
}

/// `session_end`'s reason and detail.
fn close_reason(reason: &CloseReason) -> (&'static str, Option<String>) {
    match reason {
        CloseReason::ClientQuit => ("client_quit", None),
        CloseReason::ClientGone => ("client_gone", None),
        CloseReason::UpstreamGone => ("upstream_gone", None),
        CloseReason::UpstreamUnavailable(why) => ("upstream_unavailable", Some(why.clone())),
        CloseReason::AuthFailed => ("auth_failed", None),
        CloseReason::Timeout(what) => ("timeout", Some((*what).to_owned())),
        CloseReason::ProtocolError(why) => ("protocol_error", Some(why.clone())),
        CloseReason::UpstreamProtocolError(why) => ("upstream_protocol_error", Some(why.clone())),
    }
}
