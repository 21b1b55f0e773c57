//! The comparison of each gateway run with the direct run of the same setting, as Markdown
//! (`report.md`) and JSON (`report.json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::results::{Outcome, TestResult};
use super::{Route, RunOutcome, Setting, Suite};

/// Counts of outcomes in one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    /// Skipped or disabled.
    pub skipped: usize,
    /// No result at all.
    pub missing: usize,
}

impl Counts {
    fn of<'a>(outcomes: impl Iterator<Item = Outcome> + 'a) -> Counts {
        let mut c = Counts::default();
        for o in outcomes {
            match o {
                Outcome::Pass => c.pass += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Skipped | Outcome::Disabled => c.skipped += 1,
                Outcome::Missing => c.missing += 1,
            }
        }
        c
    }
}

/// A test that passed directly and not through the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub test: String,
    /// What it did through the gateway.
    pub gateway: Outcome,
    /// mtr's comment on it (`timeout after 180 seconds`, ...).
    pub comment: String,
    /// What mtr printed about the failure (the error or the result diff).
    pub failure: Option<PathBuf>,
    /// mysqltest's log of the test (results up to the failure).
    pub test_log: Option<PathBuf>,
    /// The result mysqltest produced, when it differed from the expected one (`.reject`).
    pub reject: Option<PathBuf>,
    /// The gateway's log of the run.
    pub gateway_log: Option<PathBuf>,
    /// Its WARN and ERROR lines while the test ran.
    pub gateway_warnings: Vec<String>,
    /// The same test alone on fresh servers, if it was re-run.
    pub alone: Option<Alone>,
}

/// A test re-run alone, direct and through the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Alone {
    pub direct: Outcome,
    pub gateway: Outcome,
    /// The gateway re-run's directory.
    pub dir: PathBuf,
}

impl Alone {
    /// The re-run shows the difference again.
    pub fn reproduced(&self) -> bool {
        self.direct == Outcome::Pass && self.gateway != Outcome::Pass
    }
}

/// One gateway run set beside the direct run of its setting.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub setting: Setting,
    pub route: Route,
    pub tests: usize,
    pub direct: Counts,
    pub gateway: Counts,
    /// Passed directly, not through the gateway.
    pub differences: Vec<Difference>,
    /// Passed through the gateway, not directly (not a failure; worth a look).
    pub gateway_only: Vec<String>,
    /// The direct or the gateway run did not complete.
    pub errors: Vec<String>,
}

/// The runs of one setting and route (the parts of a split list), as one.
pub struct Group<'a> {
    pub setting: Setting,
    pub route: Route,
    pub runs: Vec<&'a RunOutcome>,
}

impl<'a> Group<'a> {
    /// The non-confirmation runs grouped by setting and route, in the order first seen.
    pub fn of(outcomes: &'a [RunOutcome]) -> Vec<Group<'a>> {
        let mut groups: Vec<Group<'a>> = Vec::new();
        for o in outcomes.iter().filter(|o| !o.spec.confirm) {
            match groups
                .iter_mut()
                .find(|g| g.setting == o.spec.setting && g.route == o.spec.route)
            {
                Some(g) => g.runs.push(o),
                None => groups.push(Group {
                    setting: o.spec.setting,
                    route: o.spec.route,
                    runs: vec![o],
                }),
            }
        }
        groups
    }

    /// Each listed test with its result and the run (part) it ran in.
    pub fn results(
        &self,
    ) -> impl Iterator<Item = (&'a String, &'a TestResult, &'a RunOutcome)> + '_ {
        self.runs
            .iter()
            .flat_map(|r| r.spec.tests.iter().map(move |t| (t, &r.results[t], *r)))
    }

    pub fn counts(&self) -> Counts {
        Counts::of(self.results().map(|(_, r, _)| r.outcome))
    }

    pub fn tests(&self) -> usize {
        self.runs.iter().map(|r| r.spec.tests.len()).sum()
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.runs.iter().map(|r| r.elapsed_secs).sum()
    }

    /// `mtr-tls-off-text-gateway-epoll` (without the part).
    pub fn name(&self) -> String {
        let name = self.runs[0].spec.dir_name();
        name.split('/').next().unwrap_or(&name).to_owned()
    }

    /// Run errors and gateway deaths, each with its run.
    pub fn errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for o in &self.runs {
            if let Some(e) = &o.error {
                errors.push(format!("{}: {e}", o.spec.dir_name()));
            }
            if let Some(e) = &o.gateway_died {
                errors.push(format!("{}: the gateway died: {e}", o.spec.dir_name()));
            }
        }
        errors
    }
}

/// Pairs each gateway route with the direct one of its setting. `confirmations` are the
/// re-runs of single tests (`RunSpec::confirm`).
pub fn compare(outcomes: &[RunOutcome], confirmations: &[RunOutcome]) -> Vec<Comparison> {
    let groups = Group::of(outcomes);
    let mut out = Vec::new();
    for group in &groups {
        let Route::Gateway(_) = group.route else {
            continue;
        };
        let Some(direct) = groups
            .iter()
            .find(|g| g.route == Route::Direct && g.setting == group.setting)
        else {
            continue;
        };
        let direct_results: BTreeMap<&String, Outcome> =
            direct.results().map(|(t, r, _)| (t, r.outcome)).collect();
        let mut errors = direct.errors();
        errors.extend(group.errors());
        let mut differences = Vec::new();
        let mut gateway_only = Vec::new();
        for (test, g, run) in group.results() {
            let d = direct_results
                .get(test)
                .copied()
                .unwrap_or(Outcome::Missing);
            if d == Outcome::Pass && g.outcome != Outcome::Pass {
                differences.push(difference(test, g, run, confirmations));
            } else if g.outcome == Outcome::Pass && d != Outcome::Pass {
                gateway_only.push(test.clone());
            }
        }
        out.push(Comparison {
            setting: group.setting,
            route: group.route,
            tests: group.tests(),
            direct: direct.counts(),
            gateway: group.counts(),
            differences,
            gateway_only,
            errors,
        });
    }
    out
}

/// The evidence for one test that passed directly and not through the gateway in `run`.
fn difference(
    test: &str,
    g: &TestResult,
    run: &RunOutcome,
    confirmations: &[RunOutcome],
) -> Difference {
    let short = test.split_once('.').map_or(test, |(_, t)| t);
    // Where it ran: the run's directory, or the one the run went on in after a failure.
    let dir = g.dir.clone().unwrap_or_else(|| run.dir.clone());
    let gateway_log = Some(dir.join("gatehouse.log")).filter(|p| p.exists());
    let failure = dir
        .join("failures")
        .join(format!("{}.txt", super::file_name(test)));
    let test_log = match run.spec.setting.suite {
        Suite::Mtr => dir.join("var/log").join(format!("{short}.log")),
        Suite::ClientTest => dir
            .join("client-test")
            .join(format!("{}.log", super::file_name(test))),
    };
    let rerun = |route: Route| {
        confirmations.iter().find(|c| {
            c.spec.setting == run.spec.setting
                && c.spec.route == route
                && c.spec.tests.first().map(String::as_str) == Some(test)
        })
    };
    let alone = match (rerun(Route::Direct), rerun(run.spec.route)) {
        (Some(d), Some(g)) => Some(Alone {
            direct: d.results.get(test).map_or(Outcome::Missing, |r| r.outcome),
            gateway: g.results.get(test).map_or(Outcome::Missing, |r| r.outcome),
            dir: g.dir.clone(),
        }),
        _ => None,
    };
    Difference {
        test: test.to_owned(),
        gateway: g.outcome,
        comment: g.comment.clone(),
        failure: failure.exists().then_some(failure),
        test_log: test_log.exists().then_some(test_log),
        reject: Some(dir.join("rejects").join(super::reject_path(test))).filter(|p| p.exists()),
        gateway_log,
        gateway_warnings: g.gateway_warnings.clone(),
        alone,
    }
}

/// What the JSON holds besides the runs.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The list file, if one was used.
    pub list: Option<String>,
    /// mtr tests in the list.
    pub tests: usize,
    /// mariadb-client-test functions.
    pub client_tests: usize,
    pub elapsed_secs: f64,
    pub git_commit: Option<String>,
    /// `mariadb --version`.
    pub mariadb: Option<String>,
}

/// `report.json`.
#[derive(Serialize)]
pub struct Json<'a> {
    pub summary: &'a Summary,
    pub runs: &'a [RunOutcome],
    pub confirmations: &'a [RunOutcome],
    pub comparisons: &'a [Comparison],
}

/// `report.md`: the table, then every difference with its evidence.
pub fn markdown(summary: &Summary, runs: &[RunOutcome], comparisons: &[Comparison]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Transparency: mtr and mariadb-client-test, direct vs gateway\n"
    );
    let _ = writeln!(
        s,
        "{} mtr tests{}; commit {}; {}; {:.0} min in all.\n",
        summary.tests,
        summary
            .list
            .as_ref()
            .map(|l| format!(" from `{l}`"))
            .unwrap_or_default(),
        summary.git_commit.as_deref().unwrap_or("?"),
        summary.mariadb.as_deref().unwrap_or("MariaDB ?"),
        summary.elapsed_secs / 60.0
    );
    s.push_str(&table(comparisons));
    let total: usize = comparisons.iter().map(|c| c.differences.len()).sum();
    let _ = writeln!(
        s,
        "\n{} test{} passed directly but not through the gateway.",
        total,
        if total == 1 { "" } else { "s" }
    );

    // Runs: timing and TLS evidence.
    let _ = writeln!(s, "\n## Runs\n");
    let _ = writeln!(
        s,
        "| run | parts | pass | fail | skipped | missing | TLS (client) | time |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let groups = Group::of(runs);
    for g in &groups {
        let c = g.counts();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} s |",
            g.name(),
            g.runs.len(),
            c.pass,
            c.fail,
            c.skipped,
            c.missing,
            g.runs[0].client_tls.as_deref().unwrap_or("?"),
            g.elapsed_secs()
        );
    }
    for g in &groups {
        for e in g.errors() {
            let _ = writeln!(s, "\n**Run error** {e}");
        }
    }
    s.push_str(&warnings_section(&groups));

    for c in comparisons {
        if c.differences.is_empty() && c.gateway_only.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n## {} — {}\n", c.setting.label(), c.route.name());
        for d in &c.differences {
            let _ = write!(s, "- `{}`: {}", d.test, d.gateway.name());
            if !d.comment.is_empty() {
                let _ = write!(s, " ({})", d.comment);
            }
            match &d.alone {
                Some(a) if a.reproduced() => {
                    let _ = write!(s, "; alone on fresh servers: fails again");
                }
                Some(a) => {
                    let _ = write!(
                        s,
                        "; alone on fresh servers: direct {}, gateway {} (not reproduced)",
                        a.direct.name(),
                        a.gateway.name()
                    );
                }
                None => {}
            }
            s.push('\n');
            for (what, path) in [
                ("mtr output", &d.failure),
                ("result (.reject)", &d.reject),
                ("test log", &d.test_log),
                ("gateway log", &d.gateway_log),
            ] {
                if let Some(p) = path {
                    let _ = writeln!(s, "  - {what}: `{}`", p.display());
                }
            }
            let mut warnings = d.gateway_warnings.clone();
            warnings.dedup();
            for w in warnings.iter().take(5) {
                let _ = writeln!(s, "  - gateway: `{}`", truncate(w, 200));
            }
            if warnings.len() > 5 {
                let _ = writeln!(s, "  - gateway: … {} more", warnings.len() - 5);
            }
        }
        if !c.gateway_only.is_empty() {
            let _ = writeln!(
                s,
                "- passed through the gateway but not directly: {}",
                c.gateway_only
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    s
}

/// The gateway's WARN/ERROR lines over whole runs, with numbers (session ids, ports, thread
/// ids) folded so that one kind of event is one line: how often, in how many tests, which.
fn warnings_section(groups: &[Group]) -> String {
    let mut s = String::new();
    for g in groups.iter().filter(|g| g.route != Route::Direct) {
        let mut kinds: BTreeMap<String, (usize, Vec<&str>)> = BTreeMap::new();
        for (test, r, _) in g.results() {
            let mut seen = std::collections::BTreeSet::new();
            for w in &r.gateway_warnings {
                let kind = fold_numbers(w);
                let entry = kinds.entry(kind.clone()).or_default();
                entry.0 += 1;
                if seen.insert(kind) {
                    entry.1.push(test);
                }
            }
        }
        if kinds.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n### Gateway warnings in {}\n", g.name());
        let _ = writeln!(s, "| count | tests | line (numbers folded to N) |");
        let _ = writeln!(s, "|---|---|---|");
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1 .0));
        for (kind, (count, tests)) in kinds.iter().take(25) {
            let mut names: Vec<String> = tests.iter().take(4).map(|t| format!("`{t}`")).collect();
            if tests.len() > 4 {
                names.push(format!("… ({} tests)", tests.len()));
            }
            let _ = writeln!(
                s,
                "| {count} | {} | `{}` |",
                names.join(", "),
                truncate(kind, 160).replace('|', "\\|")
            );
        }
    }
    s
}

/// Folds the values that differ per connection (`session=149 peer=127.0.0.1:38000` →
/// `session=N peer=N`), keeping the rest (`command 0x06`, `code=1045`).
fn fold_numbers(line: &str) -> String {
    const KEYS: &[&str] = &[
        "session=",
        "peer=",
        "upstream_connection_id=",
        "connection_id=",
    ];
    line.split(' ')
        .map(|word| match KEYS.iter().find(|k| word.starts_with(*k)) {
            Some(k) => format!("{k}N"),
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The table: one row per gateway run.
pub fn table(comparisons: &[Comparison]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| configuration | tests | passed direct | passed via gateway | skipped (direct / gateway) | differences |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    // Group by setting so the direct number reads once per block.
    let mut by_setting: BTreeMap<Setting, Vec<&Comparison>> = BTreeMap::new();
    for c in comparisons {
        by_setting.entry(c.setting).or_default().push(c);
    }
    for (setting, cs) in by_setting {
        for c in cs {
            let diffs = if c.differences.is_empty() && c.errors.is_empty() {
                "0".to_owned()
            } else {
                let mut parts = Vec::new();
                if !c.differences.is_empty() {
                    parts.push(format!(
                        "**{}**: {}",
                        c.differences.len(),
                        c.differences
                            .iter()
                            .take(6)
                            .map(|d| format!("`{}`", d.test))
                            .collect::<Vec<_>>()
                            .join(", ")
                            + if c.differences.len() > 6 { ", …" } else { "" }
                    ));
                }
                if !c.errors.is_empty() {
                    parts.push("run error (see below)".into());
                }
                parts.join("; ")
            };
            let _ = writeln!(
                s,
                "| {}, {} | {} | {} | {} | {} / {} | {} |",
                setting.label(),
                c.route.name(),
                c.tests,
                c.direct.pass,
                c.gateway.pass,
                c.direct.skipped,
                c.gateway.skipped,
                diffs
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::results::TestResult;
    use super::super::{Driver, Protocol, RunSpec, TlsMode};
    use super::*;

    fn run(route: Route, results: &[(&str, Outcome)]) -> RunOutcome {
        RunOutcome {
            spec: RunSpec {
                setting: Setting {
                    suite: Suite::Mtr,
                    tls: TlsMode::Off,
                    protocol: Protocol::Text,
                },
                route,
                tests: results.iter().map(|(t, _)| t.to_string()).collect(),
                confirm: false,
                chunk: None,
            },
            dir: PathBuf::from("/nonexistent"),
            results: results
                .iter()
                .map(|(t, o)| {
                    (
                        t.to_string(),
                        TestResult {
                            outcome: *o,
                            millis: None,
                            comment: String::new(),
                            details: String::new(),
                            gateway_warnings: Vec::new(),
                            dir: None,
                        },
                    )
                })
                .collect(),
            error: None,
            client_tls: None,
            gateway_log: None,
            gateway_died: None,
            elapsed_secs: 1.0,
        }
    }

    #[test]
    fn differences_are_direct_passes_that_do_not_pass_via_the_gateway() {
        use Outcome::*;
        let direct = run(
            Route::Direct,
            &[
                ("main.a", Pass),
                ("main.b", Pass),
                ("main.c", Skipped),
                ("main.d", Fail),
            ],
        );
        let gateway = run(
            Route::Gateway(Driver::Epoll),
            &[
                ("main.a", Pass),
                ("main.b", Fail),
                ("main.c", Skipped),
                ("main.d", Pass),
            ],
        );
        let cmp = compare(&[direct, gateway], &[]);
        assert_eq!(cmp.len(), 1);
        let c = &cmp[0];
        assert_eq!((c.direct.pass, c.gateway.pass), (2, 2));
        assert_eq!((c.direct.skipped, c.gateway.skipped), (1, 1));
        assert_eq!(
            c.differences
                .iter()
                .map(|d| d.test.as_str())
                .collect::<Vec<_>>(),
            ["main.b"]
        );
        assert_eq!(c.gateway_only, ["main.d"]);
        let table = table(&cmp);
        assert!(
            table.contains("| mtr, TLS off, text protocol, gateway-epoll | 4 | 2 | 2 | 1 / 1 | **1**: `main.b` |"),
            "{table}"
        );
    }

    #[test]
    fn folding_keeps_what_matters() {
        assert_eq!(
            fold_numbers(
                "WARN gatehouse::session: unknown command refused session=149 command=command 0x06"
            ),
            "WARN gatehouse::session: unknown command refused session=N command=command 0x06"
        );
        assert_eq!(
            fold_numbers("WARN x: upstream refused the relayed login session=3 user=u peer=127.0.0.1:38000 code=1045 Access"),
            "WARN x: upstream refused the relayed login session=N user=u peer=N code=1045 Access"
        );
    }
}
