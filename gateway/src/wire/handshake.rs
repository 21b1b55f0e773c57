//! Connection-phase packets: the server greeting, SSLRequest, the client's handshake response,
//! auth switches and extra auth data.
//!
//! ```text
//! HandshakeV10 := 0x0A server_version<NUL> connection_id:u32 auth_data_1[8] 0x00
//!                 caps_lo:u16 charset:u8 status:u16 caps_hi:u16 auth_data_len:u8
//!                 reserved[6] mariadb_caps:u32 auth_data_2[max(13, len-8)] auth_plugin<NUL>
//! SSLRequest   := caps:u32 max_packet:u32 charset:u8 reserved[19] mariadb_caps:u32   (32 bytes)
//! HandshakeResponse41 := SSLRequest-fields user<NUL> auth_response (lenenc | len:u8 | <NUL>)
//!                 [database<NUL>] [auth_plugin<NUL>] [attrs<lenenc>: (key<lenenc> value<lenenc>)*]
//! AuthSwitchRequest := 0xFE plugin<NUL> data
//! AuthMoreData      := 0x01 data
//! ```

use nom::bytes::complete::take;
use nom::number::complete::{le_u16, le_u32, le_u8};

use super::codec::{
    lenenc_bytes, lenenc_int, null_str, null_str_or_eof, optional, parse_all, put_lenenc_bytes,
    put_null_str, Res,
};
use super::consts::{CapabilityFlags, StatusFlags};
use super::Error;

/// The server's greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeV10<'a> {
    /// Server version string.
    pub server_version: &'a [u8],
    /// The server's connection (thread) id.
    pub connection_id: u32,
    /// First 8 bytes of the nonce.
    pub auth_data_1: &'a [u8],
    /// The rest of the nonce (its trailing NUL, when present, removed).
    pub auth_data_2: &'a [u8],
    /// Capabilities the server offers.
    pub capabilities: CapabilityFlags,
    /// Default collation id.
    pub charset: u8,
    /// Server status.
    pub status: StatusFlags,
    /// MariaDB extended capabilities (zero for MySQL servers).
    pub mariadb_capabilities: u32,
    /// Default auth plugin, if the server names one.
    pub auth_plugin: Option<&'a [u8]>,
}

impl HandshakeV10<'_> {
    /// The full nonce (usually 20 bytes).
    pub fn nonce(&self) -> Vec<u8> {
        [self.auth_data_1, self.auth_data_2].concat()
    }
}

/// Parses a HandshakeV10 payload.
pub fn parse_handshake_v10(payload: &[u8]) -> Result<HandshakeV10<'_>, Error> {
    parse_all("HandshakeV10", payload, handshake_v10)
}

fn handshake_v10(input: &[u8]) -> Res<'_, HandshakeV10<'_>> {
    let (input, _) = nom::bytes::complete::tag(&[10u8][..])(input)?;
    let (input, server_version) = null_str(input)?;
    let (input, connection_id) = le_u32(input)?;
    let (input, auth_data_1) = take(8usize)(input)?;
    let (input, _filler) = le_u8(input)?;
    let (input, caps_lo) = le_u16(input)?;
    let (input, charset) = le_u8(input)?;
    let (input, status) = le_u16(input)?;
    let (input, caps_hi) = le_u16(input)?;
    let capabilities =
        CapabilityFlags::from_bits_retain(u32::from(caps_lo) | u32::from(caps_hi) << 16);
    let (input, auth_data_len) = le_u8(input)?;
    let (input, _reserved) = take(6usize)(input)?;
    let (input, mariadb_capabilities) = le_u32(input)?;
    let part2_len = (usize::from(auth_data_len).saturating_sub(8)).max(13);
    let (input, mut auth_data_2) = take(part2_len.min(input.len()))(input)?;
    if let Some((0, head)) = auth_data_2.split_last() {
        auth_data_2 = head;
    }
    let (input, auth_plugin) = if capabilities.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
        let (i, p) = null_str_or_eof(input)?;
        (i, Some(p))
    } else {
        (input, None)
    };
    Ok((
        input,
        HandshakeV10 {
            server_version,
            connection_id,
            auth_data_1,
            auth_data_2,
            capabilities,
            charset,
            status: StatusFlags::from_bits_retain(status),
            mariadb_capabilities,
            auth_plugin,
        },
    ))
}

/// Appends a HandshakeV10 payload. `nonce` must be 20 bytes without NUL bytes.
pub fn encode_handshake_v10(out: &mut Vec<u8>, h: &HandshakeV10<'_>) {
    out.push(10);
    put_null_str(out, h.server_version);
    out.extend_from_slice(&h.connection_id.to_le_bytes());
    out.extend_from_slice(h.auth_data_1);
    out.push(0);
    let caps = h.capabilities.bits();
    out.extend_from_slice(&(caps as u16).to_le_bytes());
    out.push(h.charset);
    out.extend_from_slice(&h.status.bits().to_le_bytes());
    out.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    out.push((h.auth_data_1.len() + h.auth_data_2.len() + 1) as u8);
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&h.mariadb_capabilities.to_le_bytes());
    out.extend_from_slice(h.auth_data_2);
    out.push(0);
    if let Some(p) = h.auth_plugin {
        put_null_str(out, p);
    }
}

/// The client's handshake response (or, truncated to its first 32 bytes, an SSLRequest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse41<'a> {
    /// Capabilities the client asks for.
    pub capabilities: CapabilityFlags,
    /// Largest packet the client will send.
    pub max_packet_size: u32,
    /// Collation id of the connection.
    pub charset: u8,
    /// MariaDB extended capabilities.
    pub mariadb_capabilities: u32,
    /// User name.
    pub username: &'a [u8],
    /// Auth plugin response (scramble, token…).
    pub auth_response: &'a [u8],
    /// Initial default database.
    pub database: Option<&'a [u8]>,
    /// Auth plugin the response was made with.
    pub auth_plugin: Option<&'a [u8]>,
    /// Connection attributes, in order.
    pub connect_attrs: Vec<(&'a [u8], &'a [u8])>,
}

/// Length of an SSLRequest payload.
pub const SSL_REQUEST_LEN: usize = 32;

/// Parses the fixed 32-byte prefix shared by SSLRequest and HandshakeResponse41.
pub fn parse_ssl_request(payload: &[u8]) -> Result<HandshakeResponse41<'_>, Error> {
    parse_all("SSLRequest", payload, fixed_prefix)
}

fn fixed_prefix(input: &[u8]) -> Res<'_, HandshakeResponse41<'_>> {
    let (input, caps) = le_u32(input)?;
    let (input, max_packet_size) = le_u32(input)?;
    let (input, charset) = le_u8(input)?;
    let (input, _reserved) = take(19usize)(input)?;
    let (input, mariadb_capabilities) = le_u32(input)?;
    Ok((
        input,
        HandshakeResponse41 {
            capabilities: CapabilityFlags::from_bits_retain(caps),
            max_packet_size,
            charset,
            mariadb_capabilities,
            ..Default::default()
        },
    ))
}

/// Parses a HandshakeResponse41 payload.
pub fn parse_handshake_response(payload: &[u8]) -> Result<HandshakeResponse41<'_>, Error> {
    parse_all("HandshakeResponse41", payload, handshake_response)
}

fn handshake_response(input: &[u8]) -> Res<'_, HandshakeResponse41<'_>> {
    let (input, mut r) = fixed_prefix(input)?;
    if !r.capabilities.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Verify,
        )));
    }
    let caps = r.capabilities;
    let (input, username) = null_str(input)?;
    let (input, auth_response) =
        if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            lenenc_bytes(input)?
        } else if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
            let (i, n) = le_u8(input)?;
            take(n)(i)?
        } else {
            null_str(input)?
        };
    let with_db = caps.contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB);
    let (input, database) = optional(with_db, input, null_str_or_eof)?;
    let plugin_auth = caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH);
    let (input, auth_plugin) = optional(plugin_auth, input, null_str_or_eof)?;
    let with_attrs = caps.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS);
    let (input, connect_attrs) = optional(with_attrs, input, connect_attrs)?;
    let connect_attrs = connect_attrs.unwrap_or_default();
    r.username = username;
    r.auth_response = auth_response;
    r.database = database;
    r.auth_plugin = auth_plugin;
    r.connect_attrs = connect_attrs;
    Ok((input, r))
}

/// Appends the 32-byte SSLRequest payload (also the prefix of a handshake response).
pub fn encode_ssl_request(out: &mut Vec<u8>, r: &HandshakeResponse41<'_>) {
    out.extend_from_slice(&r.capabilities.bits().to_le_bytes());
    out.extend_from_slice(&r.max_packet_size.to_le_bytes());
    out.push(r.charset);
    out.extend_from_slice(&[0; 19]);
    out.extend_from_slice(&r.mariadb_capabilities.to_le_bytes());
}

/// Appends a HandshakeResponse41 payload, laid out according to `r.capabilities`.
pub fn encode_handshake_response(out: &mut Vec<u8>, r: &HandshakeResponse41<'_>) {
    encode_ssl_request(out, r);
    let caps = r.capabilities;
    put_null_str(out, r.username);
    if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
        put_lenenc_bytes(out, r.auth_response);
    } else {
        out.push(r.auth_response.len() as u8);
        out.extend_from_slice(r.auth_response);
    }
    if caps.contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB) {
        put_null_str(out, r.database.unwrap_or_default());
    }
    if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
        put_null_str(out, r.auth_plugin.unwrap_or_default());
    }
    if caps.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS) {
        put_connect_attrs(out, &r.connect_attrs);
    }
}

/// Connection attributes: `attrs<lenenc> := (key<lenenc> value<lenenc>)*` (also in
/// COM_CHANGE_USER).
pub fn connect_attrs(input: &[u8]) -> Res<'_, Vec<(&[u8], &[u8])>> {
    let (rest, mut attrs) = lenenc_bytes(input)?;
    let mut list = Vec::new();
    while !attrs.is_empty() {
        let (a, k) = lenenc_bytes(attrs)?;
        let (a, v) = lenenc_bytes(a)?;
        list.push((k, v));
        attrs = a;
    }
    Ok((rest, list))
}

/// Appends connection attributes (see [`connect_attrs`]).
pub fn put_connect_attrs(out: &mut Vec<u8>, attrs: &[(&[u8], &[u8])]) {
    let mut block = Vec::new();
    for (k, v) in attrs {
        put_lenenc_bytes(&mut block, k);
        put_lenenc_bytes(&mut block, v);
    }
    put_lenenc_bytes(out, &block);
}

/// The server asks the client to authenticate with another plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest<'a> {
    /// Plugin name.
    pub plugin: &'a [u8],
    /// Plugin data exactly as sent. Scramble-based plugins (native, caching_sha2) end it with a
    /// NUL that is not part of the nonce (see [`AuthSwitchRequest::scramble`]); others, such as
    /// MariaDB's `client_ed25519`, send raw bytes whose last byte may well be 0.
    pub data: &'a [u8],
}

impl<'a> AuthSwitchRequest<'a> {
    /// The nonce of a scramble-based plugin: the data without its trailing NUL.
    pub fn scramble(&self) -> &'a [u8] {
        match self.data.split_last() {
            Some((0, head)) => head,
            _ => self.data,
        }
    }
}

/// Parses an AuthSwitchRequest payload (starts with 0xFE).
pub fn parse_auth_switch(payload: &[u8]) -> Result<AuthSwitchRequest<'_>, Error> {
    parse_all("AuthSwitchRequest", payload, |input: &[u8]| {
        let (input, _) = nom::bytes::complete::tag(&[0xFEu8][..])(input)?;
        let (input, plugin) = null_str_or_eof(input)?;
        Ok((
            &input[input.len()..],
            AuthSwitchRequest {
                plugin,
                data: input,
            },
        ))
    })
}

/// Appends an AuthSwitchRequest payload; `data` is written as is (a scramble-based plugin's
/// data should end with NUL, as servers send it: see [`encode_scramble_switch`]).
pub fn encode_auth_switch(out: &mut Vec<u8>, r: &AuthSwitchRequest<'_>) {
    out.push(0xFE);
    put_null_str(out, r.plugin);
    out.extend_from_slice(r.data);
}

/// Appends an AuthSwitchRequest for a scramble-based plugin: `nonce` followed by NUL.
pub fn encode_scramble_switch(out: &mut Vec<u8>, plugin: &[u8], nonce: &[u8]) {
    out.push(0xFE);
    put_null_str(out, plugin);
    put_null_str(out, nonce);
}

/// Appends an AuthMoreData payload.
pub fn encode_auth_more_data(out: &mut Vec<u8>, data: &[u8]) {
    out.push(0x01);
    out.extend_from_slice(data);
}

/// Header byte of AuthMoreData.
pub const AUTH_MORE_DATA: u8 = 0x01;

/// Reads the connection attributes' total length (for limits); `None` if malformed.
pub fn lenenc_prefix_len(input: &[u8]) -> Option<u64> {
    lenenc_int(input).ok().map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A greeting laid out as MariaDB 10.11 sends it (nonce replaced by letters), fields grouped.
    const MARIADB_GREETING: &[u8] = &[
        0x0a, // protocol 10
        b'5', b'.', b'5', b'.', b'5', b'-', b'1', b'0', b'.', b'1', b'1', b'.', b'6', b'-', b'M',
        b'a', b'r', b'i', b'a', b'D', b'B', 0, // version
        0x03, 0, 0, 0, // connection id 3
        b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', 0, // auth data 1 + filler
        0xfe, 0xf7, // caps lo
        0x2d, // charset 45
        0x02, 0x00, // status
        0xff, 0x81, // caps hi
        0x15, // auth data len 21
        0, 0, 0, 0, 0, 0, // reserved
        0x1d, 0, 0, 0, // mariadb caps
        b'i', b'j', b'k', b'l', b'm', b'n', b'o', b'p', b'q', b'r', b's', b't', 0, b'm', b'y',
        b's', b'q', b'l', b'_', b'n', b'a', b't', b'i', b'v', b'e', b'_', b'p', b'a', b's', b's',
        b'w', b'o', b'r', b'd', 0,
    ];

    #[test]
    fn parses_a_mariadb_greeting() {
        let h = parse_handshake_v10(MARIADB_GREETING).unwrap();
        assert_eq!(h.server_version, b"5.5.5-10.11.6-MariaDB");
        assert_eq!(h.connection_id, 3);
        assert_eq!(h.nonce(), b"abcdefghijklmnopqrst");
        assert_eq!(h.auth_plugin, Some(&b"mysql_native_password"[..]));
        assert!(h.capabilities.contains(CapabilityFlags::CLIENT_PROTOCOL_41));
        assert!(!h
            .capabilities
            .contains(CapabilityFlags::CLIENT_LONG_PASSWORD));
        let mut out = Vec::new();
        encode_handshake_v10(&mut out, &h);
        assert_eq!(out, MARIADB_GREETING);
    }

    fn bytes_no_nul(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(1u8..=255, 0..max)
    }

    proptest! {
        #[test]
        fn greeting_round_trip(version in bytes_no_nul(40), id: u32, nonce in proptest::collection::vec(1u8..=255, 20), caps: u32, charset: u8, status: u16, plugin in bytes_no_nul(30)) {
            let h = HandshakeV10 {
                server_version: &version,
                connection_id: id,
                auth_data_1: &nonce[..8],
                auth_data_2: &nonce[8..],
                capabilities: CapabilityFlags::from_bits_retain(caps) | CapabilityFlags::CLIENT_PLUGIN_AUTH,
                charset,
                status: StatusFlags::from_bits_retain(status),
                mariadb_capabilities: 0,
                auth_plugin: Some(&plugin),
            };
            let mut out = Vec::new();
            encode_handshake_v10(&mut out, &h);
            prop_assert_eq!(parse_handshake_v10(&out).unwrap(), h);
        }

        #[test]
        fn response_round_trip(user in bytes_no_nul(20), auth in proptest::collection::vec(any::<u8>(), 0..300), db in proptest::option::of(bytes_no_nul(20)), plugin in bytes_no_nul(25), attrs in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..20), proptest::collection::vec(any::<u8>(), 0..20)), 0..5), charset: u8, max: u32) {
            let mut caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SECURE_CONNECTION
                | CapabilityFlags::CLIENT_PLUGIN_AUTH | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
                | CapabilityFlags::CLIENT_CONNECT_ATTRS;
            if db.is_some() { caps |= CapabilityFlags::CLIENT_CONNECT_WITH_DB; }
            let r = HandshakeResponse41 {
                capabilities: caps,
                max_packet_size: max,
                charset,
                mariadb_capabilities: 0,
                username: &user,
                auth_response: &auth,
                database: db.as_deref(),
                auth_plugin: Some(&plugin),
                connect_attrs: attrs.iter().map(|(k, v)| (&k[..], &v[..])).collect(),
            };
            let mut out = Vec::new();
            encode_handshake_response(&mut out, &r);
            prop_assert_eq!(parse_handshake_response(&out).unwrap(), r.clone());
            prop_assert_eq!(parse_ssl_request(&out[..SSL_REQUEST_LEN]).unwrap().capabilities, caps);
        }

        #[test]
        fn auth_switch_round_trip(plugin in bytes_no_nul(30),
                                  data in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Raw data survives whole, including a trailing 0 (an ed25519 nonce may end in one).
            let r = AuthSwitchRequest { plugin: &plugin, data: &data };
            let mut out = Vec::new();
            encode_auth_switch(&mut out, &r);
            prop_assert_eq!(parse_auth_switch(&out).unwrap(), r);
        }

        #[test]
        fn scramble_switch_round_trip(plugin in bytes_no_nul(30), nonce in bytes_no_nul(20)) {
            let mut out = Vec::new();
            encode_scramble_switch(&mut out, &plugin, &nonce);
            let parsed = parse_auth_switch(&out).unwrap();
            prop_assert_eq!(parsed.plugin, &plugin[..]);
            prop_assert_eq!(parsed.scramble(), &nonce[..]);
        }

        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_handshake_v10(&b);
            let _ = parse_handshake_response(&b);
            let _ = parse_auth_switch(&b);
        }
    }
}
