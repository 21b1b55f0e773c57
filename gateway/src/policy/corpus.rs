//! The statement → decision corpus (`policies/tests/corpus.txt`, format described at its top)
//! run against the example policies through [`PolicyGate::decide_verbose`], as a session asks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::Identity;
use crate::session::phases::{CommandContext, Decision};
use crate::sql::{Mode, Server};
use crate::wire::command::{CommandPacket, StmtExecute};

use super::{Action, PolicyGate, Verdict};

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Query,
    Prepare,
    Execute,
    InitDb,
    FieldList,
    Kill,
    Refresh,
    Shutdown,
    Debug,
    ProcessInfo,
    Ping,
    Statistics,
}

struct State {
    identity: Identity,
    target: String,
    db: Option<String>,
    mode: Option<Mode>,
    server: Server,
    command: Cmd,
}

/// What a line expects.
struct Expect<'a> {
    action: &'a str,
    who: Option<&'a str>,
    audit: Option<&'a str>,
}

fn parse_expect(s: &str) -> Expect<'_> {
    let mut parts = s.split_whitespace();
    let head = parts.next().unwrap_or("");
    let audit = parts.next().map(|a| {
        a.strip_prefix("+audit:")
            .unwrap_or_else(|| panic!("bad audit expectation {a:?}"))
    });
    let (action, who) = match head.split_once(':') {
        Some((a, w)) => (a, Some(w)),
        None => (head, None),
    };
    Expect { action, who, audit }
}

/// Checks one decision against its expectation; `Err` says how it differs.
fn check(
    expect: &Expect<'_>,
    decision: &Decision,
    verdicts: &[Arc<Verdict>],
) -> Result<(), String> {
    let refusal = match decision {
        Decision::Allow => None,
        Decision::Refuse { message, .. } => Some(message.as_str()),
        Decision::Hold { .. } => return Err("held".into()),
    };
    let named = |rule: &str| format!("rule \"{rule}\"");
    match (expect.action, refusal) {
        ("allow" | "mask", Some(m)) => return Err(format!("refused: {m}")),
        ("deny" | "approve", None) => {
            let v: Vec<String> = verdicts.iter().map(|v| v.message.clone()).collect();
            return Err(format!("allowed: {v:?}"));
        }
        ("allow", None) => {
            if let Some(rule) = expect.who {
                if !verdicts
                    .iter()
                    .any(|v| v.action == Action::Allow && v.rule.as_deref() == Some(rule))
                {
                    return Err(format!("allowed, but not by rule {rule:?}: {verdicts:?}"));
                }
            }
        }
        ("mask", None) => {
            let rule = expect.who.expect("mask:RULE");
            if !verdicts
                .iter()
                .any(|v| v.action == Action::Mask && v.rule.as_deref() == Some(rule))
            {
                return Err(format!("allowed, but not masked by {rule:?}: {verdicts:?}"));
            }
        }
        ("deny", Some(m)) => match expect.who {
            Some("*") => {}
            Some("default") if m.contains("no rule or grant") => {}
            Some("unanalysed") if m.contains("could not be analysed") => {}
            Some("no-role") if m.contains("has no role") => {}
            Some(rule) if m.contains(" denied by ") && m.contains(&named(rule)) => {}
            _ => return Err(format!("refused differently: {m}")),
        },
        ("approve", Some(m)) => {
            let rule = expect.who.expect("approve:RULE");
            if !(m.contains("requires approval") && m.contains(&named(rule))) {
                return Err(format!("refused differently: {m}"));
            }
        }
        (other, _) => return Err(format!("bad expectation {other:?}")),
    }
    if let Some(rule) = expect.audit {
        if !verdicts
            .iter()
            .any(|v| v.audit.iter().any(|h| h.rule == rule))
        {
            return Err(format!("audit rule {rule:?} did not match: {verdicts:?}"));
        }
    }
    Ok(())
}

#[test]
fn corpus() {
    let gate = PolicyGate::load(&[policies_dir()]).expect("example policies load");
    let path = policies_dir().join("tests/corpus.txt");
    let text = std::fs::read_to_string(&path).expect("read the corpus");
    let mut st = State {
        identity: Identity {
            name: String::new(),
            groups: Vec::new(),
        },
        target: String::new(),
        db: None,
        mode: Some(Mode::DEFAULT),
        server: Server::MariaDb { version_id: None },
        command: Cmd::Query,
    };
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut query_cases = 0;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(directive) = line.strip_prefix('@') {
            let (word, rest) = directive.split_once(' ').unwrap_or((directive, ""));
            match word {
                "as" => {
                    let mut words = rest.split_whitespace();
                    st.identity = Identity {
                        name: words.next().expect("@as NAME").to_owned(),
                        groups: Vec::new(),
                    };
                    st.target = "primary".into();
                    st.db = None;
                    for w in words {
                        let (k, v) = w.split_once('=').expect("key=value");
                        match k {
                            "groups" => {
                                st.identity.groups = v
                                    .split(',')
                                    .filter(|g| !g.is_empty())
                                    .map(str::to_owned)
                                    .collect()
                            }
                            "target" => st.target = v.to_owned(),
                            "db" => st.db = (v != "-").then(|| v.to_owned()),
                            _ => panic!("line {n}: unknown @as key {k}"),
                        }
                    }
                }
                "db" => st.db = (rest != "-").then(|| rest.to_owned()),
                "mode" => {
                    st.mode = match rest {
                        "unknown" => None,
                        "default" => Some(Mode::DEFAULT),
                        m => Some(Mode::DEFAULT.with_sql_mode(m)),
                    }
                }
                "server" => st.server = Server::from_version_string(rest).expect("@server VERSION"),
                "command" => {
                    st.command = match rest {
                        "query" => Cmd::Query,
                        "prepare" => Cmd::Prepare,
                        "execute" => Cmd::Execute,
                        "init_db" => Cmd::InitDb,
                        "field_list" => Cmd::FieldList,
                        "kill" => Cmd::Kill,
                        "refresh" => Cmd::Refresh,
                        "shutdown" => Cmd::Shutdown,
                        "debug" => Cmd::Debug,
                        "process_info" => Cmd::ProcessInfo,
                        "ping" => Cmd::Ping,
                        "statistics" => Cmd::Statistics,
                        other => panic!("line {n}: unknown command {other}"),
                    }
                }
                other => panic!("line {n}: unknown directive @{other}"),
            }
            continue;
        }
        let (expect, sql) = line
            .split_once(" | ")
            .unwrap_or_else(|| panic!("line {n}: expected `EXPECT | TEXT`"));
        let sql = sql.replace("\\n", "\n").replace("\\t", "\t");
        let expect = parse_expect(expect.trim());
        let bytes = sql.as_bytes();
        let command = match st.command {
            Cmd::Query => CommandPacket::Query { sql: bytes },
            Cmd::Prepare => CommandPacket::StmtPrepare { sql: bytes },
            Cmd::Execute => CommandPacket::StmtExecute(StmtExecute {
                stmt_id: 1,
                flags: 0,
                iteration_count: 1,
                params: &[],
            }),
            Cmd::InitDb => CommandPacket::InitDb { schema: bytes },
            Cmd::FieldList => CommandPacket::FieldList {
                table: bytes,
                wildcard: b"",
            },
            Cmd::Kill => CommandPacket::ProcessKill { connection_id: 5 },
            Cmd::Refresh => CommandPacket::Refresh { options: 1 },
            Cmd::Shutdown => CommandPacket::Shutdown { level: None },
            Cmd::Debug => CommandPacket::Debug,
            Cmd::ProcessInfo => CommandPacket::ProcessInfo,
            Cmd::Ping => CommandPacket::Ping,
            Cmd::Statistics => CommandPacket::Statistics,
        };
        let prepared = (st.command == Cmd::Execute && sql != "-").then_some(bytes);
        let ctx = CommandContext {
            session_id: 1,
            identity: &st.identity,
            database: st.db.as_deref(),
            target: &st.target,
            mode: st.mode,
            server: st.server,
            prepared_sql: prepared,
        };
        // Twice: the second is a cache hit and must decide the same.
        let (decision, verdicts) = gate.decide_verbose(&ctx, &command);
        let (again, _) = gate.decide_verbose(&ctx, &command);
        cases += 1;
        if matches!(st.command, Cmd::Query | Cmd::Prepare | Cmd::Execute) {
            query_cases += 1;
        }
        if let Err(e) = check(&expect, &decision, &verdicts) {
            failures.push(format!("corpus.txt:{n}: {line}\n    {e}"));
        } else if again != decision {
            failures.push(format!(
                "corpus.txt:{n}: {line}\n    cached decision differs: {again:?}"
            ));
        }
        if let Decision::Refuse { code, .. } = &decision {
            assert_eq!(code.sqlstate, "42000", "line {n}");
            if st.command != Cmd::Execute || sql != "-" {
                assert!(
                    matches!(code.code, 1142 | 1227),
                    "line {n}: code {}",
                    code.code
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} corpus cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(query_cases >= 150, "only {query_cases} statement cases");
    assert!(gate.cached_decisions() > 0);
}
