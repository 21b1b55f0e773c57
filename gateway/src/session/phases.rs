//! The seams later stages plug into, called by the session at fixed points of each command:
//!
//! ```text
//! client command ──▶ CommandGate::decide ──allow──▶ upstream
//!                        │ refuse ──▶ ERR to client        │ hold ──▶ wait for handle_approval
//! upstream rows  ──▶ RowTransform::on_row ──▶ client       (skipped when is_identity())
//! every event    ──▶ EventSink::on_event (the recorder: logins, identity switches, commands)
//! ```
//!
//! All are synchronous and must not block: policy, masking and recording build on them.

use crate::auth::Identity;
use crate::wire::command::CommandPacket;
use crate::wire::ErrorCode;

/// What the gate decided for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward it.
    Allow,
    /// Answer with this error instead; the connection stays usable.
    Refuse {
        /// Code and SQLSTATE.
        code: ErrorCode,
        /// Message shown to the user.
        message: String,
    },
    /// Hold it on the wire until [`super::Session::handle_approval`] is called with this id.
    Hold {
        /// The approval request id.
        request_id: u64,
    },
}

/// What the session knows when asking for a decision.
#[derive(Debug)]
pub struct CommandContext<'a> {
    /// The session.
    pub session_id: u64,
    /// Who is logged in.
    pub identity: &'a Identity,
    /// The current default database, when known.
    pub database: Option<&'a str>,
    /// The target (upstream) name.
    pub target: &'a str,
    /// How the session lexes SQL (`sql_mode`'s `ANSI_QUOTES` / `NO_BACKSLASH_ESCAPES`, the
    /// client charset); `None` once a statement changed it in a way the gateway cannot follow
    /// (`SET sql_mode = @saved`): statements whose meaning depends on it must be refused.
    pub mode: Option<crate::sql::Mode>,
    /// The upstream server's flavour and version (executable comments depend on it).
    pub server: crate::sql::Server,
    /// For a command naming a prepared statement (COM_STMT_EXECUTE, BULK_EXECUTE, FETCH,
    /// SEND_LONG_DATA, RESET, CLOSE): the SQL it was prepared from, if the gateway saw it.
    pub prepared_sql: Option<&'a [u8]>,
}

/// Decides, before anything is forwarded, whether a command may reach the upstream.
pub trait CommandGate: Send + Sync {
    /// Decides for one command.
    fn decide(&self, ctx: &CommandContext<'_>, command: &CommandPacket<'_>) -> Decision;

    /// [`CommandGate::decide`], also noting for the recorder which rules and grants decided
    /// (called instead of `decide` when the session is recorded).
    fn decide_noted(
        &self,
        ctx: &CommandContext<'_>,
        command: &CommandPacket<'_>,
        _notes: &mut Vec<crate::record::event::RuleNote>,
    ) -> Decision {
        self.decide(ctx, command)
    }
}

/// How sessions are recorded (shared by every session of a gateway).
pub struct Recording {
    /// The `[recording]` settings.
    pub config: crate::config::RecordingConfig,
    /// The policy roles of an identity (for capture rules naming a role), when a policy is
    /// configured.
    pub roles: Option<RolesOf>,
}

/// The policy roles an identity has.
pub type RolesOf = Box<dyn Fn(&Identity) -> Vec<String> + Send + Sync>;

impl Recording {
    /// What is kept of result rows for a session of `identity` on `target`.
    pub fn capture_for(&self, target: &str, identity: &Identity) -> crate::config::Capture {
        let roles = match (
            &self.roles,
            self.config.capture_rules.iter().any(|r| r.role.is_some()),
        ) {
            (Some(roles), true) => roles(identity),
            _ => Vec::new(),
        };
        self.config
            .capture_for(target, &identity.name, &identity.groups, &roles)
    }
}

/// The gate of this stage of the project: everything the wire layer understands is allowed.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl CommandGate for AllowAll {
    fn decide(&self, _: &CommandContext<'_>, _: &CommandPacket<'_>) -> Decision {
        Decision::Allow
    }
}

/// A result column as the row transform sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Database.
    pub schema: String,
    /// Physical table.
    pub org_table: String,
    /// Physical column.
    pub org_name: String,
    /// Alias shown to the client.
    pub name: String,
    /// Column type code.
    pub column_type: u8,
}

/// Which encoding a row uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// Text protocol (COM_QUERY).
    Text,
    /// Binary protocol (COM_STMT_EXECUTE / FETCH).
    Binary,
}

/// Rewrites result rows on their way to the client.
pub trait RowTransform: Send + Sync {
    /// When true the session forwards rows untouched and never calls [`RowTransform::on_row`].
    fn is_identity(&self) -> bool;
    /// Appends the row to send in place of `payload` (a whole row payload) to `out`.
    fn on_row(&self, columns: &[ColumnInfo], format: RowFormat, payload: &[u8], out: &mut Vec<u8>);
}

/// Rows pass unchanged (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough;

impl RowTransform for PassThrough {
    fn is_identity(&self) -> bool {
        true
    }
    fn on_row(&self, _: &[ColumnInfo], _: RowFormat, payload: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(payload);
    }
}

impl ColumnInfo {
    /// The parts of a column definition the transform needs.
    pub fn from_definition(c: &crate::wire::resultset::ColumnDefinition<'_>) -> ColumnInfo {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        ColumnInfo {
            schema: text(c.schema),
            org_table: text(c.org_table),
            org_name: text(c.org_name),
            name: text(c.name),
            column_type: c.column_type,
        }
    }
}

/// Receives every session's events as the driver drains them (the recorder's seam). Called on
/// an I/O thread: hand the event off (e.g. to a queue), never block.
pub trait EventSink: Send + Sync {
    /// `event` happened in session `session_id`.
    fn on_event(&self, session_id: u64, event: &super::Event);
}

/// Drops every event (the driver still logs them).
pub struct DiscardEvents;

impl EventSink for DiscardEvents {
    fn on_event(&self, _session_id: u64, _event: &super::Event) {}
}
