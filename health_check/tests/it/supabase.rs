//! `--supabase-url` against a local HTTP server answering in PostgREST's format (PostgREST
//! itself cannot run here): fresh, stale, missing symbols, unreachable, rejected key,
//! malformed answers; the request is checked as PostgREST would read it.

use crate::common::{MARKET_OPEN_NOW, Received, StubServer, query_params, run, run_in, unused_url};

const PUBLISHABLE: &str = "sb_publishable_test_key_123";
const LEGACY_ANON: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiJ9.sig";

/// A PostgREST stand-in serving `latest_quotes` rows `(ticker, timestamp)` to `key`.
fn postgrest(key: &'static str, rows: &'static [(&'static str, &'static str)]) -> StubServer {
    StubServer::start(move |req: &Received| Some(answer(req, key, rows)))
}

fn answer(req: &Received, key: &str, rows: &[(&str, &str)]) -> (u16, String) {
    if req.header("apikey") != Some(key) {
        return (
            401,
            r#"{"message":"Invalid API key","hint":"Double check your Supabase `anon` or `service_role` API key."}"#
                .into(),
        );
    }
    let path = req.target.split('?').next().unwrap_or_default();
    if path != "/rest/v1/latest_quotes" {
        return (
            404,
            r#"{"code":"PGRST205","details":null,"hint":null,"message":"Could not find the table 'public.nope' in the schema cache"}"#
                .into(),
        );
    }
    let params = query_params(&req.target);
    let select = params
        .iter()
        .find(|(k, _)| k == "select")
        .map(|(_, v)| v.as_str());
    if select != Some("ticker,timestamp") {
        return (400, r#"{"message":"unexpected select"}"#.into());
    }
    // `ticker=in.("A","B")`, PostgREST's list filter.
    let wanted: Option<Vec<String>> = params.iter().find(|(k, _)| k == "ticker").map(|(_, v)| {
        v.strip_prefix("in.(")
            .and_then(|v| v.strip_suffix(')'))
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim_matches('"').to_string())
            .collect()
    });
    let body: Vec<serde_json::Value> = rows
        .iter()
        .filter(|(t, _)| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == t)))
        .map(|(t, ts)| serde_json::json!({ "ticker": t, "timestamp": ts }))
        .collect();
    (200, serde_json::Value::Array(body).to_string())
}

/// Rows in PostgREST's timestamptz format; now is 2025-01-08 10:00 New York.
const ROWS: &[(&str, &str)] = &[
    ("AAPL", "2025-01-08T14:59:30.123456+00:00"),
    ("MSFT", "2025-01-08T14:55:00+00:00"),
    ("NVDA", "2025-01-08T14:40:00+00:00"),
];

fn check(server: &StubServer, key: &str, extra: &[&str]) -> crate::common::Run {
    let mut args = vec![
        "--supabase-url",
        server.url.as_str(),
        "--supabase-key",
        key,
        "--now",
        MARKET_OPEN_NOW,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn fresh_symbols_are_ok_and_the_request_is_postgrest_shaped() {
    let server = postgrest(PUBLISHABLE, ROWS);
    let out = check(&server, PUBLISHABLE, &["--symbols", "AAPL"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("AAPL    newest 2025-01-08T14:59:30Z, 29.9 s ago"),
        "{}",
        out.stdout
    );
    let req = &server.received()[0];
    assert_eq!(req.header("apikey"), Some(PUBLISHABLE));
    // Publishable keys are not JWTs: no Authorization header.
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.header("accept"), Some("application/json"));
    let params = query_params(&req.target);
    assert!(
        params.contains(&("ticker".into(), r#"in.("AAPL")"#.into())),
        "{params:?}"
    );
}

#[test]
fn stale_symbols_warn_then_go_critical() {
    let server = postgrest(PUBLISHABLE, ROWS);
    assert_eq!(
        check(&server, PUBLISHABLE, &["--symbols", "AAPL,MSFT"]).code,
        1
    );
    let out = check(
        &server,
        PUBLISHABLE,
        &["--symbols", "AAPL,MSFT,NVDA", "--json"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    let json = out.json();
    let symbols = json["checks"][0]["symbols"].as_array().expect("symbols");
    let statuses: Vec<&str> = symbols
        .iter()
        .map(|s| s["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["ok", "warning", "critical"]);
    assert_eq!(symbols[1]["age_secs"], 300.0);
    assert_eq!(symbols[2]["open_market_secs"], 1200.0);
    assert_eq!(symbols[2]["source"], "latest_quotes");
    // Thresholds are configurable: with 30 min both stale ones are fine.
    let relaxed = check(
        &server,
        PUBLISHABLE,
        &[
            "--symbols",
            "AAPL,MSFT,NVDA",
            "--warn-after",
            "1500",
            "--critical-after",
            "1800",
        ],
    );
    assert_eq!(relaxed.code, 0, "{relaxed:?}");
}

#[test]
fn without_symbols_every_ticker_is_checked_and_a_missing_one_is_critical() {
    let server = postgrest(PUBLISHABLE, ROWS);
    let out = check(&server, PUBLISHABLE, &["--json"]);
    assert_eq!(
        out.json()["checks"][0]["symbols"].as_array().map(Vec::len),
        Some(3)
    );
    let out = check(&server, PUBLISHABLE, &["--symbols", "AAPL,TSLA"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("TSLA    no rows"), "{}", out.stdout);
    let empty = postgrest(PUBLISHABLE, &[]);
    let out = check(&empty, PUBLISHABLE, &[]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("latest_quotes is empty"));
}

#[test]
fn outside_market_hours_yesterdays_close_is_fresh() {
    // Saturday 2025-01-11; Friday's session closed at 21:00 UTC.
    static FRIDAY: &[(&str, &str)] = &[("AAPL", "2025-01-10T20:59:58+00:00")];
    let server = postgrest(PUBLISHABLE, FRIDAY);
    let out = run(&[
        "--supabase-url",
        &server.url,
        "--supabase-key",
        PUBLISHABLE,
        "--now",
        "2025-01-11T17:00:00Z",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("market closed (weekend)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(market closed since; not stale)"));
}

#[test]
fn legacy_jwt_keys_also_go_in_authorization() {
    let server = postgrest(LEGACY_ANON, ROWS);
    let out = check(&server, LEGACY_ANON, &["--symbols", "AAPL"]);
    assert_eq!(out.code, 0, "{out:?}");
    let auth = server.received()[0]
        .header("authorization")
        .map(String::from);
    assert_eq!(auth, Some(format!("Bearer {LEGACY_ANON}")));
}

#[test]
fn a_rejected_key_is_unknown_and_never_printed() {
    let server = postgrest(PUBLISHABLE, ROWS);
    let out = check(&server, "sb_publishable_wrong", &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .contains("key rejected (HTTP 401: Invalid API key)")
    );
    assert!(!out.stdout.contains("sb_publishable_wrong"));
    assert!(!out.stdout.contains(PUBLISHABLE));
}

#[test]
fn the_key_comes_from_the_environment_or_dotenv() {
    let server = postgrest(PUBLISHABLE, ROWS);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "SUPABASE_URL={}\nSUPABASE_KEY={PUBLISHABLE}\nSYMBOLS=AAPL\n",
            server.url
        ),
    )
    .expect("write .env");
    let out = run_in(Some(dir.path()), &["--now", MARKET_OPEN_NOW], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("supabase  "), "{}", out.stdout);
    // The real environment wins over .env.
    let out = run_in(
        Some(dir.path()),
        &["--now", MARKET_OPEN_NOW],
        &[("SYMBOLS", "AAPL,NVDA")],
    );
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn unreachable_and_malformed_answers() {
    let out = run(&[
        "--supabase-url",
        &unused_url(),
        "--supabase-key",
        PUBLISHABLE,
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stdout.contains("REST API unreachable"),
        "{}",
        out.stdout
    );

    let html = StubServer::start(|_| Some((200, "<html>login</html>".into())));
    let out = run(&["--supabase-url", &html.url, "--supabase-key", PUBLISHABLE]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("not PostgREST rows"));

    let bad_time =
        StubServer::start(|_| Some((200, r#"[{"ticker":"AAPL","timestamp":"soon"}]"#.into())));
    assert_eq!(
        run(&[
            "--supabase-url",
            &bad_time.url,
            "--supabase-key",
            PUBLISHABLE
        ])
        .code,
        3
    );

    let paused = StubServer::start(|_| Some((503, r#"{"message":"project paused"}"#.into())));
    let out = run(&["--supabase-url", &paused.url, "--supabase-key", PUBLISHABLE]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("HTTP 503: project paused"));
}

#[test]
fn a_url_without_a_key_is_a_usage_error() {
    let out = run(&["--supabase-url", "https://abc.supabase.co"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("needs a key"), "{}", out.stdout);
}
