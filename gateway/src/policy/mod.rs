//! Statement policy: who may run what, where — decided per statement, fail-closed, cached,
//! explainable.
//!
//! A platform team writes policies as TOML files (examples and a guide in `policies/`):
//!
//! * **Roles** apply to gateway identities by name and by group (globs), and **grant**, per
//!   target (globs), the statement classes a role may run (`read`, `write`, `ddl`, `dcl`,
//!   `admin`, `transaction`, `session`, `show`), optionally only on some tables, and the
//!   leading keywords of statements allowed although they cannot be analysed
//!   (`allow_unanalyzable = ["HANDLER"]`).
//! * **Rules** match statements by operation (`drop_table`, `update`, …), class, tables or
//!   databases (`shop.orders`, `shop.*`, `*.secrets`), procedures called, flags (`no_where`,
//!   `server_file`, `calls_function`, …) and variables assigned, for some roles and targets,
//!   and `deny`, `approve` (refused until the approval flow exists), `mask` (marks an allowed
//!   statement for the masking stage) or `allow`. Each rule is enforced or, with
//!   `mode = "audit"`, only reported.
//! * **Default deny**: what no rule or grant allows is refused; so is every statement that
//!   cannot be analysed, unless a grant names its leading keyword.
//!
//! How one statement is decided is [`PolicySet::evaluate`]; how commands and multi-statement
//! queries are, [`PolicyGate`]. Loading ([`PolicySet::load`]) reports every problem as
//! `file:line:col: message`: syntax, unknown keys, unknown roles, operations, classes and
//! flags, bad globs, duplicate names, and rules that can never decide because an earlier rule
//! matches everything they match.
//!
//! Everything here is sans-IO except loading (reads the files) and [`spawn_watcher`] (a thread
//! polling their modification times).

mod cache;
#[cfg(test)]
mod corpus;
mod gate;
mod glob;
mod load;
mod model;
#[cfg(test)]
mod tests;

pub use gate::{
    spawn_watcher, spawn_watcher_every, ExplainContext, ExplainedStatement, Explanation,
    PolicyGate, CACHE_CAPACITY, WATCH_INTERVAL,
};
pub use glob::{Glob, Side, TablePattern};
pub use load::PolicyError;
pub use model::{
    describe, flag_names, Action, AuditHit, PolicySet, RoleSet, RuleMode, Subject, Verdict,
    MAX_ROLES,
};
