//! The password proofs MySQL and MariaDB clients send, as plain functions over byte slices.
//!
//! | plugin | gateway side | functions |
//! |---|---|---|
//! | `mysql_native_password` | server (clients → gateway), client (gateway → upstream) | [`native_response`], [`native_verify`] |
//! | `caching_sha2_password` fast path | server and client | [`sha2_scramble`], [`sha2_verify`] |
//! | `caching_sha2_password` full auth without TLS | client | [`sha2_rsa_encrypt_password`] |
//! | MariaDB `client_ed25519` | client | [`ed25519_response`] |
//!
//! ```text
//! native:  SHA1(pw) XOR SHA1(nonce[..20] || SHA1(SHA1(pw)))                    20 bytes
//! sha2:    SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce[..20])            32 bytes
//! rsa:     RSA-OAEP-SHA1((pw || 0x00) XOR nonce[..20] repeated)               key size
//! ed25519: Ed25519 signature of nonce, expanded secret key = SHA512(pw)        64 bytes
//! ```
//!
//! The servers send a 20-byte nonce for native and sha2, often followed by a NUL in the
//! handshake packet; these functions use at most the first 20 bytes, so either form may be
//! passed. The ed25519 nonce (32 bytes) is signed whole.
//!
//! Verification compares digests in constant time. Nothing here allocates except the RSA
//! ciphertext and [`native_response`].

use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::VerifyingKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::Error;

/// How many nonce bytes the native and sha2 scrambles use (MySQL's `SCRAMBLE_LENGTH`).
pub const NONCE_LEN: usize = 20;

/// The first [`NONCE_LEN`] bytes of `nonce` (all of it if shorter).
fn nonce20(nonce: &[u8]) -> &[u8] {
    &nonce[..nonce.len().min(NONCE_LEN)]
}

fn xor<const N: usize>(a: [u8; N], b: [u8; N]) -> [u8; N] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Compares two byte strings without an early exit on the first difference.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && std::hint::black_box(diff) == 0
}

// ---- mysql_native_password ----

/// `mysql_native_password` scramble: `SHA1(pw) XOR SHA1(nonce[..20] || SHA1(SHA1(pw)))`.
///
/// This is what the client sends for a non-empty password; see [`native_response`].
pub fn native_scramble(password: &[u8], nonce: &[u8]) -> [u8; 20] {
    let stage1: [u8; 20] = Sha1::digest(password).into();
    let stage2 = Sha1::digest(stage1);
    let mask = Sha1::new()
        .chain_update(nonce20(nonce))
        .chain_update(stage2)
        .finalize();
    xor(stage1, mask.into())
}

/// The `mysql_native_password` auth response a client sends: empty for an empty password,
/// otherwise [`native_scramble`].
pub fn native_response(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        Vec::new()
    } else {
        native_scramble(password, nonce).to_vec()
    }
}

/// `SHA1(SHA1(pw))`: what MySQL stores for a native account (shown as `*` and 40 hex digits by
/// `PASSWORD()`), and all the server needs to check a [`native_scramble`].
pub fn native_double_hash(password: &[u8]) -> [u8; 20] {
    Sha1::digest(Sha1::digest(password)).into()
}

/// Server-side check of a `mysql_native_password` response against the stored
/// [`native_double_hash`].
///
/// Recovers `SHA1(pw) = response XOR SHA1(nonce[..20] || double_hash)` and checks that its SHA1
/// is `double_hash`. An empty response is what clients send for an empty password: it succeeds
/// only when `double_hash` is the hash of the empty password. Any other length fails.
pub fn native_verify(double_hash: &[u8; 20], nonce: &[u8], response: &[u8]) -> bool {
    if response.is_empty() {
        return ct_eq(double_hash, &native_double_hash(b""));
    }
    let Ok(response) = <[u8; 20]>::try_from(response) else {
        return false;
    };
    let mask = Sha1::new()
        .chain_update(nonce20(nonce))
        .chain_update(double_hash)
        .finalize();
    let stage1 = xor(response, mask.into());
    ct_eq(&Sha1::digest(stage1), double_hash)
}

// ---- caching_sha2_password ----

/// `caching_sha2_password` fast-path scramble:
/// `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce[..20])`.
pub fn sha2_scramble(password: &[u8], nonce: &[u8]) -> [u8; 32] {
    let stage1: [u8; 32] = Sha256::digest(password).into();
    let stage2 = Sha256::digest(stage1);
    let mask = Sha256::new()
        .chain_update(stage2)
        .chain_update(nonce20(nonce))
        .finalize();
    xor(stage1, mask.into())
}

/// `SHA256(SHA256(pw))`: what a `caching_sha2_password` server keeps in its in-memory cache to
/// check [`sha2_scramble`] responses.
pub fn sha2_double_hash(password: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(password)).into()
}

/// Server-side fast-path check of a `caching_sha2_password` response against a cached
/// [`sha2_double_hash`]. Responses that are not exactly 32 bytes fail (including the empty
/// response of an empty password: the gateway does not support empty passwords on this path).
pub fn sha2_verify(double_hash: &[u8; 32], nonce: &[u8], response: &[u8]) -> bool {
    let Ok(response) = <[u8; 32]>::try_from(response) else {
        return false;
    };
    let mask = Sha256::new()
        .chain_update(double_hash)
        .chain_update(nonce20(nonce))
        .finalize();
    let stage1 = xor(response, mask.into());
    ct_eq(&Sha256::digest(stage1), double_hash)
}

/// The RSA plaintext of `caching_sha2_password` full authentication:
/// `(password || 0x00) XOR nonce[..20]` repeated cyclically.
fn sha2_rsa_plaintext(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    let nonce = nonce20(nonce);
    password
        .iter()
        .chain(&[0])
        .zip(nonce.iter().cycle())
        .map(|(p, n)| p ^ n)
        .collect()
}

/// Client side of `caching_sha2_password` full authentication over a connection without TLS
/// (gateway → upstream MySQL 8): encrypts `(password || 0x00) XOR nonce` (nonce repeated) with
/// the server's RSA public key, RSA-OAEP with SHA-1 as MySQL 8.0.5 and later expect.
///
/// `server_public_key_pem` is the key as the server sends it (after the `0x01` marker): a
/// PKCS#8 `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY` PEM; surrounding whitespace and trailing NULs
/// are ignored.
///
/// Only the public key is used: this is not exposed to the timing attacks on RSA decryption.
pub fn sha2_rsa_encrypt_password(
    password: &[u8],
    nonce: &[u8],
    server_public_key_pem: &[u8],
    rng: &mut (impl rand::RngCore + rand::CryptoRng),
) -> Result<Vec<u8>, Error> {
    if nonce.is_empty() {
        return Err(Error::EmptyNonce);
    }
    let key = parse_rsa_public_key(server_public_key_pem)?;
    let plaintext = sha2_rsa_plaintext(password, nonce);
    key.encrypt(rng, Oaep::new::<Sha1>(), &plaintext)
        .map_err(Error::Rsa)
}

fn parse_rsa_public_key(pem: &[u8]) -> Result<RsaPublicKey, Error> {
    let pem = std::str::from_utf8(pem).map_err(|_| Error::BadPublicKey)?;
    let pem = pem.trim_matches(|c: char| c == '\0' || c.is_ascii_whitespace());
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|_| Error::BadPublicKey)
}

// ---- MariaDB client_ed25519 ----

/// MariaDB's ed25519 key: the expanded secret key is `SHA512(password)` (clamped, as in
/// standard Ed25519 key expansion).
fn ed25519_keys(password: &[u8]) -> (ExpandedSecretKey, VerifyingKey) {
    let az: [u8; 64] = Sha512::digest(password).into();
    let esk = ExpandedSecretKey::from_bytes(&az);
    let vk = VerifyingKey::from(&esk);
    (esk, vk)
}

/// The public key MariaDB stores for an `ed25519` account (`mysql.global_priv` shows it as
/// unpadded base64): `clamp(SHA512(password)[..32]) · B`.
pub fn ed25519_public_key(password: &[u8]) -> [u8; 32] {
    ed25519_keys(password).1.to_bytes()
}

/// The MariaDB `client_ed25519` response: the Ed25519 signature of `nonce` (the 32 bytes of
/// the server's auth switch request) under the key derived from `password`. Deterministic.
pub fn ed25519_response(password: &[u8], nonce: &[u8]) -> [u8; 64] {
    let (esk, vk) = ed25519_keys(password);
    raw_sign::<Sha512>(&esk, nonce, &vk).to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rsa::pkcs1::DecodeRsaPrivateKey;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    // Known answers from a real MariaDB 10.11.19 (`mariadbd` started by hand on a throwaway
    // datadir) and the real `mariadb` CLI (libmariadb 3.3.20), captured with a logging TCP proxy
    // between them; the server accepted each login.

    /// `SELECT PASSWORD('secret')`.
    const SECRET_NATIVE_HEX: &str = "14E65567ABDB5135D0CFD9A70B3032C179A49EE7";
    /// Handshake nonce of a `mysql_native_password` login as `n` / `secret`...
    const NATIVE_NONCE: &str = "25487a52693b295a6925754431693d3635484b21";
    /// ... and the client's auth response.
    const NATIVE_RESPONSE: &str = "acd0f67044102365bb818189e16a360c421c7999";

    /// `CREATE USER e IDENTIFIED VIA ed25519 USING PASSWORD('secret')` stored
    /// `"authentication_string":"ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY"` (base64, decoded).
    const SECRET_ED25519_PK: &str =
        "648814444520e4f56043a2ec9215e63be7992d2d270bc6dee873e36164786096";
    /// Same for `PASSWORD('upstream-Secret-42')`: `FmgYTuWGIrCBI1czxpz53mT4JIPdpLwSYSqPovyr43E`.
    const UPSTREAM_ED25519_PK: &str =
        "1668184ee58622b081235733c69cf9de64f82483dda4bc12612a8fa2fcabe371";
    /// The server's `client_ed25519` auth switch nonce for a login as `e` / `secret`...
    const ED25519_NONCE: &str = "f583076d7a630be85fcc57a7aeddddc6984b6d6b598bb3b229dfa400757dc94b";
    /// ... and the client's signature.
    const ED25519_RESPONSE: &str = "b07d5579c27c8e66d3bed963bc0fdddbb6fd76f9c6674d7fb2a9a01470dd1931\
                                    a35614774abc395bbbd5e2616dfc487b5d651c7c68f47eec1f0fd36bec0c8400";

    // caching_sha2_password: the `mariadb` CLI (libmariadb's caching_sha2_password plugin)
    // against a fake MySQL 8 handshake (Python script) with nonce "ABCDEFGHIJKLMNOPQRST",
    // password `secret`. The fake server then asked for full auth and served the test key in
    // `testdata/`; the client sent `SHA2_RSA_CIPHERTEXT`.
    const SHA2_NONCE: &[u8; 20] = b"ABCDEFGHIJKLMNOPQRST";
    const SHA2_RESPONSE: &str = "d721e183c1f036a196c1389201b8d53f38064a16f1d0923683ab886763152d75";
    const SHA2_RSA_CIPHERTEXT: &str = include_str!("testdata/sha2_rsa_ciphertext.hex");
    /// Throwaway key made for these tests with `openssl genrsa -traditional 2048`; also exported
    /// with `openssl rsa -pubout` (PKCS#8) and `-RSAPublicKey_out` (PKCS#1).
    const TEST_PRIVATE_KEY: &str = include_str!("testdata/rsa_test_key.pem");
    const TEST_PUBLIC_PKCS8: &str = include_str!("testdata/rsa_test_pub_pkcs8.pem");
    const TEST_PUBLIC_PKCS1: &str = include_str!("testdata/rsa_test_pub_pkcs1.pem");

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    fn rsa_decrypt(ciphertext: &[u8]) -> Vec<u8> {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(TEST_PRIVATE_KEY).unwrap();
        key.decrypt(Oaep::new::<Sha1>(), ciphertext).unwrap()
    }

    #[test]
    fn native_double_hash_matches_mariadb_password_function() {
        assert_eq!(native_double_hash(b"secret"), h::<20>(SECRET_NATIVE_HEX));
    }

    #[test]
    fn native_scramble_matches_real_client() {
        let nonce = hex::decode(NATIVE_NONCE).unwrap();
        assert_eq!(native_scramble(b"secret", &nonce), h::<20>(NATIVE_RESPONSE));
        // The handshake's trailing NUL after the nonce does not matter.
        let mut with_nul = nonce.clone();
        with_nul.push(0);
        assert_eq!(
            native_response(b"secret", &with_nul),
            h::<20>(NATIVE_RESPONSE)
        );
        assert!(native_verify(
            &h(SECRET_NATIVE_HEX),
            &nonce,
            &h::<20>(NATIVE_RESPONSE)
        ));
    }

    #[test]
    fn native_rejects_wrong_password_nonce_and_length() {
        let stored = native_double_hash(b"secret");
        let nonce = [7u8; 20];
        let good = native_scramble(b"secret", &nonce);
        assert!(native_verify(&stored, &nonce, &good));
        assert!(!native_verify(
            &stored,
            &nonce,
            &native_scramble(b"Secret", &nonce)
        ));
        assert!(!native_verify(&stored, &[8u8; 20], &good));
        assert!(!native_verify(&stored, &nonce, &good[..19]));
        assert!(!native_verify(
            &stored,
            &nonce,
            &[good.as_slice(), &[0]].concat()
        ));
        // An empty response is the empty password: only the empty password's hash accepts it.
        assert!(!native_verify(&stored, &nonce, b""));
        assert!(native_verify(&native_double_hash(b""), &nonce, b""));
        assert_eq!(native_response(b"", &nonce), b"");
    }

    #[test]
    fn sha2_scramble_matches_real_client() {
        assert_eq!(sha2_scramble(b"secret", SHA2_NONCE), h::<32>(SHA2_RESPONSE));
        let stored = sha2_double_hash(b"secret");
        assert!(sha2_verify(&stored, SHA2_NONCE, &h::<32>(SHA2_RESPONSE)));
        // A 21-byte nonce with its trailing NUL gives the same answer.
        assert!(sha2_verify(
            &stored,
            b"ABCDEFGHIJKLMNOPQRST\0",
            &h::<32>(SHA2_RESPONSE)
        ));
    }

    #[test]
    fn sha2_double_hash_is_sha256_twice() {
        let once = Sha256::digest(b"secret");
        assert_eq!(
            sha2_double_hash(b"secret"),
            <[u8; 32]>::from(Sha256::digest(once))
        );
    }

    #[test]
    fn sha2_rejects_wrong_password_nonce_and_length() {
        let stored = sha2_double_hash(b"secret");
        let good = sha2_scramble(b"secret", SHA2_NONCE);
        assert!(!sha2_verify(
            &stored,
            SHA2_NONCE,
            &sha2_scramble(b"secreT", SHA2_NONCE)
        ));
        assert!(!sha2_verify(&stored, b"ABCDEFGHIJKLMNOPQRSX", &good));
        assert!(!sha2_verify(&stored, SHA2_NONCE, &good[..31]));
        assert!(!sha2_verify(&stored, SHA2_NONCE, b""));
        assert!(!sha2_verify(&stored, SHA2_NONCE, b"\0"));
    }

    #[test]
    fn real_client_rsa_ciphertext_has_the_plaintext_we_build() {
        let ciphertext = hex::decode(SHA2_RSA_CIPHERTEXT.trim()).unwrap();
        let plaintext = rsa_decrypt(&ciphertext);
        assert_eq!(plaintext, sha2_rsa_plaintext(b"secret", SHA2_NONCE));
        assert_eq!(plaintext, b"2' 6 2G"); // "secret\0" XOR "ABCDEFG"
    }

    #[test]
    fn rsa_encrypt_decrypts_with_both_pem_forms() {
        let nonce = b"ABCDEFGHIJKLMNOPQRST\0";
        for pem in [TEST_PUBLIC_PKCS8, TEST_PUBLIC_PKCS1] {
            // As sent by the server, possibly with a trailing NUL.
            let sent = [pem.as_bytes(), b"\0"].concat();
            let ct = sha2_rsa_encrypt_password(b"secret", nonce, &sent, &mut rng()).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(rsa_decrypt(&ct), sha2_rsa_plaintext(b"secret", nonce));
        }
        // Passwords longer than the nonce wrap around it.
        let long = [b'x'; 45];
        let ct = sha2_rsa_encrypt_password(&long, nonce, TEST_PUBLIC_PKCS8.as_bytes(), &mut rng());
        let plain = rsa_decrypt(&ct.unwrap());
        assert_eq!(plain.len(), 46);
        assert_eq!(plain[40], b'x' ^ b'A');
        assert_eq!(plain[45], b'F');
    }

    #[test]
    fn rsa_encrypt_errors() {
        let pem = TEST_PUBLIC_PKCS8.as_bytes();
        let bad = |r: Result<Vec<u8>, Error>| r.unwrap_err();
        assert!(matches!(
            bad(sha2_rsa_encrypt_password(b"pw", b"", pem, &mut rng())),
            Error::EmptyNonce
        ));
        for junk in [
            &b""[..],
            b"not a key",
            &pem[..100],
            TEST_PRIVATE_KEY.as_bytes(),
            b"\xff",
        ] {
            assert!(matches!(
                bad(sha2_rsa_encrypt_password(b"pw", b"n", junk, &mut rng())),
                Error::BadPublicKey
            ));
        }
        // OAEP-SHA1 with a 2048-bit key fits at most 256 - 42 = 214 bytes.
        let huge = [b'p'; 214];
        assert!(matches!(
            bad(sha2_rsa_encrypt_password(&huge, b"n", pem, &mut rng())),
            Error::Rsa(_)
        ));
        assert!(sha2_rsa_encrypt_password(&huge[1..], b"n", pem, &mut rng()).is_ok());
    }

    #[test]
    fn ed25519_public_key_matches_mariadb() {
        assert_eq!(ed25519_public_key(b"secret"), h::<32>(SECRET_ED25519_PK));
        assert_eq!(
            ed25519_public_key(b"upstream-Secret-42"),
            h::<32>(UPSTREAM_ED25519_PK)
        );
    }

    #[test]
    fn ed25519_response_matches_real_client_and_verifies() {
        let nonce = hex::decode(ED25519_NONCE).unwrap();
        let sig = ed25519_response(b"secret", &nonce);
        assert_eq!(sig, h::<64>(ED25519_RESPONSE));
        let vk = VerifyingKey::from_bytes(&h(SECRET_ED25519_PK)).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        assert!(vk.verify_strict(&nonce, &sig).is_ok());
        assert!(vk.verify_strict(b"another nonce", &sig).is_err());
        let wrong = ed25519_dalek::Signature::from_bytes(&ed25519_response(b"Secret", &nonce));
        assert!(vk.verify_strict(&nonce, &wrong).is_err());
    }

    #[test]
    fn ct_eq_compares_length_and_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn native_round_trip(pw in prop::collection::vec(any::<u8>(), 1..64),
                             nonce in prop::array::uniform20(any::<u8>()),
                             other in prop::array::uniform20(any::<u8>())) {
            let stored = native_double_hash(&pw);
            let resp = native_response(&pw, &nonce);
            prop_assert!(native_verify(&stored, &nonce, &resp));
            prop_assert_eq!(native_verify(&stored, &other, &resp), nonce == other);
            let mut flipped = pw.clone();
            flipped[0] ^= 1;
            prop_assert!(!native_verify(&stored, &nonce, &native_response(&flipped, &nonce)));
        }

        #[test]
        fn sha2_round_trip(pw in prop::collection::vec(any::<u8>(), 0..64),
                           nonce in prop::array::uniform20(any::<u8>()),
                           other in prop::array::uniform20(any::<u8>())) {
            let stored = sha2_double_hash(&pw);
            let resp = sha2_scramble(&pw, &nonce);
            prop_assert!(sha2_verify(&stored, &nonce, &resp));
            prop_assert_eq!(sha2_verify(&stored, &other, &resp), nonce == other);
            let mut longer = pw.clone();
            longer.push(b'!');
            prop_assert!(!sha2_verify(&stored, &nonce, &sha2_scramble(&longer, &nonce)));
        }

        #[test]
        fn ed25519_signature_verifies(pw in prop::collection::vec(any::<u8>(), 0..64),
                                      nonce in prop::array::uniform32(any::<u8>())) {
            let vk = VerifyingKey::from_bytes(&ed25519_public_key(&pw)).unwrap();
            let sig = ed25519_dalek::Signature::from_bytes(&ed25519_response(&pw, &nonce));
            prop_assert!(vk.verify_strict(&nonce, &sig).is_ok());
        }

        #[test]
        fn rsa_plaintext_round_trip(pw in prop::collection::vec(any::<u8>(), 0..100),
                                    nonce in prop::array::uniform20(any::<u8>())) {
            let unmasked: Vec<u8> = sha2_rsa_plaintext(&pw, &nonce)
                .iter()
                .zip(nonce.iter().cycle())
                .map(|(c, n)| c ^ n)
                .collect();
            prop_assert_eq!(unmasked, [pw.as_slice(), &[0]].concat());
        }
    }
}
