//! Authenticating the client against gateway identities: the exchange that follows the
//! client's handshake response (or COM_CHANGE_USER) until the gateway accepts or refuses.
//!
//! ```text
//! mysql_native_password:  response ─▶ verify (needs the identity's native hash)
//! caching_sha2_password:  response ─▶ fast path hit ─▶ 0x01 0x03 (fast auth ok)
//!                                  └▶ miss, over TLS ─▶ 0x01 0x04, client sends password<NUL>
//!                                  └▶ miss, plaintext ─▶ switch to native
//! any other plugin:       switch to caching_sha2 (TLS) or native (plaintext)
//! ```
//! The gateway never asks for a cleartext password on a plaintext connection, and every
//! failure looks the same to the client (no oracle about which part failed).

use crate::auth::{FastAuth, Identity, IdentityStore};
use crate::wire::handshake::{encode_auth_more_data, encode_scramble_switch};

/// `mysql_native_password`.
pub const NATIVE: &str = "mysql_native_password";
/// `caching_sha2_password`.
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// A pending exchange.
#[derive(Debug)]
pub(crate) struct ClientAuth {
    user: String,
    expect: Expect,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The response to an auth switch to this plugin.
    SwitchResponse(&'static str),
    /// The cleartext password after "perform full authentication" (TLS only).
    FullAuthPassword,
}

/// The result of one step.
#[derive(Debug)]
pub(crate) enum AuthStep {
    /// Send this payload and wait for the client's next packet.
    Continue(Vec<u8>, ClientAuth),
    /// Accepted; send the optional payload first (caching_sha2's "fast auth ok").
    Accepted(Option<Vec<u8>>, Identity),
    /// Refused; the reason is for the log only.
    Refused(&'static str),
}

/// Starts authenticating `user`, who answered the nonce with `response` made by `plugin`.
pub(crate) fn start(
    store: &IdentityStore,
    user: &str,
    plugin: &str,
    response: &[u8],
    nonce: &[u8],
    tls: bool,
) -> AuthStep {
    // Which plugin to continue with never depends on the user (no user-existence oracle):
    // over TLS caching_sha2 (full authentication possible), in plaintext native.
    match plugin {
        NATIVE => native(store, user, response, nonce, tls),
        CACHING_SHA2 => sha2(store, user, response, nonce, tls),
        _ if tls => switch(user, CACHING_SHA2, nonce),
        _ => switch(user, NATIVE, nonce),
    }
}

/// Continues with the client's next packet.
pub(crate) fn resume(
    state: ClientAuth,
    store: &IdentityStore,
    payload: &[u8],
    nonce: &[u8],
    tls: bool,
) -> AuthStep {
    let user = state.user.as_str();
    match state.expect {
        Expect::SwitchResponse(NATIVE) => native(store, user, payload, nonce, tls),
        Expect::SwitchResponse(_) => sha2(store, user, payload, nonce, tls),
        Expect::FullAuthPassword => {
            let password = payload.strip_suffix(&[0]).unwrap_or(payload);
            match store.verify_cleartext(user, password) {
                Some(id) => AuthStep::Accepted(None, id),
                None => AuthStep::Refused("wrong password (full authentication)"),
            }
        }
    }
}

fn native(store: &IdentityStore, user: &str, response: &[u8], nonce: &[u8], tls: bool) -> AuthStep {
    match store.verify_native(user, nonce, response) {
        Some(id) => AuthStep::Accepted(None, id),
        // Over TLS, identities without a native hash can still prove themselves in full.
        None if tls => switch(user, CACHING_SHA2, nonce),
        None => AuthStep::Refused("wrong password or unknown user (mysql_native_password)"),
    }
}

fn sha2(store: &IdentityStore, user: &str, response: &[u8], nonce: &[u8], tls: bool) -> AuthStep {
    match store.verify_sha2_fast(user, nonce, response) {
        FastAuth::Ok(id) => {
            let mut ok = Vec::new();
            encode_auth_more_data(&mut ok, &[0x03]);
            AuthStep::Accepted(Some(ok), id)
        }
        FastAuth::NeedFullAuth if tls => {
            let mut more = Vec::new();
            encode_auth_more_data(&mut more, &[0x04]);
            AuthStep::Continue(
                more,
                ClientAuth {
                    user: user.to_owned(),
                    expect: Expect::FullAuthPassword,
                },
            )
        }
        // Plaintext and nothing cached: the password may not travel in clear, so fall back to
        // mysql_native_password (which fails for identities stored without a native hash).
        FastAuth::NeedFullAuth => switch(user, NATIVE, nonce),
        FastAuth::Failed => AuthStep::Refused("wrong password (caching_sha2 fast path)"),
    }
}

fn switch(user: &str, plugin: &'static str, nonce: &[u8]) -> AuthStep {
    let mut p = Vec::new();
    encode_scramble_switch(&mut p, plugin.as_bytes(), nonce);
    AuthStep::Continue(
        p,
        ClientAuth {
            user: user.to_owned(),
            expect: Expect::SwitchResponse(plugin),
        },
    )
}
