//! The policy in memory and how it decides one statement ([`PolicySet::evaluate`]).

use std::fmt;

use crate::sql::{Analysis, Operation, StatementClass, TableRef, Unanalyzable};
use crate::wire::ErrorCode;

use super::glob::{Glob, Side, TablePattern};

/// The most roles a policy set may define (a subject's roles are a fixed-size bit set, so
/// that the decision cache key needs no allocation).
pub const MAX_ROLES: usize = 256;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Refuse the statement.
    Deny,
    /// Hold it for a human. Until the approval flow exists, refused with a message saying
    /// approval is required.
    Approve,
    /// Allow it, with result masking (the masking stage uses this). A `mask` rule never grants
    /// anything by itself: it marks a statement that something else allows.
    Mask,
    /// Allow it.
    Allow,
}

impl Action {
    /// The name used in policy files.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Approve => "approve",
            Action::Mask => "mask",
            Action::Allow => "allow",
        }
    }

    /// Whether the statement is refused (`deny`, and `approve` until approvals exist).
    pub const fn refuses(self) -> bool {
        matches!(self, Action::Deny | Action::Approve)
    }

    pub(crate) fn from_name(name: &str) -> Option<Action> {
        [Action::Deny, Action::Approve, Action::Mask, Action::Allow]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// How the action's rule matches patterns: what refuses errs wide.
    pub(crate) fn side(self) -> Side {
        match self {
            Action::Allow => Side::Narrow,
            Action::Deny | Action::Approve | Action::Mask => Side::Broad,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a rule is enforced or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RuleMode {
    /// The rule decides.
    #[default]
    Enforce,
    /// The rule's would-be decision is logged and reported in [`Verdict::audit`]; evaluation
    /// goes on as if it had not matched.
    Audit,
}

impl RuleMode {
    /// The name used in policy files.
    pub const fn name(self) -> &'static str {
        match self {
            RuleMode::Enforce => "enforce",
            RuleMode::Audit => "audit",
        }
    }
}

impl fmt::Display for RuleMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who runs a statement, and where.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The gateway identity's name.
    pub identity: &'a str,
    /// Its groups.
    pub groups: &'a [String],
    /// The target (upstream) name.
    pub target: &'a str,
}

/// What an audit-mode rule would have done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHit {
    /// The rule.
    pub rule: String,
    /// The role it applied through.
    pub role: Option<String>,
    /// What it would have done.
    pub action: Action,
    /// The message it would have sent (for `deny` and `approve`), or a description.
    pub message: String,
}

/// The decision for one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What is enforced: `Allow` and `Mask` let the statement through, `Deny` and `Approve`
    /// refuse it.
    pub action: Action,
    /// The rule that decided (`None`: a role's grant allowed it, or nothing did — the default
    /// deny — or it could not be analysed).
    pub rule: Option<String>,
    /// The role through which the deciding rule or grant applied.
    pub role: Option<String>,
    /// [`RuleMode::Audit`] when audit-mode rules matched the statement ([`Verdict::audit`]
    /// says what they would have done); [`RuleMode::Enforce`] otherwise.
    pub mode: RuleMode,
    /// For a refusal, the message sent to the client (`gatehouse: DROP TABLE on shop.orders
    /// denied by rule "no-destructive-ddl" (role analytics-agent)`); otherwise a short
    /// description of why it is allowed.
    pub message: String,
    /// For a refusal, the error sent: 1142 (`ER_TABLEACCESS_DENIED_ERROR`) when the statement
    /// names tables, else 1227 (`ER_SPECIFIC_ACCESS_DENIED_ERROR`); both SQLSTATE 42000.
    pub code: ErrorCode,
    /// Audit-mode rules that matched, in policy order.
    pub audit: Vec<AuditHit>,
}

impl Verdict {
    /// Whether the statement is refused.
    pub fn refuses(&self) -> bool {
        self.action.refuses()
    }
}

/// A set of roles (indices into the policy's roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoleSet([u64; MAX_ROLES / 64]);

impl RoleSet {
    pub(crate) fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether no role is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub(crate) fn intersects(&self, other: &RoleSet) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    pub(crate) fn is_superset(&self, other: &RoleSet) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == *b)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_ROLES).filter(|i| self.contains(*i))
    }
}

/// A set of statement classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ClassSet(pub(crate) u16);

impl ClassSet {
    pub(crate) fn insert(&mut self, c: StatementClass) {
        self.0 |= 1 << c as u16;
    }
    pub(crate) fn contains(&self, c: StatementClass) -> bool {
        self.0 & (1 << c as u16) != 0
    }
    pub(crate) fn is_superset(&self, other: &ClassSet) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A set of operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OperationSet(pub(crate) u128);

impl OperationSet {
    pub(crate) fn insert(&mut self, op: Operation) {
        self.0 |= 1 << op as u32;
    }
    pub(crate) fn contains(&self, op: Operation) -> bool {
        self.0 & (1 << op as u32) != 0
    }
    pub(crate) fn is_superset(&self, other: &OperationSet) -> bool {
        self.0 & other.0 == other.0
    }
}

// `Operation` is a fieldless enum whose discriminants are its positions in `Operation::ALL`.
const _: () = assert!(Operation::ALL.len() <= 128);

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident = $bit:literal, $policy:literal, |$f:ident| $test:expr;)*) => {
        /// The statement flags a rule can match on, by their policy-file names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub(crate) struct FlagSet(pub(crate) u32);

        impl FlagSet {
            $($(#[$doc])* pub(crate) const $name: u32 = 1 << $bit;)*

            /// Every flag name, in documentation order.
            pub(crate) const NAMES: &'static [&'static str] = &[$($policy,)*];

            pub(crate) fn from_name(name: &str) -> Option<u32> {
                match name {
                    $($policy => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// The flags an analysis has.
            pub(crate) fn of(a: &Analysis) -> FlagSet {
                let mut bits = 0;
                $(
                    let $f = &a.flags;
                    if $test {
                        bits |= Self::$name;
                    }
                )*
                FlagSet(bits)
            }
        }
    };
}

flags! {
    /// `UPDATE`/`DELETE` without a `WHERE` on a column.
    NO_WHERE = 0, "no_where", |f| f.no_where;
    /// Reads or writes a file on the server.
    SERVER_FILE = 1, "server_file", |f| f.server_file;
    /// `SELECT … INTO OUTFILE|DUMPFILE`.
    INTO_OUTFILE = 2, "into_outfile", |f| f.into_outfile;
    /// `LOAD DATA LOCAL`.
    LOCAL_INFILE = 3, "local_infile", |f| f.local_infile;
    /// Assigns a variable.
    SETS_VARIABLE = 4, "sets_variable", |f| f.sets_variable;
    /// Reads or writes a user variable.
    USES_USER_VARIABLES = 5, "uses_user_variables", |f| f.uses_user_variables;
    /// `CALL`.
    CALLS_PROCEDURE = 6, "calls_procedure", |f| f.calls_procedure.is_some();
    /// Calls a stored or loadable function.
    CALLS_FUNCTION = 7, "calls_function", |f| f.calls_function;
    /// `USE`.
    CHANGES_DATABASE = 8, "changes_database", |f| f.changes_database.is_some();
    /// Changes `sql_mode`.
    SQL_MODE = 9, "sql_mode", |f| f.sql_mode.is_some();
    /// Changes the connection charset.
    CHARSET = 10, "charset", |f| f.charset.is_some();
    /// Creates a stored program.
    STORED_PROGRAM = 11, "stored_program", |f| f.stored_program;
    /// SQL-level `PREPARE … FROM '…'`.
    PREPARE = 12, "prepare", |f| f.prepare.is_some();
    /// `ALTER TABLE` dropping columns or partitions.
    DROPS_DATA = 13, "drops_data", |f| f.drops_data;
}

/// The names (as rules write them) of the flags `a` has, in documentation order.
pub fn flag_names(a: &Analysis) -> Vec<&'static str> {
    let set = FlagSet::of(a);
    FlagSet::NAMES
        .iter()
        .copied()
        .filter(|n| FlagSet::from_name(n).is_some_and(|b| set.0 & b != 0))
        .collect()
}

impl FlagSet {
    fn intersects(self, other: FlagSet) -> bool {
        self.0 & other.0 != 0
    }
    pub(crate) fn is_superset(&self, other: &FlagSet) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Where something was defined: `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A role: who it is for, and what it may do where.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) identities: Vec<Glob>,
    pub(crate) groups: Vec<Glob>,
    pub(crate) grants: Vec<Grant>,
    pub(crate) origin: Origin,
}

impl Role {
    fn applies_to(&self, identity: &str, groups: &[String]) -> bool {
        self.identities.iter().any(|g| g.matches(identity))
            || self
                .groups
                .iter()
                .any(|g| groups.iter().any(|group| g.matches(group)))
    }
}

/// What a role may run on some targets.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) targets: Vec<Glob>,
    pub(crate) classes: ClassSet,
    /// Empty: any table. Otherwise every table the statement touches must match one.
    pub(crate) tables: Vec<TablePattern>,
    /// Leading keywords (upper case) of statements allowed although they cannot be analysed.
    pub(crate) allow_unanalyzable: Vec<String>,
}

/// A rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: String,
    /// `None`: every role.
    pub(crate) roles: Option<RoleSet>,
    /// Empty: every target.
    pub(crate) targets: Vec<Glob>,
    pub(crate) action: Action,
    pub(crate) mode: RuleMode,
    pub(crate) operations: Option<OperationSet>,
    pub(crate) classes: Option<ClassSet>,
    pub(crate) tables: Vec<TablePattern>,
    pub(crate) procedures: Vec<TablePattern>,
    pub(crate) flags: Option<FlagSet>,
    pub(crate) variables: Vec<Glob>,
    pub(crate) message: Option<String>,
    pub(crate) origin: Origin,
}

impl Rule {
    fn applies(&self, roles: &RoleSet, target: &str) -> bool {
        self.roles.is_none_or(|r| r.intersects(roles))
            && (self.targets.is_empty() || self.targets.iter().any(|g| g.matches(target)))
    }

    /// Whether the statement matches every criterion the rule has.
    fn matches(&self, a: &Analysis) -> bool {
        let side = self.action.side();
        if let Some(ops) = &self.operations {
            if !ops.contains(a.operation) {
                return false;
            }
        }
        if let Some(classes) = &self.classes {
            if !classes.contains(a.class) {
                return false;
            }
        }
        if let Some(flags) = self.flags {
            if !flags.intersects(FlagSet::of(a)) {
                return false;
            }
        }
        if !self.tables.is_empty() && !objects_match(&self.tables, a, side, true) {
            return false;
        }
        if !self.procedures.is_empty() {
            let Some(p) = &a.flags.calls_procedure else {
                return false;
            };
            if !self
                .procedures
                .iter()
                .any(|pat| pat.matches(p.schema.as_deref(), &p.name, side))
            {
                return false;
            }
        }
        if !self.variables.is_empty() {
            let fold = side == Side::Broad;
            let hit = |v: &String| self.variables.iter().any(|g| g.matches_case(v, fold));
            let matched = match side {
                Side::Broad => a.flags.variables.iter().any(hit),
                Side::Narrow => !a.flags.variables.is_empty() && a.flags.variables.iter().all(hit),
            };
            if !matched {
                return false;
            }
        }
        true
    }

    /// Whether this rule matches every statement `later` matches, for every subject `later`
    /// applies to (so `later` can never decide) — as far as can be told cheaply.
    pub(crate) fn shadows(&self, later: &Rule) -> bool {
        if self.mode != RuleMode::Enforce || self.action == Action::Mask {
            return false;
        }
        let roles = match (&self.roles, &later.roles) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a.is_superset(b),
        };
        let targets = self.targets.is_empty()
            || (!later.targets.is_empty()
                && later
                    .targets
                    .iter()
                    .all(|t| self.targets.iter().any(|s| s.covers(t))));
        fn set<T>(a: &Option<T>, b: &Option<T>, sup: impl Fn(&T, &T) -> bool) -> bool {
            match (a, b) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => sup(a, b),
            }
        }
        // Patterns: a narrow (allow) rule cannot stand for a broad one.
        let compatible = self.action.side() == Side::Broad || later.action.side() == Side::Narrow;
        let patterns = |mine: &[TablePattern], theirs: &[TablePattern]| {
            mine.is_empty()
                || (compatible
                    && !theirs.is_empty()
                    && theirs.iter().all(|t| mine.iter().any(|m| m.covers(t))))
        };
        let variables = self.variables.is_empty()
            || (compatible
                && !later.variables.is_empty()
                && later
                    .variables
                    .iter()
                    .all(|t| self.variables.iter().any(|m| m.covers(t))));
        roles
            && targets
            && set(
                &self.operations,
                &later.operations,
                OperationSet::is_superset,
            )
            && set(&self.classes, &later.classes, ClassSet::is_superset)
            && set(&self.flags, &later.flags, FlagSet::is_superset)
            && patterns(&self.tables, &later.tables)
            && patterns(&self.procedures, &later.procedures)
            && variables
    }
}

/// Whether the statement's tables, databases and procedure match `patterns`: for
/// [`Side::Broad`] any one of them, for [`Side::Narrow`] all of them — and, with
/// `require_some`, there is at least one (an allow rule about tables says nothing about
/// `SELECT 1`; a grant limited to some tables still allows it).
fn objects_match(patterns: &[TablePattern], a: &Analysis, side: Side, require_some: bool) -> bool {
    let table = |t: &TableRef| {
        patterns
            .iter()
            .any(|p| p.matches(t.schema.as_deref(), &t.name, side))
    };
    let database = |d: &String| patterns.iter().any(|p| p.matches_database(d, side));
    let mut tables = a
        .reads
        .iter()
        .chain(&a.writes)
        .chain(a.flags.calls_procedure.iter());
    match side {
        Side::Broad => tables.any(table) || a.databases.iter().any(database),
        Side::Narrow => {
            let some = !a.reads.is_empty()
                || !a.writes.is_empty()
                || !a.databases.is_empty()
                || a.flags.calls_procedure.is_some();
            (some || !require_some) && tables.all(table) && a.databases.iter().all(database)
        }
    }
}

/// Every policy file, merged and validated: roles and rules in file order.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(crate) version: u64,
    pub(crate) roles: Vec<Role>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) files: Vec<String>,
}

impl PolicySet {
    /// The version: unique in this process, larger for every successful load.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The files it was loaded from, in order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The role names, in policy order.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| r.name.as_str())
    }

    /// The rule names, in policy order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// How many rules are in audit mode.
    pub fn audit_rules(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| r.mode == RuleMode::Audit)
            .count()
    }

    /// The roles that apply to an identity with these groups.
    pub fn roles_of(&self, identity: &str, groups: &[String]) -> RoleSet {
        let mut set = RoleSet::default();
        for (i, role) in self.roles.iter().enumerate() {
            if role.applies_to(identity, groups) {
                set.insert(i);
            }
        }
        set
    }

    /// The names of the roles in `set`.
    pub fn role_names_of(&self, set: &RoleSet) -> Vec<&str> {
        set.iter()
            .filter_map(|i| self.roles.get(i).map(|r| r.name.as_str()))
            .collect()
    }

    /// Decides one statement (or the refusal of one that could not be analysed) for `subject`.
    ///
    /// 1. A subject no role applies to is refused.
    /// 2. A statement that could not be analysed is refused, unless a grant of one of the
    ///    subject's roles for this target lists its leading keyword in `allow_unanalyzable`.
    /// 3. The rules that apply to the subject's roles and the target are tried in policy order
    ///    (files in the order given, rules in file order). Audit-mode rules that match are
    ///    recorded in [`Verdict::audit`] and skipped; `mask` rules that match are remembered
    ///    and skipped; the first other matching rule decides (`deny`, `approve`, `allow`).
    /// 4. Otherwise a grant of one of the roles for this target allows the statement's class
    ///    (and, when the grant lists tables, every table it touches matches).
    /// 5. Otherwise it is refused (default deny).
    ///
    /// An allowed statement that a `mask` rule matched gets [`Action::Mask`].
    pub fn evaluate(
        &self,
        subject: &Subject<'_>,
        analysis: &Result<Analysis, Unanalyzable>,
    ) -> Verdict {
        let roles = self.roles_of(subject.identity, subject.groups);
        self.evaluate_for(&roles, subject, analysis)
    }

    /// [`PolicySet::evaluate`] with the subject's roles already worked out.
    pub fn evaluate_for(
        &self,
        roles: &RoleSet,
        subject: &Subject<'_>,
        analysis: &Result<Analysis, Unanalyzable>,
    ) -> Verdict {
        if roles.is_empty() {
            return self.no_role(subject);
        }
        let target = subject.target;
        let a = match analysis {
            Ok(a) => a,
            Err(u) => return self.unanalyzable(roles, target, u),
        };
        let mut audit = Vec::new();
        let mut mask: Option<(&Rule, String)> = None;
        for rule in &self.rules {
            if !rule.applies(roles, target) || !rule.matches(a) {
                continue;
            }
            let role = self.role_for(rule, roles);
            if rule.mode == RuleMode::Audit {
                let message = rule_message(a, rule, &role);
                audit.push(AuditHit {
                    rule: rule.name.clone(),
                    role: Some(role),
                    action: rule.action,
                    message,
                });
                continue;
            }
            if rule.action == Action::Mask {
                if mask.is_none() {
                    mask = Some((rule, role));
                }
                continue;
            }
            let message = rule_message(a, rule, &role);
            let verdict = Verdict {
                action: rule.action,
                rule: Some(rule.name.clone()),
                role: Some(role),
                mode: RuleMode::Enforce,
                message,
                code: refusal_code(a),
                audit,
            };
            return with_mask(verdict, mask);
        }
        // Grants.
        for i in roles.iter() {
            let role = &self.roles[i];
            for grant in &role.grants {
                if grant.targets.iter().any(|g| g.matches(target))
                    && grant.classes.contains(a.class)
                    && (grant.tables.is_empty()
                        || objects_match(&grant.tables, a, Side::Narrow, false))
                {
                    let verdict = Verdict {
                        action: Action::Allow,
                        rule: None,
                        role: Some(role.name.clone()),
                        mode: RuleMode::Enforce,
                        message: format!(
                            "{} allowed: role {} may run {} statements on target {target}",
                            describe(a),
                            role.name,
                            a.class
                        ),
                        code: refusal_code(a),
                        audit,
                    };
                    return with_mask(verdict, mask);
                }
            }
        }
        let names = self.role_names_of(roles).join(", ");
        let label = if names.contains(", ") {
            "roles"
        } else {
            "role"
        };
        Verdict {
            action: Action::Deny,
            rule: None,
            role: None,
            mode: RuleMode::Enforce,
            message: format!(
                "gatehouse: {} denied: no rule or grant of {label} {names} allows {} \
                 statements like it on target {target}",
                describe(a),
                a.class
            ),
            code: refusal_code(a),
            audit,
        }
        .with_audit_mode()
    }

    pub(crate) fn no_role(&self, subject: &Subject<'_>) -> Verdict {
        Verdict {
            action: Action::Deny,
            rule: None,
            role: None,
            mode: RuleMode::Enforce,
            message: format!(
                "gatehouse: identity {:?} has no role in the policy; every statement is refused",
                subject.identity
            ),
            code: ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR,
            audit: Vec::new(),
        }
    }

    fn unanalyzable(&self, roles: &RoleSet, target: &str, u: &Unanalyzable) -> Verdict {
        let keyword = u.leading_keyword.as_str();
        if !keyword.is_empty() {
            for i in roles.iter() {
                let role = &self.roles[i];
                let allowed = role.grants.iter().any(|g| {
                    g.targets.iter().any(|t| t.matches(target))
                        && g.allow_unanalyzable.iter().any(|k| k == keyword)
                });
                if allowed {
                    return Verdict {
                        action: Action::Allow,
                        rule: None,
                        role: Some(role.name.clone()),
                        mode: RuleMode::Enforce,
                        message: format!(
                            "{keyword} statement allowed unanalysed: role {} lists it in \
                             allow_unanalyzable ({})",
                            role.name, u.reason
                        ),
                        code: ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR,
                        audit: Vec::new(),
                    };
                }
            }
        }
        Verdict {
            action: Action::Deny,
            rule: None,
            role: None,
            mode: RuleMode::Enforce,
            message: format!("gatehouse: {u}"),
            code: ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR,
            audit: Vec::new(),
        }
    }

    /// The role a rule applies through: the first of the subject's roles it names (or the
    /// first of the subject's roles, for a rule naming none).
    fn role_for(&self, rule: &Rule, roles: &RoleSet) -> String {
        let i = match &rule.roles {
            Some(r) => roles.iter().find(|i| r.contains(*i)),
            None => roles.iter().next(),
        };
        i.map(|i| self.roles[i].name.clone()).unwrap_or_default()
    }
}

impl Verdict {
    fn with_audit_mode(mut self) -> Verdict {
        if !self.audit.is_empty() {
            self.mode = RuleMode::Audit;
        }
        self
    }
}

fn with_mask(mut verdict: Verdict, mask: Option<(&Rule, String)>) -> Verdict {
    if let (Action::Allow, Some((rule, role))) = (verdict.action, mask) {
        verdict.action = Action::Mask;
        verdict.message = format!(
            "{}; results masked by rule {:?} (role {role})",
            verdict.message, rule.name
        );
        verdict.rule = Some(rule.name.clone());
        verdict.role = Some(role);
    }
    verdict.with_audit_mode()
}

/// The error code for refusing `a`: 1142 when it names tables, else 1227.
pub(crate) fn refusal_code(a: &Analysis) -> ErrorCode {
    if a.reads.is_empty() && a.writes.is_empty() {
        ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR
    } else {
        ErrorCode::ER_TABLEACCESS_DENIED_ERROR
    }
}

/// The message of a matching rule.
fn rule_message(a: &Analysis, rule: &Rule, role: &str) -> String {
    let what = describe(a);
    let mut message = match rule.action {
        Action::Deny => format!(
            "gatehouse: {what} denied by rule {:?} (role {role})",
            rule.name
        ),
        Action::Approve => format!(
            "gatehouse: {what} requires approval by rule {:?} (role {role}); approvals are \
             not available yet, so it is refused",
            rule.name
        ),
        Action::Mask => format!(
            "{what}: results masked by rule {:?} (role {role})",
            rule.name
        ),
        Action::Allow => format!("{what} allowed by rule {:?} (role {role})", rule.name),
    };
    if let Some(extra) = &rule.message {
        message.push_str(": ");
        message.push_str(extra);
    }
    message
}

/// `DROP TABLE on shop.orders`: the operation, upper-cased with spaces, and what it touches
/// (written tables, then read ones, databases, the procedure called; at most three).
pub fn describe(a: &Analysis) -> String {
    let mut out = a.operation.name().replace('_', " ").to_ascii_uppercase();
    let mut objects: Vec<String> = Vec::new();
    for t in a.writes.iter().chain(&a.reads) {
        let s = t.to_string();
        if !objects.contains(&s) {
            objects.push(s);
        }
    }
    objects.extend(a.databases.iter().cloned());
    if let Some(p) = &a.flags.calls_procedure {
        objects.push(p.to_string());
    }
    if !objects.is_empty() {
        out.push_str(" on ");
        let shown = objects.len().min(3);
        out.push_str(&objects[..shown].join(", "));
        if objects.len() > shown {
            out.push_str(&format!(" and {} more", objects.len() - shown));
        }
    }
    out
}
