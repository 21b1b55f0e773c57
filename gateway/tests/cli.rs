//! The `gatehouse` binary, run as a user runs it: `--version`, `check-config` on the example and
//! on broken files (each error must name the right file:line:col and say what is wrong), and
//! `hash-secret`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use gatehouse::auth::secret::StoredSecret;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../gatehouse.example.toml")
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `hash-secret` output for `password`.
fn hash_secret(password: &str, native: bool) -> String {
    let args: &[&str] = if native {
        &["hash-secret", "--native"]
    } else {
        &["hash-secret"]
    };
    let out = run(args, password.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    stdout.trim_end().to_owned()
}

/// A valid configuration with one listener, target and identity.
fn base_config() -> String {
    format!(
        r#"# A test configuration.
[[listener]]
name = "main"
address = "127.0.0.1:3307"
target = "primary"

[[target]]
name = "primary"
address = "127.0.0.1:3306"
user = "app"
password_env = "GATEHOUSE_PRIMARY_PASSWORD"

[[identity]]
name = "alice"
groups = ["dev"]
secret = "{}"
"#,
        hash_secret("alice-secret", false)
    )
}

/// `line:col` (1-based) of byte `offset` in `text`.
fn place_at(text: &str, offset: usize) -> String {
    let line = text[..offset].matches('\n').count() + 1;
    let col = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{line}:{col}")
}

/// `line:col` of the first `needle` in `text`.
fn place(text: &str, needle: &str) -> String {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in config"));
    place_at(text, offset)
}

/// `line:col` of the last `needle` in `text`.
fn place_last(text: &str, needle: &str) -> String {
    let offset = text
        .rfind(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in config"));
    place_at(text, offset)
}

/// Runs `check-config` on `config`, expects failure, returns stderr.
fn check_fails(scratch: &Scratch, config: &str) -> (PathBuf, String) {
    let path = scratch.write("gatehouse.toml", config);
    let out = run(&["check-config", path.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1), "accepted:\n{config}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    (path, text(&out.stderr))
}

fn assert_has(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "{haystack}\n  does not contain\n{needle}"
    );
}

#[test]
fn version() {
    let out = run(&["--version"], b"");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("gatehouse {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_commands_and_explains_native() {
    let out = run(&["--help"], b"");
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in ["serve", "check-config", "hash-secret"] {
        assert_has(&help, command);
    }
    let out = run(&["hash-secret", "--help"], b"");
    assert_has(&text(&out.stdout), "Weaker");
}

#[test]
fn example_config_is_valid() {
    let path = example();
    let out = run(&["check-config", path.to_str().unwrap()], b"");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!("{}: ok\n", path.display())),
        "{stdout}"
    );
    assert_has(&stdout, "1 listener: main 127.0.0.1:3307 -> primary");
    assert_has(&stdout, "1 target: primary app@127.0.0.1:3306");
    assert_has(&stdout, "1 identity");
}

#[test]
fn example_secret_is_alice_secret() {
    let example = std::fs::read_to_string(example()).unwrap();
    let line = example
        .lines()
        .find_map(|l| l.strip_prefix("secret = \""))
        .expect("secret line");
    let secret: StoredSecret = line.trim_end_matches('"').parse().unwrap();
    assert!(secret.verify_cleartext(b"alice-secret"));
    assert!(!secret.verify_cleartext(b"alice-secreT"));
    assert!(secret.native_double_hash().is_some());
}

#[test]
fn unknown_key() {
    let s = Scratch::new();
    let config = base_config().replace("user = \"app\"\n", "user = \"app\"\npasword_env = \"X\"\n");
    let (path, err) = check_fails(&s, &config);
    assert_has(
        &err,
        &format!(
            "{}:{}: unknown key `pasword_env` in [[target]] \"primary\"; expected one of",
            path.display(),
            place(&config, "pasword_env")
        ),
    );
    assert_has(&err, "`password_env`");
    assert_has(&err, &format!("{}: 1 error\n", path.display()));
}

#[test]
fn missing_target() {
    let s = Scratch::new();
    let config = base_config().replace("target = \"primary\"", "target = \"replica\"");
    let (path, err) = check_fails(&s, &config);
    assert_has(
        &err,
        &format!(
            "{}:{}: [[listener]] \"main\": target \"replica\" is not defined; \
             expected the name of a [[target]] (\"primary\")",
            path.display(),
            place(&config, "\"replica\"")
        ),
    );
}

#[test]
fn duplicate_identity() {
    let s = Scratch::new();
    let config = format!(
        "{}\n[[identity]]\nname = \"alice\"\nsecret = \"{}\"\n",
        base_config(),
        hash_secret("other", false)
    );
    let (path, err) = check_fails(&s, &config);
    let first_line = place(&config, "name = \"alice\"");
    let first_line = first_line.split(':').next().unwrap();
    assert_has(
        &err,
        &format!(
            "{}:{}: duplicate [[identity]] name \"alice\" (first defined at line {first_line}); \
             identity names must be unique",
            path.display(),
            place_last(&config, "\"alice\""),
        ),
    );
}

#[test]
fn bad_secret() {
    let s = Scratch::new();
    let config = base_config();
    let start = config.find("secret = \"").unwrap() + "secret = \"".len();
    let end = start + config[start..].find('"').unwrap();
    let config = format!("{}hunter2{}", &config[..start], &config[end..]);
    let (path, err) = check_fails(&s, &config);
    assert_has(
        &err,
        &format!(
            "{}:{}: [[identity]] \"alice\": invalid secret: not a gatehouse secret",
            path.display(),
            place(&config, "\"hunter2\"")
        ),
    );
    assert_has(&err, "`gatehouse hash-secret`");
}

#[test]
fn missing_cert_file() {
    let s = Scratch::new();
    let key = s.write("key.pem", "not used: the certificate is missing\n");
    let config = base_config().replace(
        "target = \"primary\"\n",
        &format!(
            "target = \"primary\"\n[listener.tls]\ncert = \"missing.crt\"\nkey = {:?}\n",
            key.display()
        ),
    );
    let (path, err) = check_fails(&s, &config);
    assert_has(
        &err,
        &format!(
            "{}:{}: [[listener]] \"main\": tls.cert {}: cannot read: ",
            path.display(),
            place(&config, "\"missing.crt\""),
            s.0.join("missing.crt").display()
        ),
    );
    // The key exists but is not a key: also reported, in the same run.
    assert_has(&err, "tls.key ");
    assert_has(&err, "no PEM private key");
    assert_has(&err, &format!("{}: 2 errors\n", path.display()));
}

#[test]
fn every_error_is_reported() {
    let s = Scratch::new();
    let config = base_config()
        .replace("target = \"primary\"", "target = \"replica\"")
        .replace("127.0.0.1:3306", "db1")
        + "\n[limits]\nmax_packet_size = 10\n";
    let (path, err) = check_fails(&s, &config);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    let p = path.display().to_string();
    assert!(lines[0].starts_with(&format!("{p}:{}: ", place(&config, "\"replica\""))));
    assert!(lines[1].starts_with(&format!("{p}:{}: ", place(&config, "\"db1\""))));
    assert!(lines[2].starts_with(&format!("{p}:{}: ", place_last(&config, "10\n"))));
    assert_eq!(lines[3], format!("{p}: 3 errors"));
}

#[test]
fn unreadable_config_file() {
    let s = Scratch::new();
    let path = s.0.join("nope.toml");
    let out = run(&["check-config", path.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_has(
        &text(&out.stderr),
        &format!("{}: No such file", path.display()),
    );
}

#[test]
fn hash_secret_round_trips_and_config_accepts_it() {
    for native in [false, true] {
        let line = hash_secret("correct horse battery staple", native);
        let secret: StoredSecret = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(secret.to_string(), line);
        assert!(secret.verify_cleartext(b"correct horse battery staple"));
        assert_eq!(secret.native_double_hash().is_some(), native);

        let s = Scratch::new();
        let config = base_config().replace(
            "[[identity]]\n",
            &format!("[[identity]]\nname = \"bob\"\nsecret = \"{line}\"\n\n[[identity]]\n"),
        );
        let path = s.write("gatehouse.toml", &config);
        let out = run(&["check-config", path.to_str().unwrap()], b"");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_has(&text(&out.stdout), "2 identities");
    }
}

#[test]
fn hash_secret_reads_one_line() {
    // A trailing newline (as `echo` writes) is not part of the password; later lines are
    // ignored.
    let line = hash_secret("pw\nsecond line\n", false);
    let secret: StoredSecret = line.parse().unwrap();
    assert!(secret.verify_cleartext(b"pw"));
    let out = run(&["hash-secret"], b"\n");
    assert_eq!(out.status.code(), Some(1));
    assert_has(&text(&out.stderr), "empty password");
    assert!(out.stdout.is_empty());
}

#[test]
fn serve_reports_config_errors() {
    let s = Scratch::new();
    let path = s.write("gatehouse.toml", "[[listener]]\nname = \"x\"\n");
    let out = run(&["serve", "--config", path.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_has(
        &text(&out.stderr),
        &format!(
            "{}:1:1: missing key `address` in [[listener]] \"x\"",
            path.display()
        ),
    );
}

#[test]
fn serve_rejects_unknown_io_driver() {
    let path = example();
    let out = run(
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--io",
            "kqueue",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_has(&text(&out.stderr), "possible values: auto, uring, epoll");
}
