//! Reading what mtr (`mariadb-test-run.pl`) and `mariadb-client-test` printed: one outcome per
//! test, and for a failed test the text mtr printed about it (the diff or the error).

use std::collections::BTreeMap;

use serde::Serialize;

/// What happened to one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// `[ pass ]` (also `[ retry-pass ]`).
    Pass,
    /// `[ fail ]` (also `retry-fail`, `exp-fail`, timeouts, warnings in the server log).
    Fail,
    /// `[ skipped ]`: the test decided it cannot run here (missing feature, option, ...).
    Skipped,
    /// `[ disabled ]`: listed in a suite's `disabled.def`.
    Disabled,
    /// In the list, but mtr printed no result for it (mtr stopped early, or the name is wrong).
    Missing,
}

impl Outcome {
    /// The word used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skipped => "skipped",
            Outcome::Disabled => "disabled",
            Outcome::Missing => "missing",
        }
    }
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    pub outcome: Outcome,
    /// Milliseconds mtr measured, for a pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub millis: Option<u64>,
    /// The text after the status (`Test requires: 'have_log_bin'`, `timeout after 120 seconds`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// For a failure: what mtr printed about it (error, result diff), up to the next test.
    #[serde(skip)]
    pub details: String,
    /// Through the gateway: its WARN and ERROR log lines while the test ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway_warnings: Vec<String>,
    /// The directory of the server (and gateway) it ran against: the run's, or a later one
    /// the run went on in after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<std::path::PathBuf>,
}

/// One result line: `main.select   [ pass ]   1390`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine<'a> {
    /// `suite.test`.
    pub name: &'a str,
    /// The combination mtr ran (`'innodb'`), if any.
    pub combination: Option<&'a str>,
    /// The word between the brackets: `pass`, `fail`, `skipped`, `retry-pass`, ...
    pub status: &'a str,
    /// What follows the brackets, trimmed.
    pub rest: &'a str,
}

/// Parses one line of mtr's report; `None` for every other line. Tolerates the worker column
/// (`w1`) of parallel runs, a combination (`'row'`) and terminal colour codes.
pub fn parse_line(line: &str) -> Option<ResultLine<'_>> {
    let open = line.find("[ ")?;
    let close = open + line[open..].find(" ]")?;
    let status = line[open + 2..close].trim();
    if status.is_empty()
        || !status
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    let mut words = line[..open].split_whitespace().map(strip_colour);
    let name = words.next()?;
    if !is_test_name(name) {
        return None;
    }
    let mut combination = None;
    for word in words.filter(|w| !w.is_empty()) {
        if let Some(c) = word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) {
            combination = Some(c);
        } else if !(word.starts_with('w') && word[1..].chars().all(|c| c.is_ascii_digit())) {
            return None;
        }
    }
    Some(ResultLine {
        name,
        combination,
        status,
        rest: strip_colour(line[close + 2..].trim()).trim(),
    })
}

/// `suite.test` (suites may have a `/`: `compat/oracle.sp`).
fn is_test_name(word: &str) -> bool {
    let Some((suite, test)) = word.split_once('.') else {
        return false;
    };
    let ok = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c))
    };
    ok(suite, &['/']) && ok(test, &['.'])
}

/// Drops ANSI colour sequences at either end of a word (mtr colours the status on a terminal).
fn strip_colour(s: &str) -> &str {
    let mut s = s;
    while let Some(rest) = s.strip_prefix('\u{1b}') {
        s = rest.find('m').map_or("", |i| &rest[i + 1..]);
    }
    if let Some(i) = s.find('\u{1b}') {
        s = &s[..i];
    }
    s
}

/// The outcome a status word stands for.
fn outcome_of(status: &str) -> Option<Outcome> {
    Some(match status {
        "pass" | "retry-pass" => Outcome::Pass,
        "fail" | "retry-fail" | "exp-fail" => Outcome::Fail,
        "skipped" => Outcome::Skipped,
        "disabled" => Outcome::Disabled,
        _ => return None,
    })
}

/// Every test's result in mtr's output. A test reported twice (a retry) keeps its last
/// result. The text after a failure, up to the next result line or mtr's closing rule, becomes
/// that failure's `details`.
pub fn parse_mtr_output(text: &str) -> BTreeMap<String, TestResult> {
    let mut results = BTreeMap::new();
    let mut open_failure: Option<String> = None;
    for line in text.lines() {
        let parsed = parse_line(line).and_then(|l| Some((l.clone(), outcome_of(l.status)?)));
        let Some((line, outcome)) = parsed else {
            if let Some(name) = &open_failure {
                if line.starts_with("------------------------------------------") {
                    open_failure = None;
                    continue;
                }
                let result: &mut TestResult = results.get_mut(name).expect("inserted");
                result.details.push_str(line);
                result.details.push('\n');
            }
            continue;
        };
        let name = match line.combination {
            Some(c) => format!("{} '{c}'", line.name),
            None => line.name.to_owned(),
        };
        let millis = match outcome {
            Outcome::Pass => line
                .rest
                .split_whitespace()
                .next()
                .and_then(|t| t.parse().ok()),
            _ => None,
        };
        let comment = if millis.is_some() { "" } else { line.rest };
        open_failure = (outcome == Outcome::Fail).then(|| name.clone());
        results.insert(
            name,
            TestResult {
                outcome,
                millis,
                comment: comment.to_owned(),
                details: String::new(),
                gateway_warnings: Vec::new(),
                dir: None,
            },
        );
    }
    for result in results.values_mut() {
        let trimmed = result.details.trim().to_owned();
        result.details = trimmed;
    }
    results
}

/// The WARN and ERROR lines of a stretch of the gateway's log (tracing's text format:
/// `2026-11-22T08:47:24.828896Z  WARN gatehouse::session: ...`), without the timestamp.
pub fn log_warnings(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(' ')?;
            let rest = rest.trim_start();
            (rest.starts_with("WARN ") || rest.starts_with("ERROR ")).then(|| rest.to_owned())
        })
        .collect()
}

/// `2026-11-22T08:47:24.828896Z` (tracing's timestamps) as a time.
pub fn parse_utc(stamp: &str) -> Option<std::time::SystemTime> {
    let s = stamp.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<u64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    Some(
        std::time::UNIX_EPOCH
            + std::time::Duration::new(days * 86_400 + h * 3600 + min * 60 + sec, nanos),
    )
}

/// Reads a test list: one `suite.test` per line; `#` starts a comment; blank lines are
/// ignored. Errors name the line of anything that is not a test name.
pub fn parse_list(text: &str) -> Result<Vec<String>, String> {
    let mut tests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if !is_test_name(line) {
            return Err(format!(
                "line {}: {line:?} is not a test name (suite.test)",
                i + 1
            ));
        }
        if tests.iter().any(|t| t == line) {
            return Err(format!("line {}: {line} is listed twice", i + 1));
        }
        tests.push(line.to_owned());
    }
    Ok(tests)
}

/// The test functions `mariadb-client-test --show-tests` lists: the lines after
/// `All possible test names:`, one name each.
pub fn parse_client_test_names(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.contains("All possible test names"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Excerpts of real `mariadb-test-run.pl --extern ...` output (MariaDB 10.11.19).
    const MTR_OUTPUT: &str = "\
Checking supported features...
MariaDB Version 10.11.19
 - skipping SSL, mysqld not compiled with SSL
 - binaries built with wsrep patch
Collecting tests...

==============================================================================

TEST                                      RESULT   TIME (ms) or COMMENT
--------------------------------------------------------------------------

worker[01] Using MTR_BUILD_THREAD 300, with reserved ports 19000..19029
worker[01] mysql-test-run: WARNING: running this script as _root_ will cause some tests to be skipped
main.events_time_zone                    [ disabled ]  Test is not predictable as it depends on precise timing.
main.ps                                  [ skipped ]  Test requires: 'have_log_bin'
main.ctype_utf8                          [ fail ]
        Test ended at 2026-11-22 08:20:36

mysqltest: At line 183: query 'create table t1 (a text character set utf8, primary key(a(371)))' succeeded - should have failed with error ER_TOO_LONG_KEY (1071)...

The result from queries just before the failure was:
< snip >
hex(s1)
413F
drop table t1;

More results from queries before failure can be found in /tmp/mtrx/var1/log/ctype_utf8.log

 - saving '/tmp/mtrx/var1/log/main.ctype_utf8/' to '/tmp/mtrx/var1/log/main.ctype_utf8/'
main.join_cache                          [ pass ]   1390
main.ctype_utf8mb4_uca1400_ai_ci_casefold [ pass ]    330
main.partition_innodb_semi_consistent    [ fail ]  timeout after 120 seconds
        Test ended at 2026-11-22 08:31:02

Test case timeout after 120 seconds

 - saving '/tmp/mtrx/var1/log/main.partition_innodb_semi_consistent/' to '/tmp/mtrx/var1/log/main.partition_innodb_semi_consistent/'
compat/oracle.sp-cursor 'innodb'         w2 [ retry-pass ]     12
--------------------------------------------------------------------------
The servers were restarted 0 times
Spent 1.720 of 4 seconds executing testcases

Completed: Failed 2/4 tests, 50.00% were successful.
";

    #[test]
    fn result_lines() {
        let l = parse_line("main.join_cache                          [ pass ]   1390").unwrap();
        assert_eq!(
            (l.name, l.combination, l.status, l.rest),
            ("main.join_cache", None, "pass", "1390")
        );
        let l = parse_line(
            "main.ps                                  [ skipped ]  Test requires: 'have_log_bin'",
        )
        .unwrap();
        assert_eq!(
            (l.status, l.rest),
            ("skipped", "Test requires: 'have_log_bin'")
        );
        let l =
            parse_line("compat/oracle.sp 'innodb' w1 [ fail ]  timeout after 900 seconds").unwrap();
        assert_eq!(
            (l.name, l.combination, l.status),
            ("compat/oracle.sp", Some("innodb"), "fail")
        );
        let l =
            parse_line("main.x                                   \u{1b}[32m[ pass ]\u{1b}[0m 5");
        assert_eq!(l.unwrap().status, "pass");
        // Not result lines.
        for line in [
            "TEST                                      RESULT   TIME (ms) or COMMENT",
            "worker[01] Using MTR_BUILD_THREAD 300, with reserved ports 19000..19029",
            "select a from t1 where b = '[ x ]';",
            "Warning\t1300\tInvalid utf8mb4 character string: 'FF' [ pass ]",
            "",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn whole_output() {
        let results = parse_mtr_output(MTR_OUTPUT);
        let outcome = |n: &str| results[n].outcome;
        assert_eq!(results.len(), 7);
        assert_eq!(outcome("main.events_time_zone"), Outcome::Disabled);
        assert_eq!(outcome("main.ps"), Outcome::Skipped);
        assert_eq!(results["main.ps"].comment, "Test requires: 'have_log_bin'");
        assert_eq!(outcome("main.ctype_utf8"), Outcome::Fail);
        let details = &results["main.ctype_utf8"].details;
        assert!(details.starts_with("Test ended at"), "{details}");
        assert!(details.contains("should have failed with error ER_TOO_LONG_KEY"));
        assert!(details.ends_with("'/tmp/mtrx/var1/log/main.ctype_utf8/'"));
        assert_eq!(outcome("main.join_cache"), Outcome::Pass);
        assert_eq!(results["main.join_cache"].millis, Some(1390));
        assert_eq!(
            results["main.ctype_utf8mb4_uca1400_ai_ci_casefold"].millis,
            Some(330)
        );
        let timeout = &results["main.partition_innodb_semi_consistent"];
        assert_eq!(timeout.outcome, Outcome::Fail);
        assert_eq!(timeout.comment, "timeout after 120 seconds");
        assert!(timeout.details.contains("Test case timeout"));
        assert_eq!(outcome("compat/oracle.sp-cursor 'innodb'"), Outcome::Pass);
        // The summary after the closing rule belongs to no test.
        assert!(!results["main.partition_innodb_semi_consistent"]
            .details
            .contains("Completed"));
    }

    #[test]
    fn gateway_log_warnings() {
        let log = "2026-11-22T08:46:53.234738Z  WARN gatehouse::session: unknown command refused session=149 command=command 0x06\n\
                   2026-11-22T08:42:57.553574Z  INFO gatehouse::io::conn: session started identity=root@127.0.0.1 upstream_connection_id=8\n\
                   2026-11-22T08:47:27.406857Z ERROR gatehouse::io: boom\n";
        assert_eq!(
            log_warnings(log),
            [
                "WARN gatehouse::session: unknown command refused session=149 command=command 0x06",
                "ERROR gatehouse::io: boom"
            ]
        );
    }

    #[test]
    fn utc_stamps() {
        let t = parse_utc("2024-02-29T12:34:56.5Z").unwrap();
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
        assert_eq!((d.as_secs(), d.subsec_millis()), (1_709_210_096, 500));
        assert_eq!(
            parse_utc("1970-01-01T00:00:00.000001Z").unwrap(),
            std::time::UNIX_EPOCH + std::time::Duration::from_micros(1)
        );
        assert_eq!(parse_utc("2026-11-22 08:47:24"), None);
        assert_eq!(parse_utc("2026-13-22T08:47:24Z"), None);
    }

    #[test]
    fn lists() {
        let list = "# header\n\nmain.select   # a comment\ncompat/oracle.sp\n";
        assert_eq!(
            parse_list(list).unwrap(),
            ["main.select", "compat/oracle.sp"]
        );
        assert!(parse_list("main.select\nmain.select\n")
            .unwrap_err()
            .contains("twice"));
        assert!(parse_list("select\n").unwrap_err().starts_with("line 1"));
    }

    #[test]
    fn client_test_names() {
        let text = "mariadb-client-test  Ver 2.1 Distrib 10.11.19-MariaDB\n\
                    All possible test names:\n\n\
                    disable_query_logs\n\
                    test_view_sp_list_fields\n";
        assert_eq!(
            parse_client_test_names(text),
            ["disable_query_logs", "test_view_sp_list_fields"]
        );
    }
}
