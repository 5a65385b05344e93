//! Unit tests: defaults, parsing, every problem reported together, redaction.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

#[test]
fn no_variables_give_the_documented_defaults() {
    let cfg = from(&[]).expect("defaults are valid");
    assert_eq!(
        cfg.database.url,
        DatabaseTarget::Sqlite(PathBuf::from("data/market.db"))
    );
    assert_eq!(cfg.writer.batch_size, 1);
    assert_eq!(cfg.writer.batch_interval, Duration::from_secs(1));
    assert_eq!(cfg.symbols.charts, cfg.symbols.equities);
    assert_eq!(cfg.logging.rust_log, "info");
    assert_eq!(cfg, Config::default());
}

#[test]
fn values_are_parsed_and_normalised() {
    let cfg = from(&[
        (
            "DATABASE_URL",
            "postgres://postgres:secret@localhost:5432/postgres",
        ),
        ("BATCH_SIZE", "500"),
        ("BATCH_INTERVAL", "0.25"),
        ("SYMBOLS", " aapl, MSFT ,aapl,$spx,brk.b "),
        (
            "OPTION_SYMBOLS",
            "MSFT  251219C00480000, SPY   250421P00512000",
        ),
    ])
    .expect("valid");
    assert_eq!(cfg.writer.batch_size, 500);
    assert_eq!(cfg.writer.batch_interval, Duration::from_millis(250));
    assert_eq!(cfg.symbols.equities, ["AAPL", "MSFT", "$SPX", "BRK.B"]);
    assert_eq!(
        cfg.symbols.charts, cfg.symbols.equities,
        "CHART_SYMBOLS defaults to SYMBOLS"
    );
    assert_eq!(
        cfg.symbols.options,
        ["MSFT  251219C00480000", "SPY   250421P00512000"]
    );
    let none = from(&[("OPTION_SYMBOLS", "")]).expect("empty means no options");
    assert!(none.symbols.options.is_empty());
}

#[test]
fn all_problems_are_reported_together_naming_variable_and_allowed_values() {
    let err = from(&[
        ("BATCH_SIZE", "0"),
        ("BATCH_INTERVAL", "-1"),
        ("DATABASE_URL", "postgres://localhost/db"),
        ("SYMBOLS", "AAPL,bad symbol!"),
        ("OPTION_SYMBOLS", "MSFT251219C480"),
        ("RUST_LOG", "info,[["),
    ])
    .expect_err("invalid");
    assert_eq!(err.problems.len(), 6, "{err}");
    let text = err.to_string();
    for name in [
        "BATCH_SIZE",
        "BATCH_INTERVAL",
        "DATABASE_URL",
        "SYMBOLS",
        "OPTION_SYMBOLS",
        "RUST_LOG",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(text.contains("a whole number from 1 to 100000"), "{text}");
    assert!(text.contains("put the user name in the URL"), "{text}");
    assert!(text.contains("21-character"), "{text}");
    assert!(
        text.contains("fix these in the environment or .env"),
        "{text}"
    );
}

#[test]
fn secrets_are_redacted_from_debug_and_errors() {
    let cfg = from(&[(
        "DATABASE_URL",
        "postgres://postgres.ref:s3cr3t@host:5432/postgres",
    )])
    .expect("valid");
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("postgres.ref:***@host"), "{debug}");
    let err = from(&[("DATABASE_URL", "mysql://u:s3cr3t@h/db")]).expect_err("bad scheme");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
}

#[test]
fn debug_redacts_every_secret_including_a_password_parameter() {
    let cfg = from(&[
        (
            "DATABASE_URL",
            "postgres://app:pw-in-userinfo@db.example:5432/market?sslmode=require&password=pw-in-query",
        ),
        ("SCHWAB_CLIENT_ID", "app-key"),
        ("SCHWAB_CLIENT_SECRET", "shh-client-secret"),
    ])
    .expect("valid");
    let debug = format!("{cfg:?}");
    let pretty = format!("{cfg:#?}");
    for text in [&debug, &pretty] {
        for secret in ["pw-in-userinfo", "pw-in-query", "shh-client-secret"] {
            assert!(!text.contains(secret), "{secret} shows in {text}");
        }
    }
    assert!(
        debug.contains("app:***@db.example:5432/market?sslmode=require&password=***"),
        "{debug}"
    );
    assert!(debug.contains("client_id: Some(\"app-key\")"), "{debug}");
    let err = from(&[(
        "DATABASE_URL",
        "postgres://db.example:6543/market?password=pw-in-query",
    )])
    .expect_err("no user");
    assert!(!err.to_string().contains("pw-in-query"), "{err}");
}

#[test]
fn indicator_settings_have_documented_defaults_and_parse() {
    let s = from(&[]).expect("defaults").indicators;
    assert_eq!(s.bar_seconds, 60);
    assert_eq!(
        (
            s.sma_period,
            s.ema_fast_period,
            s.ema_slow_period,
            s.rsi_period
        ),
        (20, 9, 21, 14)
    );
    assert_eq!((s.macd_fast, s.macd_slow, s.macd_signal), (12, 26, 9));
    assert_eq!((s.bb_period, s.bb_stddev), (20, 2.0));
    assert_eq!(s.warm_start_bars, None, "the indicators' default");
    let s = from(&[
        ("BAR_SECONDS", "300"),
        ("RSI_PERIOD", "7"),
        ("BB_STDDEV", "2.5"),
        ("WARM_START_BARS", "0"),
    ])
    .expect("valid")
    .indicators;
    assert_eq!((s.bar_seconds, s.rsi_period, s.bb_stddev), (300, 7, 2.5));
    assert_eq!(s.warm_start_bars, Some(0), "0 turns warm start off");
}

#[test]
fn bad_indicator_settings_are_reported_together() {
    let err = from(&[
        ("BAR_SECONDS", "7"),
        ("SMA_PERIOD", "1"),
        ("EMA_FAST_PERIOD", "30"),
        ("MACD_FAST", "26"),
        ("MACD_SLOW", "12"),
        ("BB_STDDEV", "-1"),
        ("RSI_PERIOD", "x"),
    ])
    .expect_err("invalid");
    let text = err.to_string();
    // The warm-start bound follows the periods: the indicators check it (see the service's
    // `settings` tests, which run this case with WARM_START_BARS too).
    assert_eq!(err.problems.len(), 6, "{text}");
    assert!(
        text.contains("BAR_SECONDS (\"7\")") && text.contains("divides 3600"),
        "{text}"
    );
    assert!(
        text.contains("SMA_PERIOD") && text.contains("from 2 to 1000"),
        "{text}"
    );
    assert!(
        text.contains("EMA_FAST_PERIOD (30) must be shorter than EMA_SLOW_PERIOD (21)"),
        "{text}"
    );
    assert!(
        text.contains("MACD_FAST (26) must be shorter than MACD_SLOW (12)"),
        "{text}"
    );
    assert!(text.contains("BB_STDDEV"), "{text}");
    assert!(text.contains("RSI_PERIOD"), "{text}");
}

#[test]
fn every_indicator_variable_is_known() {
    for name in [
        "BAR_SECONDS",
        "SMA_PERIOD",
        "EMA_FAST_PERIOD",
        "EMA_SLOW_PERIOD",
        "RSI_PERIOD",
        "MACD_FAST",
        "MACD_SLOW",
        "MACD_SIGNAL",
        "BB_PERIOD",
        "BB_STDDEV",
        "WARM_START_BARS",
    ] {
        let v = variable(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(v.section, Section::Indicators, "{name}");
    }
}

#[test]
fn the_transaction_pooler_is_refused_with_what_to_use_instead() {
    let err = from(&[(
        "DATABASE_URL",
        "postgres://postgres.abcd:pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres",
    )])
    .expect_err("port 6543");
    let text = err.to_string();
    assert!(
        text.contains("transaction pooler") && text.contains("port 5432"),
        "{text}"
    );
    assert!(!text.contains(":pw@"), "{text}");
    assert!(from(&[("DATABASE_URL", "postgres://postgres.abcd:pw@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=require")]).is_ok());
    assert!(
        from(&[("DATABASE_URL", "postgres://u@[::1]:6543/db")]).is_err(),
        "IPv6 host"
    );
    assert!(from(&[("DATABASE_URL", "postgres://u@db.example:65430/db")]).is_ok());
}

#[test]
fn realtime_and_retention_settings_are_validated() {
    let cfg = from(&[
        ("REALTIME_MODE", "Both"),
        ("REALTIME_TOPIC", "prices:live"),
        ("TICK_RETENTION_DAYS", "3"),
    ])
    .expect("valid");
    assert_eq!(cfg.realtime.mode, RealtimeMode::Both);
    assert_eq!(cfg.realtime.topic, "prices:live");
    assert_eq!(cfg.retention.tick_retention_days, 3);
    let err = from(&[
        ("REALTIME_MODE", "sometimes"),
        ("REALTIME_TOPIC", "realtime"),
        ("TICK_RETENTION_DAYS", "0"),
    ])
    .expect_err("invalid");
    assert_eq!(err.problems.len(), 3, "{err}");
}

#[test]
fn health_addr_defaults_to_loopback_and_can_be_turned_off() {
    let cfg = from(&[]).expect("defaults");
    assert_eq!(
        cfg.health.addr,
        Some("127.0.0.1:8080".parse().expect("addr"))
    );
    assert_eq!(cfg.health.db_down_after, Duration::from_secs(120));
    let cfg = from(&[("HEALTH_ADDR", "OFF")]).expect("off");
    assert_eq!(cfg.health.addr, None);
    let cfg = from(&[
        ("HEALTH_ADDR", "0.0.0.0:9100"),
        ("HEALTH_DB_DOWN_AFTER", "30"),
    ])
    .expect("valid");
    assert_eq!(cfg.health.addr, Some("0.0.0.0:9100".parse().expect("addr")));
    assert_eq!(cfg.health.db_down_after, Duration::from_secs(30));
    let cfg = from(&[("HEALTH_ADDR", "localhost:0")]).expect("localhost");
    assert_eq!(cfg.health.addr, Some("127.0.0.1:0".parse().expect("addr")));
    assert_eq!(
        from(&[("HEALTH_ADDR", "[::1]:8080")])
            .expect("v6")
            .health
            .addr,
        Some("[::1]:8080".parse().expect("addr"))
    );
    let err =
        from(&[("HEALTH_ADDR", "8080"), ("HEALTH_DB_DOWN_AFTER", "-1")]).expect_err("invalid");
    assert_eq!(err.problems.len(), 2, "{err}");
    assert!(
        err.to_string().contains("IP:PORT such as 127.0.0.1:8080"),
        "{err}"
    );
}

#[test]
fn sqlite_urls_accept_both_spellings() {
    assert_eq!(
        DatabaseTarget::parse("sqlite://a/b.db"),
        Ok(DatabaseTarget::Sqlite("a/b.db".into()))
    );
    assert_eq!(
        DatabaseTarget::parse("sqlite:x.db?mode=rwc"),
        Ok(DatabaseTarget::Sqlite("x.db".into()))
    );
    assert!(DatabaseTarget::parse("sqlite://").is_err());
}

// The Schwab section (formerly `schwab/settings.rs`'s tests).

#[test]
fn defaults_are_the_simulated_mode_with_the_stored_fields() {
    let cfg = from(&[]).expect("defaults are valid").schwab;
    assert_eq!(cfg.mode, SchwabMode::Simulated);
    assert_eq!(cfg.token_store, TokenStoreKind::File);
    assert_eq!(cfg.callback_url, "https://127.0.0.1:8182");
    assert_eq!(cfg.stall_timeout, Duration::from_secs(30));
    assert_eq!(cfg.equity_fields[0], 0);
    assert!(cfg.equity_fields.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(cfg.chart_fields, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn a_client_id_switches_to_live_and_needs_the_secret() {
    let err = from(&[("SCHWAB_CLIENT_ID", "abc")]).expect_err("secret missing");
    assert!(err.to_string().contains("SCHWAB_CLIENT_SECRET"), "{err}");
    let cfg = from(&[
        ("SCHWAB_CLIENT_ID", "abc"),
        ("SCHWAB_CLIENT_SECRET", "shh-very-secret"),
    ])
    .expect("valid")
    .schwab;
    assert_eq!(cfg.mode, SchwabMode::Live);
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("shh-very-secret"), "{debug}");
    let cfg = from(&[("SCHWAB_CLIENT_ID", "abc"), ("SCHWAB_MODE", "simulated")])
        .expect("simulated needs no secret")
        .schwab;
    assert_eq!(cfg.mode, SchwabMode::Simulated);
}

#[test]
fn fields_are_sorted_with_zero_and_checked_against_the_service() {
    let cfg = from(&[("EQUITY_FIELDS", "8, 3,1,3"), ("CHART_FIELDS", "0,7,1")])
        .expect("valid")
        .schwab;
    assert_eq!(cfg.equity_fields, [0, 1, 3, 8]);
    assert_eq!(cfg.chart_fields, [0, 1, 7]);
    let err = from(&[("OPTION_FIELDS", "2,56,x"), ("CHART_FIELDS", "9")]).expect_err("bad");
    let text = err.to_string();
    assert!(
        text.contains("OPTION_FIELDS") && text.contains("56, x"),
        "{text}"
    );
    assert!(text.contains("from 0 to 8"), "{text}");
}

#[test]
fn bad_urls_store_and_timings_are_reported_together() {
    let err = from(&[
        ("SCHWAB_CALLBACK_URL", "http://127.0.0.1:8182"),
        ("SCHWAB_API_BASE", "ftp://x"),
        ("TOKEN_STORE", "vault"),
        ("STALL_TIMEOUT", "0"),
        ("RECONNECT_BACKOFF_MIN", "10"),
        ("RECONNECT_BACKOFF_MAX", "5"),
        ("SCHWAB_MODE", "paper"),
    ])
    .expect_err("bad");
    assert_eq!(err.problems.len(), 6, "{err}");
    for name in [
        "SCHWAB_CALLBACK_URL",
        "SCHWAB_API_BASE",
        "TOKEN_STORE",
        "STALL_TIMEOUT",
        "RECONNECT_BACKOFF_MAX",
        "SCHWAB_MODE",
    ] {
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[test]
fn base_urls_lose_their_trailing_slash() {
    let cfg = from(&[
        ("SCHWAB_API_BASE", "http://127.0.0.1:9000/"),
        ("SCHWAB_AUTH_BASE", "http://127.0.0.1:9000/v1/oauth/"),
        ("TOKEN_STORE", "database"),
    ])
    .expect("valid")
    .schwab;
    assert_eq!(cfg.api_base, "http://127.0.0.1:9000");
    assert_eq!(cfg.auth_base, "http://127.0.0.1:9000/v1/oauth");
    assert_eq!(cfg.token_store, TokenStoreKind::Database);
}

#[test]
fn the_table_has_one_row_per_variable_and_valid_defaults() {
    let mut names: Vec<_> = all_variables().map(|v| v.name).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a variable is listed twice");
    for v in SERVICE_VARIABLES {
        if let Some(value) = v.default.value {
            let cfg = from(&[(v.name, value)])
                .unwrap_or_else(|e| panic!("{}'s default {value:?}: {e}", v.name));
            assert_eq!(
                cfg,
                Config::default(),
                "{}={value:?} is not the default",
                v.name
            );
        }
        assert!(!v.allowed.is_empty() && !v.help.is_empty(), "{}", v.name);
    }
}

#[test]
fn status_lines_are_off_or_at_least_a_second_apart() {
    let interval = |v: &str| from(&[("STATUS_INTERVAL", v)]).map(|c| c.logging.status_interval);
    assert_eq!(interval("0").expect("off"), Duration::ZERO);
    assert_eq!(interval("2.5").expect("2.5 s"), Duration::from_millis(2500));
    for bad in ["0.000001", "0.5", "-1", "86401", "soon"] {
        let err = interval(bad).expect_err(bad).to_string();
        assert!(
            err.contains("STATUS_INTERVAL") && err.contains("from 1 to 86400"),
            "{err}"
        );
    }
}

// The other Schwab services: futures, futures options, forex, books, screeners, account
// activity.

#[test]
fn new_service_settings_have_their_documented_defaults() {
    let cfg = from(&[]).expect("defaults");
    let s = &cfg.symbols;
    assert_eq!(s.futures, ["/ES", "/NQ"]);
    assert_eq!(
        s.futures_charts, s.futures,
        "FUTURES_CHART_SYMBOLS follows FUTURES_SYMBOLS"
    );
    assert_eq!(s.futures_options, ["./OZCZ27C565"]);
    assert_eq!(s.forex, ["EUR/USD", "USD/JPY"]);
    assert!(s.nyse_book.is_empty());
    assert_eq!(s.nasdaq_book, ["AAPL"]);
    assert!(s.options_book.is_empty());
    assert_eq!(s.screener_equity, ["NASDAQ_VOLUME_5"]);
    assert_eq!(s.screener_option, ["OPTION_CALL_VOLUME_5"]);
    assert!(s.account_activity);
    assert_eq!(cfg.books.depth, 10);
    assert_eq!(cfg.books.snapshot_interval, Duration::from_secs(5));
    let f = &cfg.schwab;
    assert_eq!(
        f.futures_fields,
        [
            0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 18, 19, 20, 22, 23, 24, 31, 33, 34, 35
        ]
    );
    assert_eq!(
        f.futures_option_fields,
        [
            0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 17, 18, 19, 22, 23, 24, 25, 26, 28, 29
        ]
    );
    assert_eq!(
        f.forex_fields,
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 20, 29]
    );
    assert_eq!(f.futures_chart_fields, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(
        variable("BOOK_DEPTH").map(|v| v.section),
        Some(Section::Books)
    );
}

#[test]
fn new_service_lists_are_upper_cased_deduplicated_and_ordered() {
    let cfg = from(&[
        ("FUTURES_SYMBOLS", " /esz25, /6E,/MES,/ESZ25, /es "),
        ("FUTURES_OPTION_SYMBOLS", "./ozcz23c565,./EH26P4.25"),
        ("FOREX_SYMBOLS", "eur/usd, GBP/USD,EUR/USD"),
        ("NYSE_BOOK_SYMBOLS", "ibm,f"),
        ("NASDAQ_BOOK_SYMBOLS", "msft"),
        ("OPTIONS_BOOK_SYMBOLS", "MSFT  251219C00480000"),
        (
            "SCREENER_EQUITY_KEYS",
            "nasdaq_volume_30,$SPX.X_PERCENT_CHANGE_UP_60,EQUITY_ALL_AVERAGE_PERCENT_VOLUME_0",
        ),
        (
            "SCREENER_OPTION_KEYS",
            "OPTION_PUT_TRADES_1,option_all_percent_change_down_10",
        ),
        ("ACCOUNT_ACTIVITY", "Off"),
        ("BOOK_DEPTH", "50"),
        ("BOOK_SNAPSHOT_INTERVAL", "0.5"),
        ("FUTURES_FIELDS", "40,3"),
        ("FOREX_FIELDS", "29"),
    ])
    .expect("valid");
    let s = &cfg.symbols;
    assert_eq!(s.futures, ["/ESZ25", "/6E", "/MES", "/ES"]);
    assert_eq!(s.futures_charts, s.futures);
    assert_eq!(s.futures_options, ["./OZCZ23C565", "./EH26P4.25"]);
    assert_eq!(s.forex, ["EUR/USD", "GBP/USD"]);
    assert_eq!(s.nyse_book, ["IBM", "F"]);
    assert_eq!(s.nasdaq_book, ["MSFT"]);
    assert_eq!(s.options_book, ["MSFT  251219C00480000"]);
    assert_eq!(
        s.screener_equity,
        [
            "NASDAQ_VOLUME_30",
            "$SPX.X_PERCENT_CHANGE_UP_60",
            "EQUITY_ALL_AVERAGE_PERCENT_VOLUME_0"
        ]
    );
    assert_eq!(
        s.screener_option,
        ["OPTION_PUT_TRADES_1", "OPTION_ALL_PERCENT_CHANGE_DOWN_10"]
    );
    assert!(!s.account_activity);
    assert_eq!(cfg.books.depth, 50);
    assert_eq!(cfg.books.snapshot_interval, Duration::from_millis(500));
    assert_eq!(cfg.schwab.futures_fields, [0, 3, 40]);
    assert_eq!(cfg.schwab.forex_fields, [0, 29]);
}

#[test]
fn empty_new_lists_turn_their_service_off() {
    let lists = [
        "FUTURES_SYMBOLS",
        "FUTURES_OPTION_SYMBOLS",
        "FOREX_SYMBOLS",
        "NYSE_BOOK_SYMBOLS",
        "NASDAQ_BOOK_SYMBOLS",
        "OPTIONS_BOOK_SYMBOLS",
        "SCREENER_EQUITY_KEYS",
        "SCREENER_OPTION_KEYS",
    ];
    let vars: Vec<(&str, &str)> = lists.iter().map(|n| (*n, "")).collect();
    let s = from(&vars).expect("empty is a value").symbols;
    for (name, list) in [
        ("FUTURES_SYMBOLS", &s.futures),
        (
            "FUTURES_CHART_SYMBOLS (follows FUTURES_SYMBOLS)",
            &s.futures_charts,
        ),
        ("FUTURES_OPTION_SYMBOLS", &s.futures_options),
        ("FOREX_SYMBOLS", &s.forex),
        ("NYSE_BOOK_SYMBOLS", &s.nyse_book),
        ("NASDAQ_BOOK_SYMBOLS", &s.nasdaq_book),
        ("OPTIONS_BOOK_SYMBOLS", &s.options_book),
        ("SCREENER_EQUITY_KEYS", &s.screener_equity),
        ("SCREENER_OPTION_KEYS", &s.screener_option),
    ] {
        assert!(list.is_empty(), "{name}: {list:?}");
    }
    let s = from(&[("NASDAQ_BOOK_SYMBOLS", " , ")])
        .expect("only commas")
        .symbols;
    assert!(s.nasdaq_book.is_empty());
}

#[test]
fn futures_candles_follow_the_futures_unless_set_or_none() {
    let s = from(&[("FUTURES_SYMBOLS", "/CL,/GC")])
        .expect("valid")
        .symbols;
    assert_eq!(s.futures_charts, ["/CL", "/GC"]);
    let s = from(&[
        ("FUTURES_SYMBOLS", "/CL,/GC"),
        ("FUTURES_CHART_SYMBOLS", ""),
    ])
    .expect("empty follows")
    .symbols;
    assert_eq!(s.futures_charts, ["/CL", "/GC"]);
    let s = from(&[("FUTURES_CHART_SYMBOLS", "/es,/YM")])
        .expect("valid")
        .symbols;
    assert_eq!(s.futures_charts, ["/ES", "/YM"]);
    assert_eq!(s.futures, ["/ES", "/NQ"]);
    let s = from(&[("FUTURES_CHART_SYMBOLS", "None")])
        .expect("none")
        .symbols;
    assert!(s.futures_charts.is_empty());
    assert_eq!(s.futures, ["/ES", "/NQ"]);
    let err = from(&[("FUTURES_CHART_SYMBOLS", " , ")]).expect_err("no key");
    assert!(err.to_string().contains("FUTURES_CHART_SYMBOLS"), "{err}");
    let err = from(&[("FUTURES_CHART_SYMBOLS", "ES")]).expect_err("bad key");
    let text = err.to_string();
    assert!(
        text.contains("FUTURES_CHART_SYMBOLS: \"ES\" (must start with /, e.g. /ES)")
            && text.contains("or none for no futures candles"),
        "{text}"
    );
}

/// The one problem line of `name` when set to `value` alone.
fn problem(name: &str, value: &str) -> Option<String> {
    from(&[(name, value)]).err().map(|e| {
        assert_eq!(e.problems.len(), 1, "{e}");
        e.problems[0].clone()
    })
}

#[test]
fn futures_keys_are_checked() {
    for good in [
        "/ES", "/ESZ25", "/6E", "/MES", "/M2K", "/CL", "/es", "/6EH26",
    ] {
        assert_eq!(problem("FUTURES_SYMBOLS", good), None, "{good}");
    }
    for bad in ["/", "ES", "/ESZ2", "/ES Z25", "/ABCDE", "/Z25"] {
        let p = problem("FUTURES_SYMBOLS", bad).unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(
            p.starts_with(&format!("FUTURES_SYMBOLS: {bad:?} (")) && p.contains("allowed: "),
            "{p}"
        );
        assert!(p.contains("/ESZ25"), "an example: {p}");
    }
    let p = problem("FUTURES_SYMBOLS", "/ESZ2").expect("bad");
    assert!(p.contains("year must have 2 digits"), "{p}");
}

#[test]
fn futures_option_keys_are_checked() {
    for good in ["./OZCZ23C565", "./ozcz23p565", "./EH26C4.25", "./6EM24P1.1"] {
        assert_eq!(problem("FUTURES_OPTION_SYMBOLS", good), None, "{good}");
    }
    for (bad, why) in [
        ("./OZCZ23X565", "C or P"),
        ("/OZCZ23C565", "must start with ./"),
        ("./Z23C5", "root"),
        ("./OZCZ23C", "strike"),
        ("./OZCA23C565", "month code"),
    ] {
        let p = problem("FUTURES_OPTION_SYMBOLS", bad).unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(
            p.starts_with(&format!("FUTURES_OPTION_SYMBOLS: {bad:?} (")) && p.contains(why),
            "{bad}: {p}"
        );
        assert!(p.contains("e.g. ./OZCZ27C565"), "an example: {p}");
    }
}

#[test]
fn forex_pairs_are_checked() {
    for good in ["EUR/USD", "usd/jpy", "GBP/USD,AUD/NZD"] {
        assert_eq!(problem("FOREX_SYMBOLS", good), None, "{good}");
    }
    for bad in ["EURUSD", "EUR/US", "EUR/USDX", "EU1/USD", "EUR-USD", "/USD"] {
        let p = problem("FOREX_SYMBOLS", bad).unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(
            p.starts_with(&format!("FOREX_SYMBOLS: {bad:?} (")) && p.contains("e.g. EUR/USD"),
            "{p}"
        );
    }
}

#[test]
fn screener_keys_are_checked() {
    for good in [
        "NASDAQ_VOLUME_30",
        "$SPX.X_PERCENT_CHANGE_UP_60",
        "$COMPX_TRADES_0",
        "$DJI_PERCENT_CHANGE_DOWN_1",
        "INDEX_AL_VOLUME_10",
        "NYSE_AVERAGE_PERCENT_VOLUME_5",
        "OTCBB_VOLUME_5",
        "EQUITY_ALL_TRADES_60",
        "nasdaq_volume_5",
    ] {
        assert_eq!(problem("SCREENER_EQUITY_KEYS", good), None, "{good}");
    }
    for (bad, why) in [
        ("NASDAQ_VOLUME_7", "unknown frequency \"7\""),
        ("FOO_VOLUME_5", "unknown prefix"),
        ("NASDAQ_VOLUMES_5", "unknown sort field"),
        ("NASDAQ_VOLUME", "unknown sort field"),
        ("NASDAQ_VOLUME_5_", "unknown frequency"),
        ("OPTION_CALL_VOLUME_5", "put it in SCREENER_OPTION_KEYS"),
    ] {
        let p = problem("SCREENER_EQUITY_KEYS", bad).unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(
            p.starts_with(&format!("SCREENER_EQUITY_KEYS: {bad:?} (")) && p.contains(why),
            "{bad}: {p}"
        );
        assert!(p.contains("e.g. NASDAQ_VOLUME_5"), "an example: {p}");
    }
    for good in [
        "OPTION_CALL_VOLUME_5",
        "OPTION_PUT_PERCENT_CHANGE_UP_0",
        "OPTION_ALL_TRADES_60",
    ] {
        assert_eq!(problem("SCREENER_OPTION_KEYS", good), None, "{good}");
    }
    let p = problem("SCREENER_OPTION_KEYS", "NASDAQ_VOLUME_5").expect("bad");
    assert!(
        p.contains("put it in SCREENER_EQUITY_KEYS") && p.contains("e.g. OPTION_CALL_VOLUME_5"),
        "{p}"
    );
}

#[test]
fn book_and_account_activity_settings_are_checked() {
    for (value, on) in [
        ("on", true),
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("off", false),
        ("False", false),
        ("0", false),
        ("NO", false),
    ] {
        let cfg = from(&[("ACCOUNT_ACTIVITY", value)]).expect(value);
        assert_eq!(cfg.symbols.account_activity, on, "{value}");
    }
    let p = problem("ACCOUNT_ACTIVITY", "maybe").expect("bad");
    assert!(p.contains("on or off"), "{p}");
    for bad in ["0", "51", "x", "2.5"] {
        let p = problem("BOOK_DEPTH", bad).expect(bad);
        assert!(p.contains("from 1 to 50"), "{p}");
    }
    for bad in ["0", "0.05", "3601", "soon"] {
        let p = problem("BOOK_SNAPSHOT_INTERVAL", bad).expect(bad);
        assert!(p.contains("from 0.1 to 3600"), "{p}");
    }
    let p = problem("NYSE_BOOK_SYMBOLS", "IBM,bad symbol!").expect("bad");
    assert!(p.contains("BAD SYMBOL!"), "{p}");
    let p = problem("OPTIONS_BOOK_SYMBOLS", "MSFT251219C480").expect("bad");
    assert!(p.contains("21-character"), "{p}");
    for (name, bad, allowed) in [
        ("FUTURES_FIELDS", "41", "from 0 to 40"),
        ("FUTURES_OPTION_FIELDS", "32", "from 0 to 31"),
        ("FOREX_FIELDS", "30", "from 0 to 29"),
        ("FUTURES_CHART_FIELDS", "7", "from 0 to 6"),
    ] {
        let p = problem(name, bad).expect(name);
        assert!(p.contains(allowed), "{p}");
    }
}

#[test]
fn bad_new_service_settings_are_reported_together() {
    let err = from(&[
        ("FUTURES_SYMBOLS", "/ES,ES,/ESZ2"),
        ("FUTURES_CHART_SYMBOLS", "/ES Z25"),
        ("FUTURES_OPTION_SYMBOLS", "./OZCZ23X565"),
        ("FOREX_SYMBOLS", "EURUSD"),
        ("NASDAQ_BOOK_SYMBOLS", "bad symbol!"),
        ("OPTIONS_BOOK_SYMBOLS", "AAPL"),
        ("SCREENER_EQUITY_KEYS", "NASDAQ_VOLUME_7,FOO_VOLUME_5"),
        ("SCREENER_OPTION_KEYS", "NASDAQ_VOLUME_5"),
        ("ACCOUNT_ACTIVITY", "sometimes"),
        ("BOOK_DEPTH", "0"),
        ("BOOK_SNAPSHOT_INTERVAL", "0"),
        ("FUTURES_FIELDS", "99"),
        ("BATCH_SIZE", "0"),
    ])
    .expect_err("invalid");
    let text = err.to_string();
    assert_eq!(err.problems.len(), 13, "{text}");
    for name in [
        "FUTURES_SYMBOLS:",
        "FUTURES_CHART_SYMBOLS:",
        "FUTURES_OPTION_SYMBOLS:",
        "FOREX_SYMBOLS:",
        "NASDAQ_BOOK_SYMBOLS:",
        "OPTIONS_BOOK_SYMBOLS:",
        "SCREENER_EQUITY_KEYS:",
        "SCREENER_OPTION_KEYS:",
        "ACCOUNT_ACTIVITY (",
        "BOOK_DEPTH (",
        "BOOK_SNAPSHOT_INTERVAL (",
        "FUTURES_FIELDS (",
        "BATCH_SIZE (",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    // Every bad key of a list is named, and the good ones are not.
    assert!(
        text.contains("\"ES\" (must start with /, e.g. /ES), \"/ESZ2\" (the contract's year must have 2 digits"),
        "{text}"
    );
    assert!(!text.contains("\"/ES\" ("), "{text}");
    assert!(
        text.contains(
            "\"NASDAQ_VOLUME_7\" (unknown frequency \"7\"), \"FOO_VOLUME_5\" (unknown prefix)"
        ),
        "{text}"
    );
    assert!(
        text.contains("fix these in the environment or .env"),
        "{text}"
    );
}
