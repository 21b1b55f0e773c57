//! Reading policy files: TOML → validated [`PolicySet`], every problem reported as
//! `file:line:col: message`.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use toml::Spanned;

use crate::sql::{Operation, StatementClass};

use super::glob::{Glob, TablePattern};
use super::model::{
    Action, ClassSet, FlagSet, Grant, OperationSet, Origin, PolicySet, Role, RoleSet, Rule,
    RuleMode, MAX_ROLES,
};

/// One problem in a policy file.
///
/// `Display`: `file:line:col: message` (`file: message` when no single place is to blame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (as given, or as found in a directory given).
    pub file: String,
    /// 1-based line; 0 when not about one place.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong, and what is expected.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

impl std::error::Error for PolicyError {}

/// Versions handed out by successful loads.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    role: Vec<RoleDoc>,
    #[serde(default)]
    rule: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleDoc {
    name: S<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    identities: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    groups: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    grant: Vec<GrantDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantDoc {
    targets: S<Vec<S<String>>>,
    #[serde(default)]
    classes: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    tables: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    allow_unanalyzable: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: S<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    action: S<String>,
    #[serde(default)]
    mode: Option<S<String>>,
    #[serde(default)]
    roles: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    targets: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    operations: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    classes: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    tables: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    procedures: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    flags: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    variables: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    message: Option<S<String>>,
}

/// One file's text and name.
struct Source<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, col) = line_col(self.text, span.start);
        PolicyError {
            file: self.origin.to_owned(),
            line,
            col,
            message: message.into(),
        }
    }

    fn origin(&self, span: Range<usize>) -> Origin {
        let (line, col) = line_col(self.text, span.start);
        Origin {
            file: self.origin.to_owned(),
            line,
            col,
        }
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A rule before role names are resolved (roles may be defined in a later file).
struct PendingRule {
    rule: Rule,
    roles: Option<Vec<S<String>>>,
    file: usize,
}

/// What one file contributes.
struct Parsed {
    roles: Vec<(Role, Range<usize>)>,
    rules: Vec<PendingRule>,
}

impl PolicySet {
    /// Reads, merges and validates policy files. A directory stands for the `*.toml` files in
    /// it (not recursively), in name order. Reports every problem found.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<PolicySet, Vec<PolicyError>> {
        let files = expand(paths)?;
        let mut texts = Vec::with_capacity(files.len());
        let mut errors = Vec::new();
        for path in &files {
            match std::fs::read_to_string(path) {
                Ok(text) => texts.push((path.display().to_string(), text)),
                Err(e) => errors.push(PolicyError {
                    file: path.display().to_string(),
                    line: 0,
                    col: 0,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let sources: Vec<(&str, &str)> = texts
            .iter()
            .map(|(o, t)| (o.as_str(), t.as_str()))
            .collect();
        PolicySet::from_sources(&sources)
    }

    /// Parses, merges and validates policy texts, each named by its origin (`(origin, text)`).
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<PolicySet, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let mut roles: Vec<(Role, Range<usize>, usize)> = Vec::new();
        let mut pending: Vec<PendingRule> = Vec::new();
        let mut any_parse_error = false;
        if sources.is_empty() {
            errors.push(PolicyError {
                file: "policy".into(),
                line: 0,
                col: 0,
                message: "no policy files".into(),
            });
        }
        for (file, (origin, text)) in sources.iter().enumerate() {
            let src = Source { origin, text };
            let doc: FileDoc = match toml::from_str(text) {
                Ok(doc) => doc,
                Err(e) => {
                    any_parse_error = true;
                    let message = e.message().trim_end().replace('\n', "; ");
                    errors.push(match e.span() {
                        Some(span) => src.error(span, message),
                        None => PolicyError {
                            file: origin.to_string(),
                            line: 0,
                            col: 0,
                            message,
                        },
                    });
                    continue;
                }
            };
            let parsed = parse_file(&src, doc, file, &mut errors);
            roles.extend(parsed.roles.into_iter().map(|(r, s)| (r, s, file)));
            pending.extend(parsed.rules);
        }

        // Role names: unique across files.
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (i, (role, span, file)) in roles.iter().enumerate() {
            if let Some(&first) = by_name.get(role.name.as_str()) {
                let src = Source {
                    origin: sources[*file].0,
                    text: sources[*file].1,
                };
                errors.push(src.error(
                    span.clone(),
                    format!(
                        "duplicate role {:?} (first defined at {}); role names must be unique \
                         across all policy files",
                        role.name, roles[first].0.origin
                    ),
                ));
            } else {
                by_name.insert(&role.name, i);
            }
        }
        if roles.len() > MAX_ROLES {
            errors.push(PolicyError {
                file: sources.first().map_or("policy", |s| s.0).to_owned(),
                line: 0,
                col: 0,
                message: format!(
                    "{} roles defined; at most {MAX_ROLES} are supported",
                    roles.len()
                ),
            });
        }

        // Rule names unique, roles resolved.
        let mut rule_names: HashMap<String, Origin> = HashMap::new();
        let mut rules = Vec::with_capacity(pending.len());
        for p in pending {
            let src = Source {
                origin: sources[p.file].0,
                text: sources[p.file].1,
            };
            let mut rule = p.rule;
            if let Some(first) = rule_names.get(&rule.name) {
                errors.push(PolicyError {
                    file: rule.origin.file.clone(),
                    line: rule.origin.line,
                    col: rule.origin.col,
                    message: format!(
                        "duplicate rule {:?} (first defined at {first}); rule names must be \
                         unique across all policy files",
                        rule.name
                    ),
                });
            } else {
                rule_names.insert(rule.name.clone(), rule.origin.clone());
            }
            if let Some(names) = &p.roles {
                let mut set = RoleSet::default();
                for name in names {
                    match by_name.get(name.get_ref().as_str()) {
                        Some(&i) if i < MAX_ROLES => set.insert(i),
                        Some(_) => {}
                        // A role in a file that did not parse may be the one meant.
                        None if any_parse_error => {}
                        None => {
                            let known: Vec<&str> = by_name.keys().copied().collect();
                            let mut known = known;
                            known.sort_unstable();
                            errors.push(src.error(
                                name.span(),
                                format!(
                                    "unknown role {:?} in rule {:?}; defined roles: {}",
                                    name.get_ref(),
                                    rule.name,
                                    if known.is_empty() {
                                        "none".to_owned()
                                    } else {
                                        known.join(", ")
                                    }
                                ),
                            ));
                        }
                    }
                }
                rule.roles = Some(set);
            }
            rules.push(rule);
        }

        // Unreachable rules: shadowed by an earlier one matching at least as much.
        if errors.is_empty() {
            for (j, later) in rules.iter().enumerate() {
                if let Some(earlier) = rules[..j].iter().find(|r| r.shadows(later)) {
                    errors.push(PolicyError {
                        file: later.origin.file.clone(),
                        line: later.origin.line,
                        col: later.origin.col,
                        message: format!(
                            "rule {:?} is unreachable: rule {:?} ({}) comes first and matches \
                             every statement it matches, for every role and target it applies \
                             to; remove it, or move it before {:?}",
                            later.name, earlier.name, earlier.origin, earlier.name
                        ),
                    });
                }
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(PolicySet {
            version: NEXT_VERSION.fetch_add(1, Ordering::Relaxed),
            roles: roles.into_iter().map(|(r, _, _)| r).collect(),
            rules,
            files: sources.iter().map(|s| s.0.to_owned()).collect(),
        })
    }
}

/// The files `paths` stand for: files as given, directories as their `*.toml` files.
pub(crate) fn expand<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, Vec<PolicyError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let err = |path: &Path, message: String| PolicyError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        message,
    };
    for path in paths {
        let path = path.as_ref();
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
                        .collect();
                    found.sort();
                    if found.is_empty() {
                        errors.push(err(path, "no .toml policy files in this directory".into()));
                    }
                    files.extend(found);
                }
                Err(e) => errors.push(err(path, format!("cannot read directory: {e}"))),
            }
        } else {
            files.push(path.to_owned());
        }
    }
    if files.is_empty() && errors.is_empty() {
        errors.push(err(Path::new("policy"), "no policy files given".into()));
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// A list value: its items, or an error for an empty list (it would match nothing).
fn list<'a>(
    src: &Source<'_>,
    value: &'a Option<S<Vec<S<String>>>>,
    key: &str,
    errors: &mut Vec<PolicyError>,
) -> Option<&'a [S<String>]> {
    let value = value.as_ref()?;
    if value.get_ref().is_empty() {
        errors.push(src.error(
            value.span(),
            format!("`{key}` is empty, so it matches nothing; remove it to match anything"),
        ));
        return None;
    }
    Some(value.get_ref())
}

fn globs(
    src: &Source<'_>,
    items: Option<&[S<String>]>,
    errors: &mut Vec<PolicyError>,
) -> Vec<Glob> {
    items
        .unwrap_or_default()
        .iter()
        .filter_map(|s| match Glob::new(s.get_ref()) {
            Ok(g) => Some(g),
            Err(e) => {
                errors.push(src.error(s.span(), format!("bad pattern: {e}")));
                None
            }
        })
        .collect()
}

fn tables(
    src: &Source<'_>,
    items: Option<&[S<String>]>,
    errors: &mut Vec<PolicyError>,
) -> Vec<TablePattern> {
    items
        .unwrap_or_default()
        .iter()
        .filter_map(|s| match TablePattern::new(s.get_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(src.error(s.span(), format!("bad pattern: {e}")));
                None
            }
        })
        .collect()
}

fn classes(
    src: &Source<'_>,
    items: Option<&[S<String>]>,
    errors: &mut Vec<PolicyError>,
) -> ClassSet {
    let mut set = ClassSet::default();
    for s in items.unwrap_or_default() {
        match StatementClass::from_name(s.get_ref()) {
            Some(c) => set.insert(c),
            None => errors.push(src.error(
                s.span(),
                format!(
                    "unknown statement class {:?}; expected one of: {}",
                    s.get_ref(),
                    StatementClass::ALL.map(StatementClass::name).join(", ")
                ),
            )),
        }
    }
    set
}

fn name(src: &Source<'_>, value: &S<String>, what: &str, errors: &mut Vec<PolicyError>) {
    let n = value.get_ref();
    if n.trim().is_empty() || n.trim() != n || n.contains(['"', '\n']) {
        errors.push(src.error(
            value.span(),
            format!(
                "bad {what} name {n:?}; expected a non-empty name without surrounding \
                     spaces, quotes or line breaks"
            ),
        ));
    }
}

fn parse_file(
    src: &Source<'_>,
    doc: FileDoc,
    file: usize,
    errors: &mut Vec<PolicyError>,
) -> Parsed {
    let mut out = Parsed {
        roles: Vec::new(),
        rules: Vec::new(),
    };
    for r in doc.role {
        name(src, &r.name, "role", errors);
        let identities = globs(src, list(src, &r.identities, "identities", errors), errors);
        let groups = globs(src, list(src, &r.groups, "groups", errors), errors);
        if r.identities.is_none() && r.groups.is_none() {
            errors.push(src.error(
                r.name.span(),
                format!(
                    "role {:?} has neither `identities` nor `groups`, so it applies to nobody",
                    r.name.get_ref()
                ),
            ));
        }
        let mut grants = Vec::new();
        for g in &r.grant {
            let targets = globs(
                src,
                list(src, &Some(g.targets.clone()), "targets", errors),
                errors,
            );
            let class_set = classes(src, list(src, &g.classes, "classes", errors), errors);
            let table_patterns = tables(src, list(src, &g.tables, "tables", errors), errors);
            let mut keywords = Vec::new();
            for k in
                list(src, &g.allow_unanalyzable, "allow_unanalyzable", errors).unwrap_or_default()
            {
                let word = k.get_ref().trim();
                if word.is_empty() || !word.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                    errors.push(src.error(
                        k.span(),
                        format!(
                            "bad leading keyword {:?} in allow_unanalyzable; expected one SQL \
                             keyword such as \"HANDLER\"",
                            k.get_ref()
                        ),
                    ));
                } else if word.eq_ignore_ascii_case("EXECUTE") {
                    errors.push(src.error(
                        k.span(),
                        "EXECUTE cannot be allowed unanalysed: it would also allow EXECUTE \
                         IMMEDIATE '…', which runs any statement unseen; prepare statements \
                         with the binary protocol (COM_STMT_PREPARE), which is analysed",
                    ));
                } else {
                    keywords.push(word.to_ascii_uppercase());
                }
            }
            if g.classes.is_none() && keywords.is_empty() {
                errors.push(src.error(
                    g.targets.span(),
                    format!(
                        "a grant of role {:?} has neither `classes` nor `allow_unanalyzable`, \
                         so it grants nothing",
                        r.name.get_ref()
                    ),
                ));
            }
            grants.push(Grant {
                targets,
                classes: class_set,
                tables: table_patterns,
                allow_unanalyzable: keywords,
            });
        }
        let span = r.name.span();
        out.roles.push((
            Role {
                name: r.name.into_inner(),
                identities,
                groups,
                grants,
                origin: src.origin(span.clone()),
            },
            span,
        ));
    }
    for r in doc.rule {
        name(src, &r.name, "rule", errors);
        let action = match Action::from_name(r.action.get_ref()) {
            Some(a) => a,
            None => {
                errors.push(src.error(
                    r.action.span(),
                    format!(
                        "unknown action {:?}; expected \"deny\", \"approve\", \"mask\" or \
                         \"allow\"",
                        r.action.get_ref()
                    ),
                ));
                Action::Deny
            }
        };
        let mode = match r.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None | Some(("enforce", _)) => RuleMode::Enforce,
            Some(("audit", _)) => RuleMode::Audit,
            Some((other, span)) => {
                errors.push(src.error(
                    span,
                    format!("unknown mode {other:?}; expected \"enforce\" or \"audit\""),
                ));
                RuleMode::Enforce
            }
        };
        let roles = list(src, &r.roles, "roles", errors).map(<[_]>::to_vec);
        let targets = globs(src, list(src, &r.targets, "targets", errors), errors);
        let operations = list(src, &r.operations, "operations", errors).map(|items| {
            let mut set = OperationSet::default();
            for s in items {
                match Operation::from_name(s.get_ref()) {
                    Some(op) => set.insert(op),
                    None => errors.push(src.error(
                        s.span(),
                        format!(
                            "unknown operation {:?}; expected a name such as \"drop_table\", \
                             \"update\", \"select_into_outfile\" (all: {})",
                            s.get_ref(),
                            Operation::ALL
                                .iter()
                                .map(|o| o.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                }
            }
            set
        });
        let class_items = list(src, &r.classes, "classes", errors);
        let class_set = class_items.map(|items| classes(src, Some(items), errors));
        let table_patterns = tables(src, list(src, &r.tables, "tables", errors), errors);
        let procedure_patterns =
            tables(src, list(src, &r.procedures, "procedures", errors), errors);
        let flags = list(src, &r.flags, "flags", errors).map(|items| {
            let mut bits = 0;
            for s in items {
                match FlagSet::from_name(s.get_ref()) {
                    Some(b) => bits |= b,
                    None => errors.push(src.error(
                        s.span(),
                        format!(
                            "unknown flag {:?}; expected one of: {}",
                            s.get_ref(),
                            FlagSet::NAMES.join(", ")
                        ),
                    )),
                }
            }
            FlagSet(bits)
        });
        let variables = globs(src, list(src, &r.variables, "variables", errors), errors);
        let message = r.message.map(|m| {
            if m.get_ref().contains('\n') {
                errors.push(src.error(m.span(), "`message` must be one line"));
            }
            m.into_inner()
        });
        let span = r.name.span();
        out.rules.push(PendingRule {
            rule: Rule {
                name: r.name.into_inner(),
                roles: None,
                targets,
                action,
                mode,
                operations,
                classes: class_set,
                tables: table_patterns,
                procedures: procedure_patterns,
                flags,
                variables,
                message,
                origin: src.origin(span),
            },
            roles,
            file,
        });
    }
    out
}
