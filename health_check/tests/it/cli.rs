//! The binary's contract: exit codes for usage problems, help, nothing to check, several
//! checks at once (the worst wins, CRITICAL over UNKNOWN), colour, `.env`.

use crate::common::{MARKET_OPEN_NOW, StubServer, run, run_in, write_quotes};

#[test]
fn nothing_to_check_is_unknown_and_says_which_flags_to_pass() {
    let out = run(&[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .starts_with("UNKNOWN: nothing to check: pass --url URL"),
        "{}",
        out.stdout
    );
    for flag in [
        "--database-url",
        "--supabase-url",
        "--supabase-key",
        "HEALTH_URL",
        "DATABASE_URL",
    ] {
        assert!(out.stdout.contains(flag), "{flag}");
    }
    let json = run(&["--json"]).json();
    assert_eq!(json["status"], "unknown");
    assert_eq!(json["exit_code"], 3);
    assert_eq!(json["checks"].as_array().map(Vec::len), Some(0));
}

#[test]
fn usage_errors_are_unknown_not_critical() {
    let out = run(&["--no-such-flag"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("--no-such-flag"));
    let out = run(&["--url", "http://127.0.0.1:1", "--warn-after", "900"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout.contains("warn-after <= critical-after"),
        "{}",
        out.stdout
    );
    let out = run(&["--url", "http://127.0.0.1:1", "--timeout", "0"]);
    assert_eq!(out.code, 3, "{out:?}");
}

#[test]
fn help_and_version_exit_0() {
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout
            .contains("Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
    );
    assert!(
        !help.stdout.contains("--now"),
        "the test-only flag stays hidden"
    );
    assert_eq!(run(&["--version"]).code, 0);
}

#[test]
fn a_malformed_dotenv_is_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".env"), "HEALTH_URL='unterminated\n").expect("write");
    let out = run_in(Some(dir.path()), &[], &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains(".env"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_checks_report_one_line_each_and_the_worst_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/m.db", dir.path().display());
    write_quotes(
        &db,
        &[
            ("AAPL", "2025-01-08T14:59:00Z"),
            ("MSFT", "2025-01-08T14:56:00Z"),
        ],
    )
    .await;
    let ok = StubServer::start(|_| Some((200, r#"{"status":"ok"}"#.into())));
    let odd = StubServer::start(|_| Some((200, "not json".into())));

    let both_ok = run(&[
        "--url",
        &ok.url,
        "--database-url",
        &db,
        "--symbols",
        "AAPL",
        "--now",
        MARKET_OPEN_NOW,
    ]);
    assert_eq!(both_ok.code, 0, "{both_ok:?}");
    let lines: Vec<&str> = both_ok.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "summary, service, database, one symbol: {}",
        both_ok.stdout
    );
    assert!(lines[0].starts_with("OK: service ok, database ok; market open"));
    assert!(lines[1].starts_with("OK        service   "));
    assert!(lines[2].starts_with("OK        database  sqlite://"));
    assert!(lines[3].starts_with("OK          AAPL    newest"));

    // UNKNOWN outranks WARNING...
    let out = run(&[
        "--url",
        &odd.url,
        "--database-url",
        &db,
        "--now",
        MARKET_OPEN_NOW,
    ]);
    assert_eq!(out.code, 3, "{out:?}");
    // ...and CRITICAL outranks UNKNOWN.
    let out = run(&[
        "--url",
        &odd.url,
        "--database-url",
        &db,
        "--symbols",
        "AAPL,TSLA",
        "--now",
        MARKET_OPEN_NOW,
    ]);
    assert_eq!(out.code, 2, "{out:?}");

    // Thresholds from the environment.
    let out = run_in(
        None,
        &["--database-url", &db, "--now", MARKET_OPEN_NOW],
        &[("HEALTH_WARN_AFTER", "300"), ("SYMBOLS", "AAPL,MSFT")],
    );
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let ok = StubServer::start(|_| Some((200, r#"{"status":"ok"}"#.into())));
    let coloured = run(&["--url", &ok.url, "--color", "always"]);
    assert!(
        coloured.stdout.starts_with("\x1b[32mOK\x1b[0m: "),
        "{:?}",
        coloured.stdout
    );
    let plain = run_in(None, &["--url", &ok.url], &[("NO_COLOR", "1")]);
    assert!(!plain.stdout.contains('\x1b'));
    // Not a terminal: no colour by default either.
    assert!(!run(&["--url", &ok.url]).stdout.contains('\x1b'));
}
