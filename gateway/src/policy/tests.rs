//! Unit tests of loading, validation, evaluation, the gate, its cache and reloading. The
//! table-driven corpus against the example policies is in `corpus.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Identity;
use crate::session::phases::{CommandContext, CommandGate, Decision};
use crate::sql::{analyze, Context, Mode, Server};
use crate::wire::command::{CommandPacket, StmtExecute};
use crate::wire::ErrorCode;

use super::*;

fn policy(text: &str) -> PolicySet {
    PolicySet::from_sources(&[("p.toml", text)]).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn errors(sources: &[(&str, &str)]) -> Vec<String> {
    match PolicySet::from_sources(sources) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn subject<'a>(identity: &'a str, groups: &'a [String], target: &'a str) -> Subject<'a> {
    Subject {
        identity,
        groups,
        target,
    }
}

fn decide(p: &PolicySet, identity: &str, groups: &[&str], sql: &str) -> Verdict {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let analysis = analyze(sql, &Context::new(Some("shop")));
    p.evaluate(&subject(identity, &groups, "primary"), &analysis)
}

const BASIC: &str = r#"
[[role]]
name = "analytics-agent"
identities = ["analytics-*"]
groups = ["analysts"]
[[role.grant]]
targets = ["*"]
classes = ["read", "show"]

[[role]]
name = "writer"
groups = ["writers"]
[[role.grant]]
targets = ["primary"]
classes = ["read", "write"]
tables = ["shop.*"]

[[rule]]
name = "no-destructive-ddl"
roles = ["analytics-agent", "writer"]
action = "deny"
operations = ["drop_table", "truncate"]

[[rule]]
name = "audit-big-deletes"
roles = ["writer"]
action = "deny"
mode = "audit"
operations = ["delete"]

[[rule]]
name = "mask-customers"
action = "mask"
tables = ["shop.customers"]

[[rule]]
name = "allow-refresh"
roles = ["analytics-agent"]
action = "allow"
procedures = ["shop.refresh_*"]

[[rule]]
name = "alter-approval"
action = "approve"
operations = ["alter_table"]
"#;

#[test]
fn the_issue_message() {
    let p = policy(BASIC);
    let v = decide(&p, "analytics-bot", &[], "DROP TABLE orders");
    assert_eq!(v.action, Action::Deny);
    assert_eq!(
        v.message,
        "gatehouse: DROP TABLE on shop.orders denied by rule \"no-destructive-ddl\" (role \
         analytics-agent)"
    );
    assert_eq!(v.rule.as_deref(), Some("no-destructive-ddl"));
    assert_eq!(v.role.as_deref(), Some("analytics-agent"));
    assert_eq!(v.code, ErrorCode::ER_TABLEACCESS_DENIED_ERROR);
    assert_eq!((v.code.code, v.code.sqlstate), (1142, "42000"));
}

#[test]
fn default_deny_and_codes() {
    let p = policy(BASIC);
    // Not granted, no tables: 1227.
    let v = decide(&p, "analytics-bot", &[], "KILL 5");
    assert_eq!(v.action, Action::Deny);
    assert_eq!(v.rule, None);
    assert_eq!(v.code, ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR);
    assert!(
        v.message
            .starts_with("gatehouse: KILL denied: no rule or grant of role analytics-agent"),
        "{}",
        v.message
    );
    // Not granted, with tables: 1142.
    let v = decide(&p, "analytics-bot", &[], "INSERT INTO orders VALUES (1)");
    assert_eq!(v.action, Action::Deny);
    assert_eq!(v.code.code, 1142);
    // Granted.
    let v = decide(&p, "analytics-bot", &[], "SELECT * FROM orders");
    assert_eq!(v.action, Action::Allow);
    assert_eq!(v.role.as_deref(), Some("analytics-agent"));
    // No role at all.
    let v = decide(&p, "mallory", &["nobody"], "SELECT 1");
    assert_eq!(v.action, Action::Deny);
    assert!(v.message.contains("has no role"), "{}", v.message);
    // By group.
    let v = decide(&p, "bob", &["analysts"], "SELECT 1");
    assert_eq!(v.action, Action::Allow);
}

#[test]
fn grant_tables_and_targets() {
    let p = policy(BASIC);
    let groups = vec!["writers".to_string()];
    let on = |target: &str, sql: &str| {
        let a = analyze(sql, &Context::new(Some("shop")));
        p.evaluate(&subject("w", &groups, target), &a).action
    };
    assert_eq!(
        on("primary", "INSERT INTO orders VALUES (1)"),
        Action::Allow
    );
    assert_eq!(on("primary", "SELECT 1"), Action::Allow);
    assert_eq!(on("primary", "INSERT INTO crm.x VALUES (1)"), Action::Deny);
    assert_eq!(
        on("primary", "INSERT INTO orders SELECT * FROM crm.x"),
        Action::Deny
    );
    // Grant only on primary.
    assert_eq!(on("replica", "SELECT * FROM orders"), Action::Deny);
}

#[test]
fn audit_rules_report_and_do_not_decide() {
    let p = policy(BASIC);
    let v = decide(&p, "w", &["writers"], "DELETE FROM orders WHERE id = 1");
    assert_eq!(v.action, Action::Allow);
    assert_eq!(v.mode, RuleMode::Audit);
    assert_eq!(v.audit.len(), 1);
    assert_eq!(v.audit[0].rule, "audit-big-deletes");
    assert_eq!(v.audit[0].action, Action::Deny);
    assert!(v.audit[0]
        .message
        .contains("denied by rule \"audit-big-deletes\""));
    let v = decide(&p, "w", &["writers"], "SELECT 1");
    assert_eq!(v.mode, RuleMode::Enforce);
    assert!(v.audit.is_empty());
}

#[test]
fn mask_marks_but_never_grants() {
    let p = policy(BASIC);
    let v = decide(&p, "analytics-x", &[], "SELECT email FROM customers");
    assert_eq!(v.action, Action::Mask);
    assert_eq!(v.rule.as_deref(), Some("mask-customers"));
    assert!(!v.refuses());
    // Writers may not read crm; mask on shop.customers does not change that.
    let v = decide(&p, "w", &["writers"], "SELECT * FROM customers JOIN crm.x");
    assert_eq!(v.action, Action::Deny);
}

#[test]
fn allow_rules_grant_beyond_classes() {
    let p = policy(BASIC);
    let v = decide(&p, "analytics-x", &[], "CALL shop.refresh_daily()");
    assert_eq!(v.action, Action::Allow);
    assert_eq!(v.rule.as_deref(), Some("allow-refresh"));
    let v = decide(&p, "analytics-x", &[], "CALL shop.purge()");
    assert_eq!(v.action, Action::Deny);
    // Exact case for what allows.
    let v = decide(&p, "analytics-x", &[], "CALL SHOP.refresh_daily()");
    assert_eq!(v.action, Action::Deny);
}

#[test]
fn approve_refuses_for_now() {
    let p = policy(BASIC);
    let v = decide(&p, "w", &["writers"], "ALTER TABLE orders ADD COLUMN x INT");
    assert_eq!(v.action, Action::Approve);
    assert!(v.refuses());
    assert_eq!(
        v.message,
        "gatehouse: ALTER TABLE on shop.orders requires approval by rule \"alter-approval\" \
         (role writer); approvals are not available yet, so it is refused"
    );
}

#[test]
fn first_matching_rule_decides() {
    let p = policy(
        r#"
[[role]]
name = "r"
identities = ["*"]
[[role.grant]]
targets = ["*"]
classes = ["read", "write", "ddl"]
[[rule]]
name = "allow-scratch-drops"
action = "allow"
operations = ["drop_table"]
tables = ["scratch.*"]
[[rule]]
name = "no-drops"
action = "deny"
operations = ["drop_table"]
"#,
    );
    let v = decide(&p, "x", &[], "DROP TABLE scratch.t");
    assert_eq!(
        (v.action, v.rule.as_deref()),
        (Action::Allow, Some("allow-scratch-drops"))
    );
    let v = decide(&p, "x", &[], "DROP TABLE shop.t");
    assert_eq!(
        (v.action, v.rule.as_deref()),
        (Action::Deny, Some("no-drops"))
    );
    // The allow rule is narrow: one table outside scratch and it does not match.
    let v = decide(&p, "x", &[], "DROP TABLE scratch.t, shop.t");
    assert_eq!(v.rule.as_deref(), Some("no-drops"));
}

#[test]
fn unanalyzable_needs_an_explicit_keyword() {
    let p = policy(
        r#"
[[role]]
name = "dba"
identities = ["dba"]
[[role.grant]]
targets = ["primary"]
classes = ["read"]
allow_unanalyzable = ["handler"]
"#,
    );
    let v = decide(&p, "dba", &[], "HANDLER t OPEN");
    assert_eq!(v.action, Action::Allow);
    let v = decide(&p, "dba", &[], "EXECUTE IMMEDIATE 'DROP TABLE t'");
    assert_eq!(v.action, Action::Deny);
    assert!(
        v.message
            .starts_with("gatehouse: statement could not be analysed: "),
        "{}",
        v.message
    );
    assert_eq!(v.code.code, 1227);
    let groups: Vec<String> = Vec::new();
    let a = analyze("HANDLER t OPEN", &Context::new(None));
    assert_eq!(
        p.evaluate(&subject("dba", &groups, "replica"), &a).action,
        Action::Deny
    );
}

#[test]
fn load_errors_are_located() {
    let text = r#"[[role]]
name = "r"
identities = ["agent-[x"]
[[role.grant]]
targets = ["*"]
classes = ["read", "reads"]
allow_unanalyzable = ["EXECUTE"]

[[rule]]
name = "a"
roles = ["r", "ghost"]
action = "deny"
operations = ["drop_table", "drop_tabel"]
tables = ["shop"]
flags = ["no_where", "nowhere"]

[[rule]]
name = "b"
action = "block"
mode = "dry-run"
classes = []
"#;
    let e = errors(&[("p.toml", text)]);
    let expected = [
        "p.toml:3:15: bad pattern: pattern `agent-[x` has a `[` without its closing `]`",
        "p.toml:6:20: unknown statement class \"reads\"; expected one of: read, write, ddl, \
         dcl, admin, transaction, session, show",
        "p.toml:7:23: EXECUTE cannot be allowed unanalysed",
        "p.toml:13:29: unknown operation \"drop_tabel\"",
        "p.toml:14:11: bad pattern: table pattern `shop` must be `schema.table`",
        "p.toml:15:22: unknown flag \"nowhere\"; expected one of: no_where,",
        "p.toml:19:10: unknown action \"block\"",
        "p.toml:20:8: unknown mode \"dry-run\"",
        "p.toml:21:11: `classes` is empty",
        "p.toml:11:15: unknown role \"ghost\" in rule \"a\"; defined roles: r",
    ];
    for want in expected {
        assert!(
            e.iter().any(|got| got.starts_with(want)),
            "missing {want:?} in:\n{}",
            e.join("\n")
        );
    }
    assert_eq!(e.len(), expected.len(), "{}", e.join("\n"));
}

#[test]
fn syntax_and_unknown_keys() {
    let e = errors(&[("p.toml", "[[role]]\nname = \"r\"\nidentites = [\"x\"]\n")]);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("p.toml:3:1: unknown field `identites`"),
        "{}",
        e[0]
    );
    let e = errors(&[("p.toml", "[[rule]]\nname = \"r\"\naction = deny\n")]);
    assert!(e[0].starts_with("p.toml:3:10: "), "{}", e[0]);
    let e = errors(&[("p.toml", "[[rule]]\nname = \"r\"\n")]);
    assert!(e[0].contains("missing field `action`"), "{}", e[0]);
}

#[test]
fn duplicates_across_files() {
    let a = "[[role]]\nname = \"r\"\ngroups = [\"g\"]\n[[rule]]\nname = \"x\"\naction = \"deny\"\nclasses = [\"ddl\"]\n";
    let b = "\n[[role]]\nname = \"r\"\ngroups = [\"h\"]\n[[rule]]\nname = \"x\"\naction = \"deny\"\nclasses = [\"dcl\"]\n";
    let e = errors(&[("a.toml", a), ("b.toml", b)]);
    assert!(
        e.iter()
            .any(|m| m.starts_with("b.toml:3:8: duplicate role \"r\" (first defined at a.toml:2)")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("b.toml:6:8: duplicate rule \"x\" (first defined at a.toml:5)")),
        "{e:?}"
    );
    // Roles are shared across files.
    let c = "[[rule]]\nname = \"y\"\nroles = [\"r\"]\naction = \"deny\"\nclasses = [\"dcl\"]\n";
    assert!(PolicySet::from_sources(&[("a.toml", a), ("c.toml", c)]).is_ok());
}

#[test]
fn unreachable_rules() {
    let role =
        "[[role]]\nname = \"r\"\ngroups = [\"g\"]\n[[role]]\nname = \"s\"\ngroups = [\"h\"]\n";
    let check = |rules: &str| -> Vec<String> {
        let text = format!("{role}{rules}");
        match PolicySet::from_sources(&[("p.toml", &text)]) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    };
    // An exact duplicate.
    let e = check(
        "[[rule]]\nname = \"a\"\naction = \"deny\"\noperations = [\"drop_table\"]\n\
         [[rule]]\nname = \"b\"\naction = \"deny\"\noperations = [\"drop_table\"]\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "p.toml:12:8: rule \"b\" is unreachable: rule \"a\" (p.toml:8) comes first"
        ),
        "{}",
        e[0]
    );
    // Shadowed by a catch-all for the same role.
    let e = check(
        "[[rule]]\nname = \"all\"\nroles = [\"r\"]\naction = \"deny\"\n\
         [[rule]]\nname = \"b\"\nroles = [\"r\"]\naction = \"allow\"\ntables = [\"x.*\"]\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    // Shadowed by a superset: every operation, table pattern and role of the later one.
    let e = check(
        "[[rule]]\nname = \"a\"\naction = \"deny\"\noperations = [\"drop_table\", \"truncate\"]\ntables = [\"shop.*\"]\n\
         [[rule]]\nname = \"b\"\nroles = [\"s\"]\naction = \"approve\"\noperations = [\"truncate\"]\ntables = [\"shop.orders\"]\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    // Not shadowed: other role, narrower earlier rule, audit mode, mask, allow vs deny
    // patterns.
    for rules in [
        "[[rule]]\nname = \"a\"\nroles = [\"r\"]\naction = \"deny\"\n[[rule]]\nname = \"b\"\nroles = [\"s\"]\naction = \"deny\"\n",
        "[[rule]]\nname = \"a\"\naction = \"deny\"\ntables = [\"shop.orders\"]\n[[rule]]\nname = \"b\"\naction = \"deny\"\ntables = [\"shop.*\"]\n",
        "[[rule]]\nname = \"a\"\naction = \"deny\"\nmode = \"audit\"\n[[rule]]\nname = \"b\"\naction = \"deny\"\n",
        "[[rule]]\nname = \"a\"\naction = \"mask\"\n[[rule]]\nname = \"b\"\naction = \"deny\"\n",
        "[[rule]]\nname = \"a\"\naction = \"allow\"\ntables = [\"shop.*\"]\n[[rule]]\nname = \"b\"\naction = \"deny\"\ntables = [\"shop.*\"]\n",
        "[[rule]]\nname = \"a\"\naction = \"deny\"\ntargets = [\"primary\"]\n[[rule]]\nname = \"b\"\naction = \"deny\"\n",
        "[[rule]]\nname = \"a\"\naction = \"deny\"\nflags = [\"no_where\"]\n[[rule]]\nname = \"b\"\naction = \"deny\"\nflags = [\"no_where\", \"server_file\"]\n",
    ] {
        assert_eq!(check(rules), Vec::<String>::new(), "{rules}");
    }
}

#[test]
fn role_without_members_and_grant_without_content() {
    let e = errors(&[(
        "p.toml",
        "[[role]]\nname = \"r\"\n[[role.grant]]\ntargets = [\"*\"]\n",
    )]);
    assert!(
        e[0].starts_with("p.toml:2:8: role \"r\" has neither"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("p.toml:4:11: a grant of role \"r\" has neither"),
        "{e:?}"
    );
}

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

#[test]
fn every_example_policy_loads() {
    let dir = policies_dir();
    let p = PolicySet::load(&[&dir]).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            found += 1;
            let shown = path.display().to_string();
            assert!(p.files().contains(&shown), "{shown} not loaded");
        }
    }
    assert!(found >= 2, "example policies missing");
    assert!(p.role_names().count() >= 3);
    assert!(p.audit_rules() >= 1);
}

// ---------------------------------------------------------------------------------------------
// The gate

fn identity(name: &str, groups: &[&str]) -> Identity {
    Identity {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn ctx<'a>(id: &'a Identity, db: Option<&'a str>) -> CommandContext<'a> {
    CommandContext {
        session_id: 7,
        identity: id,
        database: db,
        target: "primary",
        mode: Some(Mode::DEFAULT),
        server: Server::MariaDb {
            version_id: Some(101106),
        },
        prepared_sql: None,
    }
}

fn query(sql: &str) -> CommandPacket<'_> {
    CommandPacket::Query {
        sql: sql.as_bytes(),
    }
}

#[test]
fn gate_decides_and_caches() {
    let gate = PolicyGate::new(policy(BASIC));
    let id = identity("analytics-bot", &[]);
    let c = ctx(&id, Some("shop"));
    assert_eq!(
        gate.decide(&c, &query("SELECT * FROM orders WHERE id = 1")),
        Decision::Allow
    );
    assert_eq!(gate.cached_decisions(), 1);
    // Same shape, other literal: a cache hit.
    assert_eq!(
        gate.decide(&c, &query("select * FROM orders where id = 99")),
        Decision::Allow
    );
    assert_eq!(gate.cached_decisions(), 1);
    // Other database: another key.
    let c2 = ctx(&id, Some("crm"));
    assert_eq!(
        gate.decide(&c2, &query("SELECT * FROM orders WHERE id = 1")),
        Decision::Allow
    );
    assert_eq!(gate.cached_decisions(), 2);
    match gate.decide(&c, &query("SELECT 1; DROP TABLE orders")) {
        Decision::Refuse { code, message } => {
            assert_eq!(code, ErrorCode::ER_TABLEACCESS_DENIED_ERROR);
            assert_eq!(
                message,
                "gatehouse: DROP TABLE on shop.orders denied by rule \"no-destructive-ddl\" \
                 (role analytics-agent)"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gate_commands() {
    let gate = PolicyGate::new(policy(BASIC));
    let id = identity("analytics-bot", &[]);
    let mut c = ctx(&id, Some("shop"));
    assert_eq!(gate.decide(&c, &CommandPacket::Ping), Decision::Allow);
    assert_eq!(
        gate.decide(&c, &CommandPacket::StmtClose { stmt_id: 1 }),
        Decision::Allow
    );
    let refused = |d: Decision| matches!(d, Decision::Refuse { .. });
    assert!(refused(
        gate.decide(&c, &CommandPacket::ProcessKill { connection_id: 1 })
    ));
    assert!(refused(
        gate.decide(&c, &CommandPacket::Shutdown { level: None })
    ));
    // USE is class session, which this role lacks.
    assert!(refused(
        gate.decide(&c, &CommandPacket::InitDb { schema: b"crm" })
    ));
    assert_eq!(
        gate.decide(
            &c,
            &CommandPacket::FieldList {
                table: b"orders",
                wildcard: b""
            }
        ),
        Decision::Allow
    );
    let exec = CommandPacket::StmtExecute(StmtExecute {
        stmt_id: 1,
        flags: 0,
        iteration_count: 1,
        params: &[],
    });
    // Unknown prepared SQL: fail closed.
    assert!(refused(gate.decide(&c, &exec)));
    c.prepared_sql = Some(b"SELECT * FROM orders WHERE id = ?");
    assert_eq!(gate.decide(&c, &exec), Decision::Allow);
    c.prepared_sql = Some(b"TRUNCATE orders");
    assert!(refused(gate.decide(&c, &exec)));
    assert!(refused(gate.decide(
        &c,
        &CommandPacket::StmtPrepare {
            sql: b"SELECT 1; SELECT 2"
        }
    )));
}

#[test]
fn gate_follows_mode_changes_within_a_query() {
    let p = policy(
        r#"
[[role]]
name = "r"
identities = ["*"]
[[role.grant]]
targets = ["*"]
classes = ["read", "session"]
[[rule]]
name = "no-secrets"
action = "deny"
tables = ["secrets.*"]
"#,
    );
    let gate = PolicyGate::new(p);
    let id = identity("x", &[]);
    let c = ctx(&id, Some("shop"));
    let refused = |sql: &str| matches!(gate.decide(&c, &query(sql)), Decision::Refuse { .. });
    assert!(!refused("SELECT 'a\\'; SELECT * FROM secrets.kv; -- '"));
    assert!(refused(
        "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'a\\'; SELECT * FROM secrets.kv; -- '"
    ));
    assert!(refused("USE secrets; SELECT * FROM kv"));
    assert!(refused(
        "SET sql_mode = 'ANSI_QUOTES'; SELECT * FROM \"secrets\".kv"
    ));
    assert!(refused("SET sql_mode = @x; SELECT \"a\""));
    assert!(!refused("SET sql_mode = @x; SELECT 1"));
    // A session whose mode the gateway lost.
    let mut lost = ctx(&id, Some("shop"));
    lost.mode = None;
    assert!(matches!(
        gate.decide(&lost, &query("SELECT \"a\"")),
        Decision::Refuse { .. }
    ));
    assert_eq!(gate.decide(&lost, &query("SELECT 1")), Decision::Allow);
}

#[test]
fn compound_statements_are_never_allowed_unanalysed() {
    let p = policy(
        r#"
[[role]]
name = "r"
identities = ["*"]
[[role.grant]]
targets = ["*"]
classes = ["read"]
allow_unanalyzable = ["CREATE", "BEGIN", "HANDLER"]
"#,
    );
    let gate = PolicyGate::new(p);
    let id = identity("x", &[]);
    let c = ctx(&id, Some("shop"));
    // The compound runs to the end of the query: the DROP would go through unseen.
    for sql in [
        "CREATE PROCEDURE p() BEGIN SELECT 1; END; DROP DATABASE shop",
        "BEGIN NOT ATOMIC SELECT 1; END; DROP DATABASE shop",
    ] {
        match gate.decide(&c, &query(sql)) {
            Decision::Refuse { message, .. } => {
                assert!(message.contains("compound statement"), "{message}")
            }
            Decision::Allow | Decision::Hold { .. } => panic!("{sql}: allowed"),
        }
    }
    assert_eq!(gate.decide(&c, &query("HANDLER t OPEN")), Decision::Allow);
    assert!(matches!(
        gate.decide(&c, &query("HANDLER t OPEN; SELECT 1")),
        Decision::Refuse { .. }
    ));
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("gatehouse-policy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ALLOW_READ: &str = "[[role]]\nname = \"r\"\nidentities = [\"*\"]\n[[role.grant]]\ntargets = [\"*\"]\nclasses = [\"read\"]\n";
const ALLOW_NOTHING: &str = "[[role]]\nname = \"r\"\nidentities = [\"*\"]\n[[role.grant]]\ntargets = [\"*\"]\nclasses = [\"ddl\"]\n";

#[test]
fn reload_swaps_and_keeps_the_old_policy_when_broken() {
    let dir = Scratch::new("reload");
    let file = dir.0.join("p.toml");
    std::fs::write(&file, ALLOW_READ).unwrap();
    let gate = PolicyGate::load(&[&dir.0]).unwrap();
    let id = identity("x", &[]);
    let c = ctx(&id, None);
    let v1 = gate.version();
    assert_eq!(gate.decide(&c, &query("SELECT 1")), Decision::Allow);
    assert_eq!(gate.reload_if_changed().map(|r| r.is_ok()), None);

    std::fs::write(&file, ALLOW_NOTHING).unwrap();
    let v2 = gate.reload().unwrap();
    assert!(v2 > v1);
    assert_eq!(gate.cached_decisions(), 0);
    assert!(matches!(
        gate.decide(&c, &query("SELECT 1")),
        Decision::Refuse { .. }
    ));

    // Broken: the previous policy stays, with its version.
    std::fs::write(&file, "[[role]]\nname = 3\n").unwrap();
    let e = gate.reload().unwrap_err();
    assert!(e[0].to_string().contains("p.toml:2:8"), "{e:?}");
    assert_eq!(gate.version(), v2);
    assert!(matches!(
        gate.decide(&c, &query("SELECT 1")),
        Decision::Refuse { .. }
    ));
    // Unchanged since the failed attempt: nothing to do.
    assert!(gate.reload_if_changed().is_none());
}

#[test]
fn watcher_reloads_on_change_and_stops_with_the_gate() {
    let dir = Scratch::new("watch");
    let file = dir.0.join("p.toml");
    std::fs::write(&file, ALLOW_READ).unwrap();
    let gate = Arc::new(PolicyGate::load(&[&file]).unwrap());
    let v1 = gate.version();
    let handle = spawn_watcher_every(gate.clone(), Duration::from_millis(10));
    std::fs::write(&file, format!("{ALLOW_NOTHING}\n# changed\n")).unwrap();
    let start = Instant::now();
    while gate.version() == v1 {
        assert!(start.elapsed() < Duration::from_secs(5), "no reload");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(gate);
    handle.join().unwrap();
}

#[test]
fn explain_keeps_every_statement() {
    let p = policy(BASIC);
    let groups = Vec::new();
    let e = p.explain(
        &subject("analytics-bot", &groups, "primary"),
        b"SELECT 1; DROP TABLE orders; SELECT * FROM orders",
        &ExplainContext {
            database: Some("shop"),
            mode: Mode::DEFAULT,
            server: Server::MariaDb { version_id: None },
            prepare: false,
        },
    );
    assert_eq!(e.roles, ["analytics-agent"]);
    assert_eq!(e.statements.len(), 3);
    assert_eq!(e.statements[1].database.as_deref(), Some("shop"));
    assert_eq!(e.statements[1].digest, "DROP TABLE orders");
    assert_eq!(e.statements[1].verdict.action, Action::Deny);
    assert_eq!(e.statements[2].verdict.action, Action::Allow);
    let (code, message) = e.refusal.unwrap();
    assert_eq!(code.code, 1142);
    assert!(message.contains("no-destructive-ddl"));
}
