//! Authentication: proving who a client is, and proving the gateway's held credential upstream.
//!
//! This module owns:
//! - [`scramble`]: the password proofs of `mysql_native_password`, `caching_sha2_password`
//!   (fast path and RSA full authentication) and MariaDB's `client_ed25519`, for both sides of
//!   the gateway: checking what clients send, computing what the gateway sends upstream.
//! - [`secret`]: [`StoredSecret`], an identity's hashed secret as the configuration holds it
//!   (the one-line `gh1:` format that `gatehouse hash-secret` prints).
//! - [`identity`]: [`IdentityStore`], the configured identities shared by all sessions, with the
//!   `caching_sha2_password` fast-path cache.
//!
//! It does no I/O and reads no clock: functions take byte slices and return bytes or verdicts,
//! and randomness arrives as an argument (only [`StoredSecret::generate`] and
//! [`scramble::sha2_rsa_encrypt_password`] take a random number generator). Which plugin to
//! offer, packet layout and when to ask for what belong to `session` and `wire`.
//!
//! ```text
//! client ──▶ gateway: native  → IdentityStore::verify_native
//!                     sha2    → IdentityStore::verify_sha2_fast → (TLS) verify_cleartext
//! gateway ──▶ upstream: native_response | sha2_scramble (+ sha2_rsa_encrypt_password)
//!                       | ed25519_response
//! ```
#![forbid(unsafe_code)]

pub mod identity;
pub mod scramble;
pub mod secret;

pub use identity::{FastAuth, Identity, IdentityEntry, IdentityStore};
pub use secret::{SecretParseError, StoredSecret};

/// What can fail in authentication computations (checks themselves answer yes or no).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server's RSA public key is not a PEM `PUBLIC KEY` (PKCS#8) or `RSA PUBLIC KEY`
    /// (PKCS#1).
    #[error("the server's RSA public key is not a PEM \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"")]
    BadPublicKey,
    /// RSA encryption failed (e.g. the password is too long for the key).
    #[error("RSA encryption of the password failed: {0}")]
    Rsa(#[source] rsa::Error),
    /// The server sent no nonce to mask the password with.
    #[error("the server sent an empty nonce")]
    EmptyNonce,
}
