//! Glob patterns for names in policy files: identities, groups, targets, variables, and
//! `schema.table` patterns.
//!
//! Syntax: `*` matches any run of characters (also none), `?` exactly one, `[abc]`, `[a-z]`
//! and `[!a-z]` one character of (or not of) a set, and `\` makes the next character literal.
//! A table pattern is two globs separated by a `.` (`shop.orders`, `shop.*`, `*.secrets`,
//! `` `my.db`.* ``); either part may be written in backticks to match it literally.
//!
//! # Which way a pattern errs
//!
//! Patterns are matched in one of two ways ([`Side`]), chosen by what the match *grants*:
//!
//! * [`Side::Broad`] — for rules that refuse (deny, approve) or flag (mask): names are
//!   compared ASCII case-insensitively (a server with `lower_case_table_names=1` folds
//!   `SECRETS` to `secrets`), and a table whose database is unknown (no current database)
//!   matches any database pattern. Erring wide refuses more.
//! * [`Side::Narrow`] — for what allows (allow rules, grants): names are compared exactly, and
//!   a table whose database is unknown matches only the database pattern `*`. Erring narrow
//!   allows less.

use std::fmt;

/// How a pattern is matched; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// For rules that refuse: case-insensitive, unknown database matches.
    Broad,
    /// For what allows: exact case, unknown database matches only `*`.
    Narrow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Any,
    /// `[…]`: ranges (single characters are `(c, c)`), negated when `!`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    toks: Vec<Tok>,
}

impl Glob {
    /// Compiles `pattern`; the error says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        let mut toks = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if toks.last() != Some(&Tok::Any) {
                        toks.push(Tok::Any);
                    }
                }
                '?' => toks.push(Tok::One),
                '\\' => match chars.next() {
                    Some(c) => toks.push(Tok::Lit(c)),
                    None => return Err(format!("pattern `{pattern}` ends with a lone `\\`")),
                },
                '[' => {
                    let negated = chars.next_if_eq(&'!').is_some();
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        if c == ']' && !ranges.is_empty() {
                            closed = true;
                            break;
                        }
                        let lo = if c == '\\' {
                            chars.next().ok_or_else(|| {
                                format!("pattern `{pattern}` ends with a lone `\\`")
                            })?
                        } else {
                            c
                        };
                        if chars.peek() == Some(&'-') {
                            chars.next();
                            match chars.next() {
                                Some(']') => {
                                    // `[a-]`: `a` and `-`.
                                    ranges.push((lo, lo));
                                    ranges.push(('-', '-'));
                                    closed = true;
                                    break;
                                }
                                Some(hi) => {
                                    if hi < lo {
                                        return Err(format!(
                                            "pattern `{pattern}`: range `{lo}-{hi}` is reversed"
                                        ));
                                    }
                                    ranges.push((lo, hi));
                                }
                                None => break,
                            }
                        } else {
                            ranges.push((lo, lo));
                        }
                    }
                    if !closed {
                        return Err(format!(
                            "pattern `{pattern}` has a `[` without its closing `]`"
                        ));
                    }
                    toks.push(Tok::Class { negated, ranges });
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Glob {
            source: pattern.to_owned(),
            toks,
        })
    }

    /// A glob matching exactly `name` (no wildcards).
    pub fn literal(name: &str) -> Glob {
        Glob {
            source: name
                .chars()
                .flat_map(|c| {
                    let escape = matches!(c, '*' | '?' | '[' | ']' | '\\');
                    escape.then_some('\\').into_iter().chain(Some(c))
                })
                .collect(),
            toks: name.chars().map(Tok::Lit).collect(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether it is `*`: matches everything.
    pub fn is_match_all(&self) -> bool {
        self.toks == [Tok::Any]
    }

    /// Whether it has no wildcard (it matches one name).
    pub fn is_literal(&self) -> bool {
        self.toks.iter().all(|t| matches!(t, Tok::Lit(_)))
    }

    /// Whether `name` matches, exactly (case-sensitive).
    pub fn matches(&self, name: &str) -> bool {
        self.matches_case(name, false)
    }

    /// Whether `name` matches; ASCII case-insensitively when `fold`.
    pub fn matches_case(&self, name: &str, fold: bool) -> bool {
        // The classic wildcard algorithm: on a mismatch, backtrack to the last `*` and let it
        // eat one more character. Linear in practice, O(n·m) at worst; names are short. No
        // allocation: positions are byte offsets into `name`.
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        let eq = |a: char, b: char| {
            if fold {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        while let Some(c) = name[t..].chars().next() {
            let next = t + c.len_utf8();
            let step = match self.toks.get(p) {
                Some(Tok::Any) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(Tok::Lit(l)) => eq(*l, c),
                Some(Tok::One) => true,
                Some(Tok::Class { negated, ranges }) => {
                    let (lower, upper) = (c.to_ascii_lowercase(), c.to_ascii_uppercase());
                    let hit = ranges.iter().any(|&(lo, hi)| {
                        (lo..=hi).contains(&c)
                            || (fold && ((lo..=hi).contains(&lower) || (lo..=hi).contains(&upper)))
                    });
                    hit != *negated
                }
                None => false,
            };
            if step {
                p += 1;
                t = next;
                continue;
            }
            match star {
                Some((sp, st)) => {
                    // Let the `*` take one more character.
                    let st = st + name[st..].chars().next().map_or(1, char::len_utf8);
                    p = sp + 1;
                    t = st;
                    star = Some((sp, st));
                }
                None => return false,
            }
        }
        self.toks[p..].iter().all(|t| *t == Tok::Any)
    }

    /// Whether every name `other` matches, this matches too — as far as can be told cheaply:
    /// `self` is `*`, the two are the same pattern, or `other` is a literal `self` matches.
    pub fn covers(&self, other: &Glob) -> bool {
        self.is_match_all()
            || self.toks == other.toks
            || (other.is_literal() && self.matches(&other.literal_text()))
    }

    fn literal_text(&self) -> String {
        self.toks
            .iter()
            .filter_map(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// `schema.table`, each part a glob (or a literal in backticks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePattern {
    source: String,
    /// The database part.
    pub schema: Glob,
    /// The table part.
    pub table: Glob,
}

impl TablePattern {
    /// Parses `schema.table`; the error says what is wrong.
    pub fn new(pattern: &str) -> Result<TablePattern, String> {
        let (schema, rest) = part(pattern)?;
        let Some(rest) = rest.strip_prefix('.') else {
            return Err(format!(
                "table pattern `{pattern}` must be `schema.table` (globs allowed: `shop.*`, \
                 `*.secrets`, `*.*`)"
            ));
        };
        let (table, rest) = part(rest)?;
        if !rest.is_empty() {
            return Err(format!(
                "table pattern `{pattern}` has more than one `.`; quote a name that contains \
                 one in backticks"
            ));
        }
        Ok(TablePattern {
            source: pattern.to_owned(),
            schema: schema.map_err(|e| format!("table pattern `{pattern}`: {e}"))?,
            table: table.map_err(|e| format!("table pattern `{pattern}`: {e}"))?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether table `name` in database `schema` (`None`: unknown) matches.
    pub fn matches(&self, schema: Option<&str>, name: &str, side: Side) -> bool {
        let fold = side == Side::Broad;
        let schema_ok = match schema {
            Some(s) => {
                // information_schema is case-insensitive everywhere (analysis reports it
                // lower-case).
                self.schema
                    .matches_case(s, fold || s == "information_schema")
            }
            None => side == Side::Broad || self.schema.is_match_all(),
        };
        schema_ok && self.table.matches_case(name, fold)
    }

    /// Whether a whole database (created, altered or dropped) matches: when the table part is
    /// `*` and the database part matches it; for [`Side::Broad`] also when the database part
    /// names it without wildcards (`DROP DATABASE shop` drops `shop.orders`: a rule about
    /// `shop.orders` refuses it; a rule about `*.secrets` does not refuse every database).
    pub fn matches_database(&self, db: &str, side: Side) -> bool {
        match side {
            Side::Broad => {
                (self.table.is_match_all() || self.schema.is_literal())
                    && self.schema.matches_case(db, true)
            }
            Side::Narrow => self.table.is_match_all() && self.schema.matches(db),
        }
    }

    /// Whether every table `other` matches, this matches too (see [`Glob::covers`]).
    pub fn covers(&self, other: &TablePattern) -> bool {
        self.schema.covers(&other.schema) && self.table.covers(&other.table)
    }
}

impl fmt::Display for TablePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// One part of a table pattern: a backtick-quoted literal or a glob up to the next `.`.
#[allow(clippy::type_complexity)]
fn part(s: &str) -> Result<(Result<Glob, String>, &str), String> {
    if let Some(body) = s.strip_prefix('`') {
        let mut name = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if body[i + 1..].starts_with('`') {
                    chars.next();
                    name.push('`');
                    continue;
                }
                if name.is_empty() {
                    return Err("empty name in backticks".into());
                }
                return Ok((Ok(Glob::literal(&name)), &body[i + 1..]));
            }
            name.push(c);
        }
        return Err(format!("`{s}`: a backtick without its closing backtick"));
    }
    // Up to the first `.` that is not escaped and not inside `[…]`.
    let mut end = s.len();
    let mut escaped = false;
    let mut in_class = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' => in_class = true,
            ']' => in_class = false,
            '.' if !in_class => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    Ok((Glob::new(&s[..end]), &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = |p: &str| Glob::new(p).unwrap();
        assert!(g("*").matches("anything"));
        assert!(g("*").matches(""));
        assert!(g("agent-*").matches("agent-ci"));
        assert!(!g("agent-*").matches("Agent-ci"));
        assert!(g("agent-*").matches_case("Agent-ci", true));
        assert!(g("a?c").matches("abc"));
        assert!(!g("a?c").matches("ac"));
        assert!(g("[a-c]x").matches("bx"));
        assert!(!g("[!a-c]x").matches("bx"));
        assert!(g("[!a-c]x").matches("dx"));
        assert!(g("*.*").matches("a.b"));
        assert!(g("a*b*c").matches("aXbYc"));
        assert!(!g("a*b*c").matches("aXbY"));
        assert!(g("\\*").matches("*"));
        assert!(!g("\\*").matches("x"));
        assert!(g("[A-Z]").matches_case("q", true));
        assert!(g("*secret*").matches("my_secrets_db"));
        assert!(g("*a*a*a*a*b").matches("aaaaaaaaaaaaab"));
        assert!(!g("*a*a*a*a*b").matches("aaaaaaaaaaaaaa"));
        assert!(g("é*").matches("été"));
        assert!(g("*té").matches("été"));
        assert!(g("?t?").matches("été"));
        assert!(!g("??").matches("été"));
        for bad in ["", "[abc", "[z-a]", "x\\", "[]"] {
            assert!(Glob::new(bad).is_err(), "{bad}");
        }
        assert!(Glob::literal("a*b").matches("a*b"));
        assert!(!Glob::literal("a*b").matches("axb"));
        assert_eq!(Glob::literal("a*b").as_str(), "a\\*b");
    }

    #[test]
    fn covers() {
        let g = |p: &str| Glob::new(p).unwrap();
        assert!(g("*").covers(&g("x*")));
        assert!(g("x*").covers(&g("x*")));
        assert!(g("x*").covers(&g("xy")));
        assert!(!g("x*").covers(&g("y")));
        assert!(!g("x*").covers(&g("xy*")));
    }

    #[test]
    fn table_patterns() {
        let t = |p: &str| TablePattern::new(p).unwrap();
        assert!(t("shop.*").matches(Some("shop"), "orders", Side::Narrow));
        assert!(!t("shop.*").matches(Some("SHOP"), "orders", Side::Narrow));
        assert!(t("shop.*").matches(Some("SHOP"), "orders", Side::Broad));
        assert!(t("*.secrets").matches(Some("x"), "secrets", Side::Narrow));
        assert!(!t("shop.*").matches(None, "orders", Side::Narrow));
        assert!(t("shop.*").matches(None, "orders", Side::Broad));
        assert!(t("*.orders").matches(None, "orders", Side::Narrow));
        assert!(t("`my.db`.*").matches(Some("my.db"), "t", Side::Narrow));
        assert!(t("`a*`.b").matches(Some("a*"), "b", Side::Narrow));
        assert!(!t("`a*`.b").matches(Some("ax"), "b", Side::Narrow));
        assert!(t("INFORMATION_SCHEMA.*").matches(
            Some("information_schema"),
            "tables",
            Side::Narrow
        ));
        assert!(t("shop.*").matches_database("shop", Side::Narrow));
        assert!(!t("shop.orders").matches_database("shop", Side::Narrow));
        assert!(t("shop.orders").matches_database("shop", Side::Broad));
        assert!(!t("*.secrets").matches_database("shop", Side::Broad));
        assert!(t("sec*.*").matches_database("secrets", Side::Broad));
        for bad in ["shop", "*", "a.b.c", "`a.b", "[x.y", "a.", ".b"] {
            assert!(TablePattern::new(bad).is_err(), "{bad}");
        }
        assert!(t("shop.*").covers(&t("shop.orders")));
        assert!(t("*.*").covers(&t("a*.b")));
        assert!(!t("shop.orders").covers(&t("shop.*")));
    }
}
