//! The secret of a gateway identity as the configuration holds it: hashed, one line, printed by
//! `gatehouse hash-secret`.
//!
//! ```text
//! gh1:argon2=$argon2id$v=19$m=12288,t=3,p=1$<salt, base64>$<hash, base64>;native=*<40 HEX>
//! └┬┘ └──────────────── argon2id PHC string (required) ──────────────────┘ └── optional ──┘
//!  format version
//! ```
//!
//! - `argon2=` is the argon2id hash of the password (PHC string format, version 19). It checks
//!   cleartext passwords: `caching_sha2_password` full authentication over TLS, after which
//!   [`IdentityStore`](super::IdentityStore) caches the fast-path hash in memory. New secrets use
//!   m = 12 MiB, t = 3, p = 1 (an OWASP-recommended setting): one check takes about 15–30 ms
//!   of one core and 12 MiB of memory. Parsing accepts other costs up to
//!   [`MAX_M_COST_KIB`], [`MAX_T_COST`] and [`MAX_P_COST`], so a typo cannot make every login
//!   allocate gigabytes.
//! - `native=` is the `mysql_native_password` hash `SHA1(SHA1(pw))` exactly as MySQL's
//!   `PASSWORD()` prints it. Only needed for clients that speak nothing else. It is fast to
//!   brute-force, so a config holding it protects the password no better than SHA-1 does; and
//!   anyone holding it who also records one native handshake can log in as the identity.
//!
//! Parsing is strict: fixed field order, no whitespace, no unknown fields, argon2id only, and
//! uppercase hex, so that printing a parsed secret gives back the same line.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::scramble::native_double_hash;

/// The prefix naming this format's version.
const PREFIX: &str = "gh1:";
/// argon2 memory cost (KiB) of newly generated secrets.
const M_COST_KIB: u32 = 12 * 1024;
/// argon2 passes of newly generated secrets.
const T_COST: u32 = 3;
/// argon2 lanes of newly generated secrets.
const P_COST: u32 = 1;
/// Salt length of newly generated secrets, in bytes.
const SALT_LEN: usize = 16;
/// Hash length of newly generated secrets, in bytes.
const OUTPUT_LEN: usize = 32;

/// Largest argon2 memory cost a stored secret may ask for, in KiB (256 MiB).
pub const MAX_M_COST_KIB: u32 = 256 * 1024;
/// Largest argon2 time cost (passes) a stored secret may ask for.
pub const MAX_T_COST: u32 = 16;
/// Largest argon2 parallelism a stored secret may ask for.
pub const MAX_P_COST: u32 = 16;

/// An identity's secret, hashed: an argon2id hash and optionally the `mysql_native_password`
/// double SHA-1. See the [module docs](self) for the text form ([`Display`](fmt::Display) and
/// [`FromStr`]).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The argon2id PHC string, validated when parsed or generated.
    argon2: String,
    /// `SHA1(SHA1(pw))`, when the secret allows `mysql_native_password`.
    native: Option<[u8; 20]>,
}

/// Why a stored secret string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretParseError {
    /// It does not start with a `ghN:` version prefix.
    #[error("not a gatehouse secret: expected `gh1:argon2=$argon2id$...` as printed by `gatehouse hash-secret`")]
    NotASecret,
    /// A version prefix this build does not know.
    #[error("unsupported secret format `{0}:` (this gatehouse reads `gh1:`)")]
    UnsupportedVersion(String),
    /// Whitespace or control characters anywhere in the string.
    #[error("secret contains whitespace or control characters: paste it exactly as `gatehouse hash-secret` printed it")]
    Whitespace,
    /// A field other than the one expected at this position.
    #[error("expected field `{expected}=`, found `{found}`")]
    UnexpectedField {
        /// The field name expected here.
        expected: &'static str,
        /// What was there (up to its `=`, at most 32 characters).
        found: String,
    },
    /// More fields after `native=`.
    #[error(
        "unexpected field `{0}` after `native=` (a secret has at most `argon2=` and `native=`)"
    )]
    TooManyFields(String),
    /// The `argon2=` value is not an acceptable argon2id PHC string.
    #[error("argon2 hash: {0}")]
    Argon2(String),
    /// The `native=` value is not `*` and 40 uppercase hex digits.
    #[error("native hash: expected `*` and 40 uppercase hex digits, as MySQL's PASSWORD() prints")]
    Native,
}

impl StoredSecret {
    /// Hashes `password` into a new secret with a random salt from `rng`. With `with_native`, also keeps the `mysql_native_password` hash
    /// (see the module docs for what that costs). Takes one argon2 computation (~15–30 ms).
    pub fn generate(
        password: &str,
        rng: &mut impl rand::RngCore,
        with_native: bool,
    ) -> StoredSecret {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        StoredSecret::with_salt(password.as_bytes(), &salt, default_params(), with_native)
    }

    /// Deterministic core of [`generate`](Self::generate).
    fn with_salt(password: &[u8], salt: &[u8], params: Params, with_native: bool) -> StoredSecret {
        let salt = SaltString::encode_b64(salt).expect("salt length is within argon2's bounds");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password, &salt)
            .expect("validated parameters and salt")
            .to_string();
        let native = with_native.then(|| native_double_hash(password));
        StoredSecret { argon2, native }
    }

    /// A secret of a fixed decoy password with the same argon2 cost as `like` (default cost
    /// without one). Verifying against it costs what verifying a real secret costs: unknown
    /// users are checked against it, so timing does not tell which users exist.
    pub(crate) fn decoy(like: Option<&StoredSecret>) -> StoredSecret {
        let params = like
            .and_then(|s| Params::try_from(&PasswordHash::new(&s.argon2).ok()?).ok())
            .unwrap_or_else(default_params);
        StoredSecret::with_salt(
            b"gatehouse decoy password",
            b"gatehouse decoy!",
            params,
            false,
        )
    }

    /// Whether `password` is this secret's password (one argon2 computation, constant-time
    /// comparison).
    pub fn verify_cleartext(&self, password: &[u8]) -> bool {
        PasswordHash::new(&self.argon2)
            .and_then(|hash| Argon2::default().verify_password(password, &hash))
            .is_ok()
    }

    /// The `mysql_native_password` hash `SHA1(SHA1(pw))`, if this secret allows native logins.
    pub fn native_double_hash(&self) -> Option<[u8; 20]> {
        self.native
    }
}

impl fmt::Display for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}argon2={}", self.argon2)?;
        if let Some(native) = &self.native {
            write!(f, ";native=*{}", hex::encode_upper(native))?;
        }
        Ok(())
    }
}

/// Shows the argon2 cost and whether native is allowed, never the hashes.
impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = self.argon2.split('$').nth(3).unwrap_or("?");
        f.debug_struct("StoredSecret")
            .field("argon2id", &params)
            .field("native", &self.native.is_some())
            .finish_non_exhaustive()
    }
}

impl FromStr for StoredSecret {
    type Err = SecretParseError;

    fn from_str(s: &str) -> Result<StoredSecret, SecretParseError> {
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SecretParseError::Whitespace);
        }
        let Some(rest) = s.strip_prefix(PREFIX) else {
            return Err(match s.split_once(':') {
                Some((v, _)) if v.starts_with("gh") && v.len() <= 8 => {
                    SecretParseError::UnsupportedVersion(v.to_owned())
                }
                _ => SecretParseError::NotASecret,
            });
        };
        let mut fields = rest.split(';');
        let argon2 = parse_argon2(field(fields.next().unwrap_or(""), "argon2")?)?;
        let native = fields
            .next()
            .map(|f| parse_native(field(f, "native")?))
            .transpose()?;
        if let Some(extra) = fields.next() {
            return Err(SecretParseError::TooManyFields(field_name(extra)));
        }
        Ok(StoredSecret { argon2, native })
    }
}

/// The argon2 cost of newly generated secrets.
fn default_params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).expect("valid argon2 parameters")
}

/// The value of `key=value`, if the key is `key`.
fn field<'a>(text: &'a str, key: &'static str) -> Result<&'a str, SecretParseError> {
    match text.split_once('=') {
        Some((k, v)) if k == key => Ok(v),
        _ => Err(SecretParseError::UnexpectedField {
            expected: key,
            found: field_name(text),
        }),
    }
}

/// A field's name for error messages: up to its `=`, at most 32 characters.
fn field_name(text: &str) -> String {
    let name = text.split_once('=').map_or(text, |(k, _)| k);
    name.chars().take(32).collect()
}

fn parse_argon2(phc: &str) -> Result<String, SecretParseError> {
    let bad = |msg: String| Err(SecretParseError::Argon2(msg));
    let hash = match PasswordHash::new(phc) {
        Ok(hash) => hash,
        Err(e) => return bad(format!("not a PHC string ({e})")),
    };
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return bad(format!(
            "algorithm `{}`, expected `argon2id`",
            hash.algorithm
        ));
    }
    if hash.version != Some(Version::V0x13.into()) {
        return bad("expected version `v=19`".into());
    }
    let params = match Params::try_from(&hash) {
        Ok(params) => params,
        Err(e) => return bad(format!("parameters: {e}")),
    };
    if !params.keyid().is_empty() || !params.data().is_empty() {
        return bad("`keyid` and `data` parameters are not supported".into());
    }
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > MAX_M_COST_KIB || t > MAX_T_COST || p > MAX_P_COST {
        return bad(format!(
            "cost m={m},t={t},p={p} exceeds the limit m={MAX_M_COST_KIB},t={MAX_T_COST},p={MAX_P_COST}"
        ));
    }
    // 8 salt bytes are 11 base64 characters.
    if hash.salt.is_none_or(|salt| salt.len() < 11) {
        return bad("salt missing or shorter than 8 bytes".into());
    }
    if hash.hash.is_none_or(|out| out.len() < 16) {
        return bad("hash missing or shorter than 16 bytes".into());
    }
    Ok(phc.to_owned())
}

fn parse_native(text: &str) -> Result<[u8; 20], SecretParseError> {
    let hex_digits = text.strip_prefix('*').ok_or(SecretParseError::Native)?;
    let upper = |c: char| c.is_ascii_digit() || ('A'..='F').contains(&c);
    if hex_digits.len() != 40 || !hex_digits.chars().all(upper) {
        return Err(SecretParseError::Native);
    }
    let mut out = [0u8; 20];
    hex::decode_to_slice(hex_digits, &mut out).map_err(|_| SecretParseError::Native)?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    /// A secret with the cheapest argon2 cost, so debug-build tests stay fast.
    pub(crate) fn cheap_secret(password: &str, with_native: bool) -> StoredSecret {
        let params = Params::new(64, 1, 1, Some(32)).unwrap();
        StoredSecret::with_salt(
            password.as_bytes(),
            b"0123456789abcdef",
            params,
            with_native,
        )
    }

    /// `PASSWORD('secret')` on MariaDB 10.11 (see `scramble.rs`).
    const SECRET_NATIVE: &str = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7";

    /// The argon2 part is from the reference implementation (Debian package `argon2`):
    /// `echo -n secret | argon2 0123456789abcdef -id -m 6 -t 1 -p 1 -l 32 -e`.
    const CHEAP_SECRET: &str = "gh1:argon2=$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$\
                                pbviq+1UUgwZCmLIr4Hgk7mEMsxnRLuOb2HfvIaBwGY;native=*14E65567ABDB5135D0CFD9A70B3032C179A49EE7";

    #[test]
    fn generate_with_default_cost_verifies() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let secret = StoredSecret::generate("secret", &mut rng, true);
        let text = secret.to_string();
        assert!(
            text.starts_with("gh1:argon2=$argon2id$v=19$m=12288,t=3,p=1$"),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(";native={SECRET_NATIVE}")),
            "{text}"
        );
        assert!(secret.verify_cleartext(b"secret"));
        let other = StoredSecret::generate("secret", &mut rng, false);
        assert_ne!(secret.argon2, other.argon2, "salts differ");
        assert_eq!(other.native_double_hash(), None);
        assert!(!other.to_string().contains(";native="));
    }

    #[test]
    fn known_answer() {
        let secret: StoredSecret = CHEAP_SECRET.parse().unwrap();
        assert_eq!(secret, cheap_secret("secret", true));
        assert_eq!(secret.to_string(), CHEAP_SECRET);
        assert!(secret.verify_cleartext(b"secret"));
        assert!(!secret.verify_cleartext(b"secret\0"));
        assert!(!secret.verify_cleartext(b""));
        let native = secret.native_double_hash().unwrap();
        assert_eq!(format!("*{}", hex::encode_upper(native)), SECRET_NATIVE);
    }

    #[test]
    fn debug_hides_hashes() {
        let shown = format!("{:?}", cheap_secret("secret", true));
        assert_eq!(
            shown,
            r#"StoredSecret { argon2id: "m=64,t=1,p=1", native: true, .. }"#
        );
    }

    #[test]
    fn decoy_copies_the_cost() {
        let real = cheap_secret("secret", false);
        let decoy = StoredSecret::decoy(Some(&real));
        assert!(decoy.argon2.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(!decoy.verify_cleartext(b"secret"));
        let default = StoredSecret::decoy(None);
        assert!(default
            .argon2
            .starts_with("$argon2id$v=19$m=12288,t=3,p=1$"));
    }

    #[test]
    fn malformed_secrets_are_refused_with_reasons() {
        use SecretParseError as E;
        let good = cheap_secret("pw", false).to_string();
        let phc = good.strip_prefix("gh1:argon2=").unwrap();
        let with = |s: &str| s.replace("PHC", phc);
        let unexpected = |expected, found: &str| E::UnexpectedField {
            expected,
            found: found.into(),
        };
        let cases: Vec<(String, SecretParseError)> = vec![
            ("".into(), E::NotASecret),
            ("hunter2".into(), E::NotASecret),
            (phc.into(), E::NotASecret),
            (with("gh2:argon2=PHC"), E::UnsupportedVersion("gh2".into())),
            (with("GH1:argon2=PHC"), E::NotASecret),
            (with(" gh1:argon2=PHC"), E::Whitespace),
            (with("gh1:argon2=PHC\n"), E::Whitespace),
            (with("gh1:argon2=PHC; native=*00"), E::Whitespace),
            ("gh1:".into(), unexpected("argon2", "")),
            (with("gh1:PHC"), unexpected("argon2", "$argon2id$v")),
            (with("gh1:argon=PHC"), unexpected("argon2", "argon")),
            (
                with("gh1:native=*00;argon2=PHC"),
                unexpected("argon2", "native"),
            ),
            (with("gh1:argon2=PHC;"), unexpected("native", "")),
            (
                with("gh1:argon2=PHC;nativ=*00"),
                unexpected("native", "nativ"),
            ),
            (
                with(&format!("gh1:argon2=PHC;native={SECRET_NATIVE};x=1")),
                E::TooManyFields("x".into()),
            ),
            (
                with("gh1:argon2=PHC;native=*14e65567abdb5135d0cfd9a70b3032c179a49ee7"),
                E::Native,
            ),
            (
                with("gh1:argon2=PHC;native=14E65567ABDB5135D0CFD9A70B3032C179A49EE7"),
                E::Native,
            ),
            (
                with("gh1:argon2=PHC;native=*14E65567ABDB5135D0CFD9A70B3032C179A49EE"),
                E::Native,
            ),
            (
                with("gh1:argon2=PHC;native=*14E65567ABDB5135D0CFD9A70B3032C179A49EEG"),
                E::Native,
            ),
            (with("gh1:argon2=PHC;native=*"), E::Native),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<StoredSecret>(), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn bad_argon2_values_are_refused() {
        let salt = "$MDEyMzQ1Njc4OWFiY2RlZg$";
        let out = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; // 32 zero bytes
        let bad = [
            ("", "not a PHC string"),
            ("argon2id", "not a PHC string"),
            (
                &format!("$argon2i$v=19$m=64,t=1,p=1{salt}{out}"),
                "algorithm `argon2i`",
            ),
            (
                &format!("$argon2d$v=19$m=64,t=1,p=1{salt}{out}"),
                "algorithm `argon2d`",
            ),
            (
                &format!("$scrypt$ln=16,r=8,p=1{salt}{out}"),
                "algorithm `scrypt`",
            ),
            (
                &format!("$argon2id$v=16$m=64,t=1,p=1{salt}{out}"),
                "version",
            ),
            (&format!("$argon2id$m=64,t=1,p=1{salt}{out}"), "version"),
            (
                &format!("$argon2id$v=19$m=64,t=1,p=1,x=2{salt}{out}"),
                "parameters",
            ),
            (
                &format!("$argon2id$v=19$m=4,t=1,p=1{salt}{out}"),
                "parameters",
            ),
            (
                &format!("$argon2id$v=19$m=64,t=1,p=1,keyid=AAAA{salt}{out}"),
                "keyid",
            ),
            (
                &format!("$argon2id$v=19$m=262145,t=1,p=1{salt}{out}"),
                "exceeds the limit",
            ),
            (
                &format!("$argon2id$v=19$m=64,t=17,p=1{salt}{out}"),
                "exceeds the limit",
            ),
            (
                &format!("$argon2id$v=19$m=4096,t=1,p=17{salt}{out}"),
                "exceeds the limit",
            ),
            (&format!("$argon2id$v=19$m=64,t=1,p=1$c2FsdA${out}"), "salt"),
            (
                "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg",
                "hash missing",
            ),
            (
                &format!("$argon2id$v=19$m=64,t=1,p=1{salt}AAAAAAAAAAAAAAAAAAAA"),
                "hash missing",
            ),
        ];
        for (phc, reason) in bad {
            let err = format!("gh1:argon2={phc}")
                .parse::<StoredSecret>()
                .unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, SecretParseError::Argon2(_)), "{phc}: {msg}");
            assert!(msg.contains(reason), "{phc}: {msg}");
        }
        // The limits themselves are accepted.
        let max = format!("gh1:argon2=$argon2id$v=19$m=262144,t=16,p=16{salt}{out}");
        assert!(max.parse::<StoredSecret>().is_ok());
    }

    #[test]
    fn errors_read_well() {
        let err = "gh1:argon2=x;native=*00"
            .parse::<StoredSecret>()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("argon2 hash: not a PHC string"),
            "{err}"
        );
        let err = "gh9:whatever".parse::<StoredSecret>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported secret format `gh9:` (this gatehouse reads `gh1:`)"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn text_round_trip(password in "\\PC{0,40}", native: bool, seed: u64) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut salt = [0u8; SALT_LEN];
            rand::RngCore::fill_bytes(&mut rng, &mut salt);
            let params = Params::new(64, 1, 1, Some(32)).unwrap();
            let secret = StoredSecret::with_salt(password.as_bytes(), &salt, params, native);
            let text = secret.to_string();
            let parsed: StoredSecret = text.parse().unwrap();
            prop_assert_eq!(&parsed, &secret);
            prop_assert_eq!(parsed.to_string(), text);
            prop_assert!(parsed.verify_cleartext(password.as_bytes()));
            prop_assert_eq!(
                parsed.native_double_hash(),
                native.then(|| native_double_hash(password.as_bytes()))
            );
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,120}") {
            let _ = text.parse::<StoredSecret>();
        }

        #[test]
        fn parse_never_panics_near_valid(cut in 0usize..140, byte in 0x20u8..0x7f) {
            let mut text = CHEAP_SECRET.as_bytes().to_vec();
            let cut = cut.min(text.len());
            text.truncate(cut);
            text.push(byte);
            let _ = String::from_utf8(text).unwrap().parse::<StoredSecret>();
        }
    }
}
