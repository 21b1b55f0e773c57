//! Just enough of the MySQL client protocol to misbehave on purpose: framing (3-byte LE length +
//! sequence id), the server greeting, a plaintext login (`mysql_native_password`, or the
//! `caching_sha2_password` fast path), `COM_QUERY`, and ERR packets. For the fault tests; real
//! clients are used everywhere else.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// `COM_QUERY`.
pub const COM_QUERY: u8 = 0x03;
/// `COM_QUIT`.
pub const COM_QUIT: u8 = 0x01;
/// `COM_PING`.
pub const COM_PING: u8 = 0x0e;

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_LONG_FLAG: u32 = 4;
const CLIENT_CONNECT_WITH_DB: u32 = 8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x20000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;

/// Reads one packet: `(sequence id, payload)`.
pub fn read_packet(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok((header[3], payload))
}

/// Writes one packet (payload must be < 16 MiB).
pub fn write_packet(w: &mut impl Write, seq: u8, payload: &[u8]) -> io::Result<()> {
    assert!(
        payload.len() < 0xff_ffff,
        "use write_frames for large payloads"
    );
    let len = (payload.len() as u32).to_le_bytes();
    let mut buf = Vec::with_capacity(payload.len() + 4);
    buf.extend_from_slice(&[len[0], len[1], len[2], seq]);
    buf.extend_from_slice(payload);
    w.write_all(&buf)?;
    w.flush()
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    /// Error code, e.g. 1045.
    pub code: u16,
    /// SQLSTATE, e.g. `28000` (empty if the packet had none).
    pub state: String,
    /// Human-readable message.
    pub message: String,
}

impl std::error::Error for ErrPacket {}

impl std::fmt::Display for ErrPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERROR {} ({}): {}", self.code, self.state, self.message)
    }
}

/// Parses an ERR packet (`None` if the payload is not one).
pub fn parse_err(payload: &[u8]) -> Option<ErrPacket> {
    if payload.len() < 3 || payload[0] != 0xff {
        return None;
    }
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    let rest = &payload[3..];
    let (state, message) = if rest.first() == Some(&b'#') && rest.len() >= 6 {
        (
            String::from_utf8_lossy(&rest[1..6]).into_owned(),
            &rest[6..],
        )
    } else {
        (String::new(), rest)
    };
    Some(ErrPacket {
        code,
        state,
        message: String::from_utf8_lossy(message).into_owned(),
    })
}

/// The server's initial handshake packet (protocol 10).
#[derive(Debug, Clone)]
pub struct Greeting {
    /// Server version string.
    pub version: String,
    /// Connection id.
    pub connection_id: u32,
    /// Capability flags (lower and upper 16 bits).
    pub capabilities: u32,
    /// The 20-byte scramble.
    pub scramble: Vec<u8>,
    /// The default authentication plugin.
    pub auth_plugin: String,
}

/// Parses the greeting (fails on an ERR packet, with its text).
pub fn parse_greeting(p: &[u8]) -> Result<Greeting> {
    if let Some(e) = parse_err(p) {
        return Err(anyhow::Error::new(e).context("the server sent an ERR instead of a greeting"));
    }
    let mut c = Cursor(p);
    if c.u8()? != 10 {
        bail!("not a protocol-10 greeting: {p:02x?}");
    }
    let version = c.nul_str()?;
    let connection_id = c.u32()?;
    let mut scramble = c.take(8)?.to_vec();
    c.u8()?; // filler
    let cap_lo = c.u16()? as u32;
    let _charset = c.u8()?;
    let _status = c.u16()?;
    let cap_hi = c.u16()? as u32;
    let data_len = c.u8()? as usize;
    c.take(10)?;
    let part2 = c.take(data_len.saturating_sub(8).max(13))?;
    scramble.extend_from_slice(&part2[..part2.len() - 1]);
    let auth_plugin = if c.0.is_empty() {
        "mysql_native_password".to_string()
    } else {
        c.nul_str()
            .unwrap_or_else(|_| String::from_utf8_lossy(c.0).into_owned())
    };
    Ok(Greeting {
        version,
        connection_id,
        capabilities: cap_lo | (cap_hi << 16),
        scramble,
        auth_plugin,
    })
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            bail!("truncated packet");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn nul_str(&mut self) -> Result<String> {
        let end = self.0.iter().position(|&b| b == 0).context("missing NUL")?;
        let s = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
pub fn native_scramble(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha1::digest(password.as_bytes());
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(&scramble[..20.min(scramble.len())]);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// `caching_sha2_password` fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble).
pub fn caching_sha2_scramble(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha256::digest(password.as_bytes());
    let h2 = Sha256::digest(h1);
    let mut h = Sha256::new();
    h.update(h2);
    h.update(&scramble[..20.min(scramble.len())]);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

fn auth_response(plugin: &str, password: &str, scramble: &[u8]) -> Result<Vec<u8>> {
    match plugin {
        "mysql_native_password" => Ok(native_scramble(password, scramble)),
        "caching_sha2_password" => Ok(caching_sha2_scramble(password, scramble)),
        other => bail!("raw client: unsupported auth plugin {other:?}"),
    }
}

/// A raw, logged-in (or not) client connection.
pub struct RawConn {
    /// The socket.
    pub stream: TcpStream,
    /// The greeting the server sent.
    pub greeting: Greeting,
}

impl RawConn {
    /// Connects and reads the greeting (read/write timeouts set to `timeout`).
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<RawConn> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let (_, p) = read_packet(&mut stream).context("reading the greeting")?;
        let greeting = parse_greeting(&p)?;
        Ok(RawConn { stream, greeting })
    }

    /// Connects and logs in without TLS. If the server refuses with an ERR packet (instead of
    /// the greeting or after the handshake response), the error holds the [`ErrPacket`]: see
    /// [`err_of`].
    pub fn login(
        addr: SocketAddr,
        user: &str,
        password: &str,
        db: Option<&str>,
        timeout: Duration,
    ) -> Result<RawConn> {
        let mut c = RawConn::connect(addr, timeout)?;
        let plugin = match c.greeting.auth_plugin.as_str() {
            p @ ("mysql_native_password" | "caching_sha2_password") => p.to_string(),
            _ => "mysql_native_password".to_string(),
        };
        let mut caps = CLIENT_LONG_PASSWORD
            | CLIENT_LONG_FLAG
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_MULTI_RESULTS
            | CLIENT_PLUGIN_AUTH;
        if db.is_some() {
            caps |= CLIENT_CONNECT_WITH_DB;
        }
        let mut p = Vec::new();
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45); // utf8mb4_general_ci
        p.extend_from_slice(&[0u8; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        let auth = auth_response(&plugin, password, &c.greeting.scramble)?;
        p.push(auth.len() as u8);
        p.extend_from_slice(&auth);
        if let Some(db) = db {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        write_packet(&mut c.stream, 1, &p)?;
        let mut plugin = plugin;
        loop {
            let (seq, p) = read_packet(&mut c.stream).context("reading the login result")?;
            match p.first() {
                Some(0x00) => return Ok(c),
                Some(0xff) => {
                    return Err(anyhow::Error::new(parse_err(&p).unwrap()).context("login refused"))
                }
                Some(0xfe) => {
                    // Auth switch: plugin name, NUL, new scramble.
                    let mut cur = Cursor(&p[1..]);
                    plugin = cur.nul_str()?;
                    let data = cur.0;
                    let data = data.strip_suffix(&[0]).unwrap_or(data);
                    let auth = auth_response(&plugin, password, data)?;
                    write_packet(&mut c.stream, seq.wrapping_add(1), &auth)?;
                }
                Some(0x01) if plugin == "caching_sha2_password" => match p.get(1) {
                    Some(0x03) => continue, // fast auth succeeded; OK follows
                    _ => bail!(
                        "caching_sha2_password full authentication (needs TLS or RSA) is not \
                         supported by the raw test client"
                    ),
                },
                _ => bail!("unexpected packet during login: {p:02x?}"),
            }
        }
    }

    /// Sends a command packet with the given sequence id (0 for a well-behaved client).
    pub fn send(&mut self, seq: u8, payload: &[u8]) -> io::Result<()> {
        write_packet(&mut self.stream, seq, payload)
    }

    /// Sends `COM_QUERY` with sequence id 0.
    pub fn query(&mut self, sql: &str) -> io::Result<()> {
        let mut p = vec![COM_QUERY];
        p.extend_from_slice(sql.as_bytes());
        self.send(0, &p)
    }

    /// Reads one packet.
    pub fn read(&mut self) -> io::Result<(u8, Vec<u8>)> {
        read_packet(&mut self.stream)
    }

    /// Reads packets until an OK, ERR or EOF-terminated result is complete; returns the first
    /// packet of the response (OK, ERR, or the column count) and the number of packets read.
    pub fn read_response(&mut self) -> Result<(Vec<u8>, usize)> {
        let (_, first) = self.read()?;
        match first.first() {
            Some(0x00) | Some(0xff) => return Ok((first, 1)),
            _ => {}
        }
        // Result set: columns, EOF, rows, EOF (no CLIENT_DEPRECATE_EOF requested).
        let mut n = 1;
        let mut eofs = 0;
        while eofs < 2 {
            let (_, p) = self.read()?;
            n += 1;
            if p.first() == Some(&0xff) {
                return Ok((p, n));
            }
            if p.first() == Some(&0xfe) && p.len() < 9 {
                eofs += 1;
            }
        }
        Ok((first, n))
    }
}

/// The ERR packet behind an error from this module, if the server sent one.
pub fn err_of(e: &anyhow::Error) -> Option<&ErrPacket> {
    e.downcast_ref::<ErrPacket>()
}

/// Reads until the peer closes the connection or `deadline` passes. Returns what arrived
/// (packets, parsed loosely) and whether the connection was closed (vs. still open).
pub fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<Vec<u8>>, bool) {
    let deadline = std::time::Instant::now() + within;
    let mut packets = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return (packets, false);
        }
        let _ = stream.set_read_timeout(Some(left));
        match read_packet(stream) {
            Ok((_, p)) => packets.push(p),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return (packets, false)
            }
            Err(_) => return (packets, true), // EOF, reset
        }
    }
}
