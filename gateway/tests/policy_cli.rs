//! `gatehouse policy check` and `gatehouse policy explain`, run as a platform engineer runs
//! them: on the example policies and on broken files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run gatehouse")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_the_examples() {
    let dir = policies();
    let out = run(&["policy", "check", dir.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    for file in ["agents.toml", "analytics-readonly.toml", "dba.toml"] {
        assert!(
            stdout.lines().any(|l| l.ends_with(&format!("{file}: ok"))),
            "{stdout}"
        );
    }
    assert!(stdout.contains("in audit mode"), "{stdout}");
}

#[test]
fn check_prints_every_problem_with_its_place() {
    let dir = std::env::temp_dir().join(format!("gatehouse-policy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(
        &file,
        "[[role]]\nname = \"r\"\ngroups = [\"g\"]\n\n[[rule]]\nname = \"a\"\nroles = [\"nobody\"]\n\
         action = \"deny\"\noperations = [\"drop_tabel\"]\n",
    )
    .unwrap();
    let path = file.to_str().unwrap().to_owned();
    let out = run(&["policy", "check", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{path}:9:15: unknown operation \"drop_tabel\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{path}:7:10: unknown role \"nobody\"")),
        "{stderr}"
    );
    assert!(stderr.contains("policy: 2 errors"), "{stderr}");

    let out = run(&["policy", "check", "/nonexistent/policy.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/policy.toml: cannot read"));
}

#[test]
fn explain_prints_analysis_and_decision() {
    let dir = policies();
    let out = run(&[
        "policy",
        "explain",
        "--policy",
        dir.to_str().unwrap(),
        "--identity",
        "analytics-bot",
        "--target",
        "primary",
        "--db",
        "shop",
        "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id; DROP TABLE orders",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    for want in [
        "roles analytics-agent",
        "statement 1: SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id",
        "  class:     read",
        "  operation: select",
        "  reads:     shop.orders, shop.customers",
        "  decision:  mask by rule \"mask-customer-contacts\" (role analytics-agent)",
        "statement 2: DROP TABLE orders",
        "  digest:    DROP TABLE orders",
        "  class:     ddl",
        "  writes:    shop.orders",
        "  decision:  deny by rule \"no-destructive-ddl\" (role analytics-agent), enforce",
        "query: refused, ERR 1142 (42000): gatehouse: DROP TABLE on shop.orders denied by rule \
         \"no-destructive-ddl\" (role analytics-agent)",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }

    // ANSI_QUOTES changes what "secrets" is: a string, or a database name.
    let explain = |extra: &[&str]| {
        let mut args = vec![
            "policy",
            "explain",
            "-p",
            dir.to_str().unwrap(),
            "--identity",
            "agent-1",
            "--group",
            "ai-agents",
        ];
        args.extend_from_slice(extra);
        args.push("SELECT * FROM \"secrets\".kv");
        text(&run(&args).stdout)
    };
    let plain = explain(&[]);
    assert!(plain.contains("digest:    SELECT * FROM ? .kv"), "{plain}");
    let ansi = explain(&["--ansi-quotes"]);
    assert!(
        ansi.contains("digest:    SELECT * FROM secrets.kv"),
        "{ansi}"
    );
    assert!(ansi.contains("reads:     secrets.kv"), "{ansi}");
    assert!(ansi.contains("rule \"no-secret-schemas\""), "{ansi}");

    // No role.
    let out = run(&[
        "policy",
        "explain",
        "-p",
        dir.to_str().unwrap(),
        "--identity",
        "mallory",
        "SELECT 1",
    ]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("no role"), "{stdout}");
    assert!(stdout.contains("query: refused, ERR 1227"), "{stdout}");
}
