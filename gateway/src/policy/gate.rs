//! [`PolicyGate`]: the session's [`CommandGate`] that decides every command by policy, with a
//! decision cache, hot reload and a file watcher.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use crate::session::phases::{CommandContext, CommandGate, Decision};
use crate::sql::{
    analyze, digest_all, Analysis, Charset, Context, DigestFlags, Flags, Mode, Operation, Server,
    SqlModeChange, StatementClass, StatementDigest, TableRef, Unanalyzable,
};
use crate::wire::command::CommandPacket;
use crate::wire::ErrorCode;

use super::cache::{DecisionCache, Entry, Key, StatementEffects};
use super::load::{expand, PolicyError};
use super::model::{Action, PolicySet, RoleSet, Subject, Verdict};

/// How many decisions the cache holds (about).
pub const CACHE_CAPACITY: usize = 16 * 1024;

/// How often [`spawn_watcher`] looks at the policy files.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The policy stage's [`CommandGate`]: decides every command a session sends by the policy in
/// force, caching decisions per statement shape.
///
/// * **COM_QUERY**: split into statements ([`crate::sql::split`]), each digested; each is looked
///   up in the decision cache by (policy version, the subject's roles, target, current
///   database, lexical mode, server, digest) and on a miss [`analyze`]d and
///   [evaluated](PolicySet::evaluate). The packet is refused if any statement is: none of it
///   reaches the server. A statement that changes the current database, `sql_mode` or the
///   client charset changes how the rest of the packet is analysed (the rest is lexed again
///   in the new mode); a change the gateway cannot follow (`SET sql_mode = @v`) makes it
///   refuse later statements whose meaning depends on the mode.
/// * **COM_STMT_PREPARE**: its SQL decided the same way (one statement only).
/// * **COM_STMT_EXECUTE / COM_STMT_BULK_EXECUTE**: the prepared SQL decided again (a cache hit;
///   the current database may have changed since); unknown prepared SQL is refused.
/// * **COM_INIT_DB**: decided as `USE db` (class `session`). **COM_FIELD_LIST**: a read of that
///   table. **COM_PROCESS_KILL, COM_REFRESH, COM_SHUTDOWN, COM_DEBUG, COM_PROCESS_INFO**: class
///   `admin` (operations `kill`, `flush`, `shutdown`, `flush`, `show`), decided by the rules
///   and grants like statements.
/// * Everything else (ping, quit, statistics, reset connection, set option, change user, and
///   the statement commands that run nothing new: close, reset, send long data, fetch) is
///   allowed; unknown commands are refused.
///
/// A refused command gets an ERR (1142 or 1227, SQLSTATE 42000) whose message names the rule
/// and role; `approve` refuses too, saying approval is required, until the approval flow
/// exists. Audit-mode rules that match are logged (`tracing::warn!`) on every matching
/// command, not only on cache misses.
pub struct PolicyGate {
    paths: Vec<PathBuf>,
    policy: RwLock<Arc<PolicySet>>,
    cache: DecisionCache,
    /// The files' state at the last load attempt (for [`PolicyGate::reload_if_changed`]).
    stamps: Mutex<Vec<Stamp>>,
}

impl std::fmt::Debug for PolicyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyGate")
            .field("paths", &self.paths)
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

/// A file's (or directory's) modification time and length, `None` if it cannot be read.
type Stamp = (PathBuf, Option<(SystemTime, u64)>);

fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
    };
    let mut out = Vec::new();
    for p in paths {
        out.push((p.clone(), stamp(p)));
        if p.is_dir() {
            if let Ok(files) = expand(std::slice::from_ref(p)) {
                out.extend(files.into_iter().map(|f| {
                    let s = stamp(&f);
                    (f, s)
                }));
            }
        }
    }
    out
}

impl PolicyGate {
    /// Loads the policy from `paths` (files, or directories standing for their `*.toml`
    /// files). [`PolicyGate::reload`] and [`spawn_watcher`] re-read the same paths.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<PolicyGate, Vec<PolicyError>> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_owned()).collect();
        let before = stamps(&paths);
        let policy = PolicySet::load(&paths)?;
        Ok(PolicyGate {
            paths,
            policy: RwLock::new(Arc::new(policy)),
            cache: DecisionCache::new(CACHE_CAPACITY),
            stamps: Mutex::new(before),
        })
    }

    /// A gate for a policy already loaded (no files: [`PolicyGate::reload`] keeps it).
    pub fn new(policy: PolicySet) -> PolicyGate {
        PolicyGate {
            paths: Vec::new(),
            policy: RwLock::new(Arc::new(policy)),
            cache: DecisionCache::new(CACHE_CAPACITY),
            stamps: Mutex::new(Vec::new()),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<PolicySet> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The version of the policy in force.
    pub fn version(&self) -> u64 {
        self.policy().version()
    }

    /// The files (or directories) the policy is read from.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Re-reads the policy files and, if they are valid, puts them in force (atomically: a
    /// command is decided wholly by the old or wholly by the new policy) and returns the new
    /// version. If any is broken, the policy in force stays, every problem is logged
    /// (`tracing::error!`) and returned.
    pub fn reload(&self) -> Result<u64, Vec<PolicyError>> {
        if self.paths.is_empty() {
            return Ok(self.version());
        }
        let now = stamps(&self.paths);
        let result = PolicySet::load(&self.paths);
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = now;
        match result {
            Ok(policy) => {
                let version = policy.version();
                let (roles, rules) = (policy.roles.len(), policy.rules.len());
                *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
                self.cache.clear();
                tracing::info!(version, roles, rules, "policy loaded");
                Ok(version)
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!("policy not reloaded: {e}");
                }
                tracing::error!(
                    version = self.version(),
                    errors = errors.len(),
                    "policy files are broken; the previous policy stays in force"
                );
                Err(errors)
            }
        }
    }

    /// [`PolicyGate::reload`] if a policy file changed (modification time or length, or a
    /// file appeared in or left a directory) since the last load attempt; `None` otherwise.
    pub fn reload_if_changed(&self) -> Option<Result<u64, Vec<PolicyError>>> {
        if self.paths.is_empty() {
            return None;
        }
        let now = stamps(&self.paths);
        if *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) == now {
            return None;
        }
        Some(self.reload())
    }

    /// How many decisions are cached (for metrics and tests).
    pub fn cached_decisions(&self) -> usize {
        self.cache.len()
    }

    /// Decides a COM_QUERY (`single`: a COM_STMT_PREPARE) for a subject with `roles`.
    #[allow(clippy::too_many_arguments)]
    fn decide_sql(
        &self,
        policy: &PolicySet,
        roles: &RoleSet,
        subject: &Subject<'_>,
        ctx: &CommandContext<'_>,
        sql: &[u8],
        single: bool,
    ) -> Outcome {
        if roles.is_empty() {
            return Outcome::from_verdicts(vec![Arc::new(policy.no_role(subject))]);
        }
        let version = policy.version();
        walk(
            sql,
            ctx.mode,
            ctx.database,
            ctx.server,
            single,
            true,
            |statement, db, mode, server| {
                let key = Key {
                    version,
                    roles,
                    target: subject.target,
                    database: db,
                    mode,
                    server,
                    digest: &statement.digest,
                };
                // The digest keeps the content of executable comments but not their version
                // (`/*!99999 …*/`, skipped by MariaDB, and `/*!100500 …*/`, run by 10.11,
                // digest the same): such statements are decided afresh every time.
                let cacheable = !statement
                    .digest
                    .flags()
                    .contains(DigestFlags::EXECUTABLE_COMMENT);
                if cacheable {
                    if let Some(entry) = self.cache.get(&key) {
                        return (entry.verdict.clone(), entry.effects.clone());
                    }
                }
                let analysis_ctx = Context::new(db)
                    .with_mode(mode.unwrap_or(Mode::DEFAULT))
                    .with_server(server);
                let analysis = analyze(statement.statement.sql, &analysis_ctx);
                let verdict = Arc::new(policy.evaluate_for(roles, subject, &analysis));
                let effects = effects_of(&analysis, &verdict);
                if !cacheable {
                    return (verdict, effects);
                }
                let entry = self.cache.insert(
                    &key,
                    Entry {
                        version,
                        roles: *roles,
                        target: subject.target.into(),
                        database: db.map(Into::into),
                        mode,
                        server,
                        digest: statement.digest.clone(),
                        verdict,
                        effects,
                    },
                );
                (entry.verdict.clone(), entry.effects.clone())
            },
        )
    }

    /// Decides a command, also returning the verdicts that made the decision (for logging,
    /// recording and tests).
    pub fn decide_verbose(
        &self,
        ctx: &CommandContext<'_>,
        command: &CommandPacket<'_>,
    ) -> (Decision, Vec<Arc<Verdict>>) {
        let policy = self.policy();
        let subject = Subject {
            identity: &ctx.identity.name,
            groups: &ctx.identity.groups,
            target: ctx.target,
        };
        let roles = || policy.roles_of(subject.identity, subject.groups);
        let synthetic = |analysis: Result<Analysis, Unanalyzable>| {
            let verdict = policy.evaluate(&subject, &analysis);
            Outcome::from_verdicts(vec![Arc::new(verdict)])
        };
        let outcome = match command {
            CommandPacket::Quit
            | CommandPacket::Ping
            | CommandPacket::Statistics
            | CommandPacket::ResetConnection
            | CommandPacket::SetOption { .. }
            | CommandPacket::ChangeUser(_)
            | CommandPacket::StmtClose { .. }
            | CommandPacket::StmtReset { .. }
            | CommandPacket::StmtSendLongData { .. }
            | CommandPacket::StmtFetch { .. } => return (Decision::Allow, Vec::new()),
            CommandPacket::Unknown { command, .. } => Outcome::refused(
                ErrorCode::ER_UNKNOWN_COM_ERROR,
                format!("gatehouse: unknown command {command} is not allowed"),
            ),
            CommandPacket::Query { sql } => {
                self.decide_sql(&policy, &roles(), &subject, ctx, sql, false)
            }
            CommandPacket::StmtPrepare { sql } => {
                self.decide_sql(&policy, &roles(), &subject, ctx, sql, true)
            }
            CommandPacket::StmtExecute(_) | CommandPacket::StmtBulkExecute { .. } => {
                match ctx.prepared_sql {
                    Some(sql) => self.decide_sql(&policy, &roles(), &subject, ctx, sql, true),
                    None => Outcome::refused(
                        ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR,
                        "gatehouse: the gateway does not know the SQL of this prepared \
                         statement, so it cannot decide it; prepare it again"
                            .into(),
                    ),
                }
            }
            CommandPacket::InitDb { schema } => match std::str::from_utf8(schema) {
                Ok(db) => synthetic(Ok(use_database(db))),
                Err(_) => Outcome::refused(
                    ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR,
                    "gatehouse: COM_INIT_DB: the database name is not valid UTF-8".into(),
                ),
            },
            CommandPacket::FieldList { table, .. } => match std::str::from_utf8(table) {
                Ok(table) => synthetic(Ok(field_list(ctx.database, table))),
                Err(_) => Outcome::refused(
                    ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR,
                    "gatehouse: COM_FIELD_LIST: the table name is not valid UTF-8".into(),
                ),
            },
            CommandPacket::ProcessKill { .. } => synthetic(Ok(admin(Operation::Kill))),
            CommandPacket::Refresh { .. } => synthetic(Ok(admin(Operation::Flush))),
            CommandPacket::Shutdown { .. } => synthetic(Ok(admin(Operation::Shutdown))),
            CommandPacket::Debug => synthetic(Ok(admin(Operation::Flush))),
            CommandPacket::ProcessInfo => synthetic(Ok(admin(Operation::Show))),
        };
        for v in &outcome.verdicts {
            for hit in &v.audit {
                tracing::warn!(
                    session = ctx.session_id,
                    identity = %ctx.identity.name,
                    target = ctx.target,
                    rule = %hit.rule,
                    role = hit.role.as_deref().unwrap_or(""),
                    would = %hit.action,
                    "policy audit: {}",
                    hit.message
                );
            }
        }
        let decision = match outcome.refusal {
            None => Decision::Allow,
            Some((code, message)) => {
                tracing::info!(
                    session = ctx.session_id,
                    identity = %ctx.identity.name,
                    target = ctx.target,
                    command = %command.command(),
                    "refused: {message}"
                );
                Decision::Refuse { code, message }
            }
        };
        (decision, outcome.verdicts)
    }
}

impl CommandGate for PolicyGate {
    fn decide(&self, ctx: &CommandContext<'_>, command: &CommandPacket<'_>) -> Decision {
        self.decide_verbose(ctx, command).0
    }

    fn decide_noted(
        &self,
        ctx: &CommandContext<'_>,
        command: &CommandPacket<'_>,
        notes: &mut Vec<crate::record::event::RuleNote>,
    ) -> Decision {
        let (decision, verdicts) = self.decide_verbose(ctx, command);
        for v in &verdicts {
            notes.push(crate::record::event::RuleNote {
                action: v.action.to_string(),
                rule: v.rule.clone(),
                role: v.role.clone(),
                audit: false,
            });
            notes.extend(v.audit.iter().map(|hit| crate::record::event::RuleNote {
                action: hit.action.to_string(),
                rule: Some(hit.rule.to_string()),
                role: hit.role.clone(),
                audit: true,
            }));
        }
        decision
    }
}

/// Watches the gate's policy files on a thread of its own, every [`WATCH_INTERVAL`], and
/// reloads when one changes ([`PolicyGate::reload_if_changed`]: a broken file is logged and
/// the previous policy stays). The thread ends once the gate is dropped.
pub fn spawn_watcher(gate: Arc<PolicyGate>) -> std::thread::JoinHandle<()> {
    spawn_watcher_every(gate, WATCH_INTERVAL)
}

/// [`spawn_watcher`] with another polling interval.
pub fn spawn_watcher_every(
    gate: Arc<PolicyGate>,
    interval: Duration,
) -> std::thread::JoinHandle<()> {
    let weak: Weak<PolicyGate> = Arc::downgrade(&gate);
    drop(gate);
    std::thread::Builder::new()
        .name("policy-watch".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            let Some(gate) = weak.upgrade() else {
                return;
            };
            // Errors are logged by reload.
            let _ = gate.reload_if_changed();
        })
        .expect("spawn the policy watcher thread")
}

/// What a command's statements came to.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Code and message, when refused.
    pub(crate) refusal: Option<(ErrorCode, String)>,
    /// The verdicts of the statements decided (in order; evaluation stops at the first
    /// denied one).
    pub(crate) verdicts: Vec<Arc<Verdict>>,
}

impl Outcome {
    fn refused(code: ErrorCode, message: String) -> Outcome {
        Outcome {
            refusal: Some((code, message)),
            verdicts: Vec::new(),
        }
    }

    fn from_verdicts(verdicts: Vec<Arc<Verdict>>) -> Outcome {
        let refusal = first_refusal(&verdicts);
        Outcome { refusal, verdicts }
    }
}

/// The first `deny`, else the first `approve`.
fn first_refusal(verdicts: &[Arc<Verdict>]) -> Option<(ErrorCode, String)> {
    verdicts
        .iter()
        .find(|v| v.action == Action::Deny)
        .or_else(|| verdicts.iter().find(|v| v.action == Action::Approve))
        .map(|v| (v.code, v.message.clone()))
}

/// What a statement does to the state later statements of its packet are analysed with.
fn effects_of(analysis: &Result<Analysis, Unanalyzable>, verdict: &Verdict) -> StatementEffects {
    match analysis {
        Ok(a) => StatementEffects {
            database: a.flags.changes_database.clone(),
            sql_mode: a.flags.sql_mode.clone(),
            charset: a.flags.charset.clone(),
            unknown: false,
        },
        Err(_) => StatementEffects {
            unknown: !verdict.refuses(),
            ..StatementEffects::default()
        },
    }
}

/// Walks the statements of `sql` as the server will run them, asking `decide` for each with
/// the session state it runs in (current database, lexical mode — `None`: unknown —,
/// server), and applying each statement's effects before the next. Stops at the first denied
/// statement.
pub(crate) fn walk<'s, F>(
    sql: &'s [u8],
    mode: Option<Mode>,
    database: Option<&str>,
    server: Server,
    single: bool,
    stop_at_deny: bool,
    mut decide: F,
) -> Outcome
where
    F: FnMut(
        &StatementDigest<'s>,
        Option<&str>,
        Option<Mode>,
        Server,
    ) -> (Arc<Verdict>, StatementEffects),
{
    let mut mode = mode;
    let mut db: Option<Cow<'_, str>> = database.map(Cow::Borrowed);
    let mut verdicts: Vec<Arc<Verdict>> = Vec::new();
    let mut base = 0usize;
    let refuse = |verdicts: Vec<Arc<Verdict>>, message: String| Outcome {
        refusal: Some((ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR, message)),
        verdicts,
    };
    'relex: loop {
        let lex_mode = mode.unwrap_or(Mode::DEFAULT);
        let statements = match digest_all(&sql[base..], lex_mode) {
            Ok(s) => s,
            Err(e) => {
                return refuse(
                    verdicts,
                    format!(
                        "gatehouse: statement could not be analysed: it could not be lexed ({e})"
                    ),
                )
            }
        };
        if single && statements.len() > 1 {
            return refuse(
                verdicts,
                "gatehouse: a prepared statement must be a single statement".into(),
            );
        }
        let count = statements.len();
        for (i, statement) in statements.iter().enumerate() {
            let flags = statement.digest.flags();
            if mode.is_none()
                && flags.intersects(DigestFlags::MODE_SENSITIVE | DigestFlags::CHARSET_SENSITIVE)
            {
                return refuse(
                    verdicts,
                    "gatehouse: statement could not be analysed: its meaning depends on \
                     sql_mode or the client character set, which an earlier statement changed \
                     in a way the gateway cannot follow (set them to literal values)"
                        .into(),
                );
            }
            let (verdict, effects) = decide(statement, db.as_deref(), mode, server);
            let denied = verdict.action == Action::Deny;
            verdicts.push(verdict);
            if denied && stop_at_deny {
                break 'relex;
            }
            if effects.is_none() {
                continue;
            }
            let more = i + 1 < count;
            if effects.unknown && flags.contains(DigestFlags::COMPOUND) {
                return refuse(
                    verdicts,
                    "gatehouse: statement could not be analysed: it is or may contain a \
                     compound statement (a stored program body, BEGIN … END), which runs to the \
                     end of the query and may hold statements the gateway cannot see; it \
                     cannot be allowed unanalysed"
                        .into(),
                );
            }
            if effects.unknown {
                if more {
                    return refuse(
                        verdicts,
                        "gatehouse: a statement the gateway allows without analysing it must \
                         be sent alone, not followed by other statements in the same query"
                            .into(),
                    );
                }
                continue;
            }
            if let Some(new_db) = effects.database {
                db = Some(Cow::Owned(new_db));
            }
            let before = mode;
            if let Some(change) = &effects.sql_mode {
                mode = match (change, mode) {
                    (SqlModeChange::Value(v), Some(m)) => Some(m.with_sql_mode(v)),
                    _ => None,
                };
            }
            if let Some(name) = &effects.charset {
                mode = match (Charset::from_name(name), mode) {
                    (Some(c), Some(m)) => Some(m.with_charset(c)),
                    _ => None,
                };
            }
            if mode != before && more {
                // Lex the rest again in the new mode: where strings end (and so where the
                // next statement starts) may have changed.
                let s = &statement.statement;
                base += s.offset + s.sql.len();
                continue 'relex;
            }
        }
        break;
    }
    Outcome::from_verdicts(verdicts)
}

/// `USE db`, as COM_INIT_DB is decided.
fn use_database(db: &str) -> Analysis {
    Analysis {
        class: StatementClass::Session,
        operation: Operation::Use,
        reads: Vec::new(),
        writes: Vec::new(),
        databases: Vec::new(),
        flags: Flags {
            changes_database: Some(db.to_owned()),
            ..Flags::default()
        },
    }
}

/// A read of `table`, as COM_FIELD_LIST is decided.
fn field_list(db: Option<&str>, table: &str) -> Analysis {
    Analysis {
        class: StatementClass::Read,
        operation: Operation::Select,
        reads: vec![TableRef::new(db, table)],
        writes: Vec::new(),
        databases: Vec::new(),
        flags: Flags::default(),
    }
}

/// An administrative command.
fn admin(operation: Operation) -> Analysis {
    Analysis {
        class: StatementClass::Admin,
        operation,
        reads: Vec::new(),
        writes: Vec::new(),
        databases: Vec::new(),
        flags: Flags::default(),
    }
}

/// One statement as [`PolicySet::explain`] saw it.
#[derive(Debug, Clone)]
pub struct ExplainedStatement {
    /// The statement's text (lossy UTF-8).
    pub sql: String,
    /// Its digest text.
    pub digest: String,
    /// The current database it was analysed with.
    pub database: Option<String>,
    /// The analysis.
    pub analysis: Result<Analysis, Unanalyzable>,
    /// The decision.
    pub verdict: Verdict,
}

/// What [`PolicySet::explain`] found.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The roles that apply to the subject.
    pub roles: Vec<String>,
    /// Every statement decided, in order (all of them: the gateway stops at the first denied
    /// one).
    pub statements: Vec<ExplainedStatement>,
    /// The refusal sent for the whole query, if it is refused.
    pub refusal: Option<(ErrorCode, String)>,
}

/// The session state [`PolicySet::explain`] analyses with.
#[derive(Debug, Clone, Copy)]
pub struct ExplainContext<'a> {
    /// The current database.
    pub database: Option<&'a str>,
    /// The lexical mode.
    pub mode: Mode,
    /// The server.
    pub server: Server,
    /// Decide it as a COM_STMT_PREPARE (one statement) rather than a COM_QUERY.
    pub prepare: bool,
}

impl PolicySet {
    /// Decides `sql` for `subject` as [`PolicyGate`] decides a COM_QUERY (without the cache),
    /// keeping every statement's analysis: what `gatehouse policy explain` prints.
    pub fn explain(
        &self,
        subject: &Subject<'_>,
        sql: &[u8],
        ctx: &ExplainContext<'_>,
    ) -> Explanation {
        let roles = self.roles_of(subject.identity, subject.groups);
        let mut statements = Vec::new();
        let outcome = walk(
            sql,
            Some(ctx.mode),
            ctx.database,
            ctx.server,
            ctx.prepare,
            false,
            |statement, db, mode, server| {
                let actx = Context::new(db)
                    .with_mode(mode.unwrap_or(Mode::DEFAULT))
                    .with_server(server);
                let analysis = analyze(statement.statement.sql, &actx);
                let verdict = self.evaluate_for(&roles, subject, &analysis);
                let effects = effects_of(&analysis, &verdict);
                statements.push(ExplainedStatement {
                    sql: String::from_utf8_lossy(statement.statement.sql).into_owned(),
                    digest: statement.digest.text_lossy().into_owned(),
                    database: db.map(str::to_owned),
                    analysis,
                    verdict: verdict.clone(),
                });
                (Arc::new(verdict), effects)
            },
        );
        Explanation {
            roles: self
                .role_names_of(&roles)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            statements,
            refusal: outcome.refusal,
        }
    }
}
