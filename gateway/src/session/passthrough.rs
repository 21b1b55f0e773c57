//! Passthrough authentication (adoption mode): the client's own MySQL login is relayed to the
//! upstream, which accepts or refuses it. The gateway greets the client with the upstream's own
//! nonce and plugin, so every scramble the client computes is one the upstream can check, for
//! any plugin and any number of rounds (auth switches, caching_sha2's extra rounds, ed25519,
//! PAM's dialog).
//!
//! ```text
//! client                     gateway                          upstream
//!   │                           │ ◀──────── greeting (nonce N) ───│
//!   │ ◀── greeting (nonce N) ───│                                 │
//!   │ ─ [SSLRequest, TLS] ────▶ │ ─ [SSLRequest, TLS] ──────────▶ │
//!   │ ─ response(user, f(N)) ─▶ │ ─ response(user, f(N), attrs) ─▶ │
//!   │ ◀──── switch / more data ─┼──────────────── (relayed) ──────│
//!   │ ───── answers ────────────┼──────────────── (relayed) ────▶ │
//!   │ ◀──────────── OK / ERR ───┼─────────────────────────────────│
//! ```
//!
//! The gateway's part is to refuse what would weaken the links it terminates: it never lets a
//! client be asked for a cleartext password over a plaintext connection, and it relays a
//! cleartext password upstream only over TLS.

/// Plugins whose client answers are the password itself.
const CLEARTEXT_PLUGINS: &[&str] = &["mysql_clear_password", "dialog"];

/// A relayed login in progress (at connect time or for COM_CHANGE_USER).
#[derive(Debug)]
pub(crate) struct RelayedLogin {
    /// The MySQL account's user name.
    pub(crate) user: String,
    /// The plugin the exchange uses now (the client's first, then the server's switches).
    plugin: String,
    /// caching_sha2 said "perform full authentication": the client's next answer is the
    /// password in clear when its connection is TLS.
    full_auth: bool,
    /// For COM_CHANGE_USER: the schema the new session starts in.
    pub(crate) change_user_schema: Option<Option<Vec<u8>>>,
}

/// What to do with a packet from the upstream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ServerVerdict {
    /// Relay it to the client and wait for more.
    Relay,
    /// The upstream accepted the login (the packet is its OK): relay it, the session is ready.
    Accepted,
    /// The upstream refused (the packet is its ERR): relay it.
    Refused,
    /// Going on would ask a plaintext client for its password in clear.
    Insecure(String),
    /// The upstream broke the protocol.
    Malformed(String),
}

/// What to do with a packet from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientVerdict {
    /// Relay it to the upstream.
    Relay,
    /// Don't: it carries a cleartext password and the upstream link is not TLS.
    Refuse(String),
}

impl RelayedLogin {
    /// A login whose first response was made with `plugin`.
    pub(crate) fn new(user: String, plugin: String) -> RelayedLogin {
        RelayedLogin {
            user,
            plugin,
            full_auth: false,
            change_user_schema: None,
        }
    }

    /// The plugin the exchange uses now.
    pub(crate) fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Checks the client's first response (in the handshake response or COM_CHANGE_USER).
    pub(crate) fn check_first_response(
        &self,
        client_tls: bool,
        upstream_tls: bool,
    ) -> ClientVerdict {
        self.check_client(client_tls, upstream_tls)
    }

    /// The upstream's next packet during the exchange.
    pub(crate) fn on_server_packet(&mut self, payload: &[u8], client_tls: bool) -> ServerVerdict {
        match payload.first().copied() {
            Some(0x00) => ServerVerdict::Accepted,
            Some(0xFF) => ServerVerdict::Refused,
            Some(0xFE) => {
                let switch = match crate::wire::handshake::parse_auth_switch(payload) {
                    Ok(s) => s,
                    Err(e) => {
                        return ServerVerdict::Malformed(format!("upstream auth switch: {e}"))
                    }
                };
                self.plugin = String::from_utf8_lossy(switch.plugin).into_owned();
                self.full_auth = false;
                if is_cleartext_plugin(&self.plugin) && !client_tls {
                    return ServerVerdict::Insecure(format!(
                        "the target asks for the password in clear (plugin {}), which the \
                         gateway never requests over a plaintext client connection",
                        self.plugin
                    ));
                }
                ServerVerdict::Relay
            }
            Some(0x01) => {
                // caching_sha2: 0x03 fast auth ok, 0x04 perform full authentication.
                if payload.get(1) == Some(&0x04) && self.plugin == "caching_sha2_password" {
                    self.full_auth = true;
                }
                ServerVerdict::Relay
            }
            // Other plugins' rounds (e.g. dialog prompts) are opaque data.
            Some(_) => ServerVerdict::Relay,
            None => ServerVerdict::Malformed("empty packet from upstream during login".into()),
        }
    }

    /// The client's next answer during the exchange.
    pub(crate) fn on_client_packet(
        &mut self,
        client_tls: bool,
        upstream_tls: bool,
    ) -> ClientVerdict {
        let verdict = self.check_client(client_tls, upstream_tls);
        self.full_auth = false;
        verdict
    }

    /// Whether the client's next answer is the password in clear, and if so whether it may go on.
    fn check_client(&self, client_tls: bool, upstream_tls: bool) -> ClientVerdict {
        let cleartext = is_cleartext_plugin(&self.plugin)
            // Over TLS these send the password itself (without TLS: RSA or a key request).
            || (client_tls && self.plugin == "sha256_password")
            || (client_tls && self.full_auth);
        if !cleartext {
            return ClientVerdict::Relay;
        }
        if !client_tls {
            return ClientVerdict::Refuse(format!(
                "the client sent its password in clear (plugin {}) over a plaintext connection",
                self.plugin
            ));
        }
        if !upstream_tls {
            return ClientVerdict::Refuse(format!(
                "the login sends the password in clear (plugin {}); the gateway relays it only \
                 over TLS to the target",
                self.plugin
            ));
        }
        ClientVerdict::Relay
    }
}

fn is_cleartext_plugin(plugin: &str) -> bool {
    CLEARTEXT_PLUGINS.contains(&plugin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switch_to(plugin: &str, data: &[u8]) -> Vec<u8> {
        let mut p = vec![0xFE];
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p.extend_from_slice(data);
        p
    }

    #[test]
    fn scrambles_are_relayed_over_any_link() {
        let mut l = RelayedLogin::new("app".into(), "mysql_native_password".into());
        assert_eq!(l.check_first_response(false, false), ClientVerdict::Relay);
        assert_eq!(
            l.on_server_packet(&switch_to("client_ed25519", &[0; 32]), false),
            ServerVerdict::Relay
        );
        assert_eq!(l.on_client_packet(false, false), ClientVerdict::Relay);
        assert_eq!(
            l.on_server_packet(&[0, 0, 0, 2, 0], false),
            ServerVerdict::Accepted
        );
    }

    #[test]
    fn cleartext_is_never_asked_of_a_plaintext_client() {
        let mut l = RelayedLogin::new("app".into(), "mysql_native_password".into());
        let verdict = l.on_server_packet(&switch_to("mysql_clear_password", b""), false);
        assert!(matches!(verdict, ServerVerdict::Insecure(_)), "{verdict:?}");
        let mut l = RelayedLogin::new("app".into(), "mysql_native_password".into());
        let verdict = l.on_server_packet(&switch_to("dialog", b"\x04Password: "), false);
        assert!(matches!(verdict, ServerVerdict::Insecure(_)), "{verdict:?}");
    }

    #[test]
    fn cleartext_goes_upstream_only_over_tls() {
        let mut l = RelayedLogin::new("app".into(), "mysql_native_password".into());
        assert_eq!(
            l.on_server_packet(&switch_to("mysql_clear_password", b""), true),
            ServerVerdict::Relay
        );
        assert!(matches!(
            l.on_client_packet(true, false),
            ClientVerdict::Refuse(_)
        ));
        assert_eq!(l.on_client_packet(true, true), ClientVerdict::Relay);
        // A client that chose cleartext itself is checked on its first response.
        let l = RelayedLogin::new("app".into(), "mysql_clear_password".into());
        assert!(matches!(
            l.check_first_response(false, true),
            ClientVerdict::Refuse(_)
        ));
        assert!(matches!(
            l.check_first_response(true, false),
            ClientVerdict::Refuse(_)
        ));
        assert_eq!(l.check_first_response(true, true), ClientVerdict::Relay);
    }

    #[test]
    fn caching_sha2_full_auth_is_cleartext_only_for_tls_clients() {
        // TLS client: after 0x01 0x04 it sends password<NUL>.
        let mut l = RelayedLogin::new("app".into(), "caching_sha2_password".into());
        assert_eq!(l.check_first_response(true, false), ClientVerdict::Relay);
        assert_eq!(l.on_server_packet(&[1, 4], true), ServerVerdict::Relay);
        assert!(matches!(
            l.on_client_packet(true, false),
            ClientVerdict::Refuse(_)
        ));
        // Plaintext client: it asks for the key and answers with RSA; nothing clear to guard.
        let mut l = RelayedLogin::new("app".into(), "caching_sha2_password".into());
        assert_eq!(l.on_server_packet(&[1, 4], false), ServerVerdict::Relay);
        assert_eq!(l.on_client_packet(false, false), ClientVerdict::Relay);
        assert_eq!(
            l.on_server_packet(&[1, b'-', b'-'], false),
            ServerVerdict::Relay
        );
        assert_eq!(l.on_client_packet(false, false), ClientVerdict::Relay);
        // Fast path: 0x01 0x03 then OK.
        let mut l = RelayedLogin::new("app".into(), "caching_sha2_password".into());
        assert_eq!(l.on_server_packet(&[1, 3], true), ServerVerdict::Relay);
        assert_eq!(
            l.on_server_packet(&[0, 0, 0, 2, 0], true),
            ServerVerdict::Accepted
        );
    }

    #[test]
    fn errors_and_garbage() {
        let mut l = RelayedLogin::new("app".into(), "mysql_native_password".into());
        assert_eq!(
            l.on_server_packet(b"\xff\x15\x04#28000denied", false),
            ServerVerdict::Refused
        );
        assert!(matches!(
            l.on_server_packet(&[], false),
            ServerVerdict::Malformed(_)
        ));
    }
}
