//! The app wiring of the settings: the one place that maps the validated [`Config`] (the
//! leaf crate `streamer-config`, grouped by section) onto each component's own settings
//! struct. Components never see [`Config`]; they take what is built here.
//!
//! [`from_lookup`] / [`from_env`] also apply the rules a component owns (the indicators'
//! `WARM_START_BARS` lower bound, which follows the periods), so every bad setting is still
//! reported in one message.

use std::time::Duration;

pub use streamer_config::{Config, ConfigError};

use chrono::Datelike;

use crate::db::broadcast::estimated_parts;
use crate::db::{DbSettings, RetentionDays};
use crate::health::{FixedFacts, HealthRules};
use crate::indicators::IndicatorSettings;
use crate::realtime::budget::{self, Budget, BudgetInput};
use crate::retention::RetentionSettings;
use crate::schwab::oauth::OAuthApp;
use crate::schwab::rest::RestSettings;
use crate::schwab::session::SupervisorSettings;
use crate::schwab::session::connection::ConnectionSettings;
use crate::schwab::session::protocol::{self, Subscription};
use crate::schwab::token_manager::TokenSettings;
use crate::schwab::wire::Service;
use crate::writer::{OverflowPolicy, SpoolSettings, WriterSettings};
use schwab_sim::SimConfig;
use schwab_sim::server::SimServerSettings;

/// Reads the process environment (call `streamer_config::load_dotenv` first to merge a
/// `.env` file) with the components' rules.
pub fn from_env() -> Result<Config, ConfigError> {
    from_lookup(|name| std::env::var(name).ok())
}

/// [`Config::from_lookup`] plus the components' rules, reported with the other problems.
pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    Config::from_lookup_with(lookup, component_rules)
}

/// Rules between settings that a component owns.
fn component_rules(cfg: &Config, problems: &mut Vec<String>) {
    let Some(bars) = cfg.indicators.warm_start_bars else {
        return;
    };
    let s = indicators(cfg);
    if !s.warm_start_bars_allowed(bars) {
        problems.push(format!(
            "WARM_START_BARS ({bars:?}) is not valid; allowed: 0 (no warm start) or a whole number of bars from {} (the longest warm-up with these periods) to 1000000; the default is {}",
            s.warm_up_bars().longest(),
            s.default_warm_start_bars()
        ));
    }
}

/// The database and how Supabase Realtime is fed.
pub fn database(cfg: &Config) -> DbSettings {
    DbSettings {
        target: cfg.database.url.clone(),
        realtime_mode: cfg.realtime.mode,
        realtime_topic: cfg.realtime.topic.clone(),
        realtime_interval: cfg.realtime.interval,
        realtime_max_payload_bytes: realtime_max_payload_bytes(cfg),
    }
}

/// Room left in a Broadcast message for what Realtime adds around the payload.
const BROADCAST_ENVELOPE_ROOM: usize = 2_000;

/// The largest Broadcast payload the service sends on `REALTIME_PLAN` (its limit less some
/// room for Realtime's envelope).
pub fn realtime_max_payload_bytes(cfg: &Config) -> usize {
    crate::realtime::budget::quota(cfg.realtime.plan)
        .broadcast_payload_bytes
        .saturating_sub(BROADCAST_ENVELOPE_ROOM)
}

/// The writer's batching, with `overflow` chosen by the source; the disk spool only for live
/// sources (a finite source waits instead, so it never needs the spool).
pub fn writer(cfg: &Config, overflow: OverflowPolicy) -> WriterSettings {
    let w = &cfg.writer;
    WriterSettings {
        batch_size: w.batch_size,
        batch_interval: w.batch_interval,
        buffer_max_rows: w.buffer_max_rows,
        max_rows_per_write: w.max_rows_per_write,
        overflow,
        retry_min: Duration::from_millis(100),
        retry_max: Duration::from_secs(5),
        shutdown_grace: w.shutdown_grace,
        spool: match overflow {
            OverflowPolicy::Backpressure => None,
            OverflowPolicy::DropOldest => cfg.spool.dir.clone().map(|dir| SpoolSettings {
                dir,
                max_bytes: cfg.spool.max_bytes,
            }),
        },
        quarantine_file: quarantine_file(cfg),
    }
}

/// The quarantine file of last resort: next to the spool folder (`data/` by default), or in
/// `data/` when the spool is off.
pub fn quarantine_file(cfg: &Config) -> std::path::PathBuf {
    let folder = cfg
        .spool
        .dir
        .as_deref()
        .and_then(std::path::Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(
            || std::path::PathBuf::from("data"),
            std::path::Path::to_path_buf,
        );
    folder.join("rejected_rows.jsonl")
}

/// Bars, periods and the warm start depth (`WARM_START_BARS` unset: the default that follows
/// the periods).
pub fn indicators(cfg: &Config) -> IndicatorSettings {
    let i = &cfg.indicators;
    let mut s = IndicatorSettings {
        bar_seconds: i.bar_seconds,
        sma_period: i.sma_period,
        ema_fast_period: i.ema_fast_period,
        ema_slow_period: i.ema_slow_period,
        rsi_period: i.rsi_period,
        macd_fast: i.macd_fast,
        macd_slow: i.macd_slow,
        macd_signal: i.macd_signal,
        bb_period: i.bb_period,
        bb_stddev: i.bb_stddev,
        warm_start_bars: 0,
    };
    s.warm_start_bars = i
        .warm_start_bars
        .unwrap_or_else(|| s.default_warm_start_bars());
    s
}

/// Where and how the REST client calls Schwab.
pub fn rest(cfg: &Config) -> RestSettings {
    RestSettings {
        api_base: cfg.schwab.api_base.clone(),
        auth_base: cfg.schwab.auth_base.clone(),
        timeout: cfg.schwab.http_timeout,
    }
}

/// The developer app; `None` when the id or the secret is not set.
pub fn oauth_app(cfg: &Config) -> Option<OAuthApp> {
    Some(OAuthApp {
        client_id: cfg.schwab.client_id.clone()?,
        client_secret: cfg.schwab.client_secret.clone()?,
        callback_url: cfg.schwab.callback_url.clone(),
    })
}

/// The token task's timings.
pub fn tokens(cfg: &Config) -> TokenSettings {
    TokenSettings::new(cfg.schwab.needs_login_retry, cfg.schwab.token_store_poll)
}

/// The session's reconnect loop and connection timings.
pub fn supervisor(cfg: &Config) -> SupervisorSettings {
    let s = &cfg.schwab;
    SupervisorSettings::new(
        ConnectionSettings {
            connect_timeout: s.http_timeout,
            response_timeout: s.response_timeout,
            stall_timeout: s.stall_timeout,
            max_frame_bytes: s.max_frame_bytes,
            silence: crate::schwab::session::subscriptions::SilenceSettings {
                quotes: s.service_silence_timeout,
                charts: s.chart_silence_timeout,
                clock: market_calendar::MarketClock::Wall,
            },
        },
        [s.reconnect_backoff_min, s.reconnect_backoff_max],
        s.kicked_backoff,
        s.needs_login_retry,
    )
}

/// The ACCT_ACTIVITY key: any client string works (`schwab-services.md` §7); this is the
/// one Schwabdev sends.
pub const ACCOUNT_ACTIVITY_KEY: &str = "Account Activity";

/// Book fields: 0 symbol, 1 snapshot time, 2 bids, 3 asks (`schwab-services.md` §5).
const BOOK_FIELDS: [u32; 4] = [0, 1, 2, 3];
/// Screener fields: 0 key, 1 time, 2 sort field, 3 frequency, 4 items (§6).
const SCREENER_FIELDS: [u32; 5] = [0, 1, 2, 3, 4];
/// Account activity fields: 0 key, 1 account, 2 type, 3 message (§7).
const ACCOUNT_FIELDS: [u32; 4] = [0, 1, 2, 3];

/// The subscriptions of the configured symbols, in the order they are sent ([`Service::ALL`]):
/// LEVELONE_EQUITIES (`SYMBOLS`), LEVELONE_OPTIONS (`OPTION_SYMBOLS`), CHART_EQUITY
/// (`CHART_SYMBOLS`), LEVELONE_FUTURES (`FUTURES_SYMBOLS`), LEVELONE_FUTURES_OPTIONS
/// (`FUTURES_OPTION_SYMBOLS`), LEVELONE_FOREX (`FOREX_SYMBOLS`), CHART_FUTURES
/// (`FUTURES_CHART_SYMBOLS`), the three books (`*_BOOK_SYMBOLS`), the two screeners
/// (`SCREENER_*_KEYS`) and ACCT_ACTIVITY (`ACCOUNT_ACTIVITY=on`). Services without keys are
/// left out.
pub fn subscriptions(cfg: &Config) -> Vec<Subscription> {
    let (symbols, schwab) = (&cfg.symbols, &cfg.schwab);
    let account: Vec<String> = if symbols.account_activity {
        vec![ACCOUNT_ACTIVITY_KEY.to_string()]
    } else {
        Vec::new()
    };
    protocol::subscriptions(
        [
            (
                Service::LevelOneEquities,
                &symbols.equities,
                &schwab.equity_fields[..],
            ),
            (
                Service::LevelOneOptions,
                &symbols.options,
                &schwab.option_fields,
            ),
            (Service::ChartEquity, &symbols.charts, &schwab.chart_fields),
            (
                Service::LevelOneFutures,
                &symbols.futures,
                &schwab.futures_fields,
            ),
            (
                Service::LevelOneFuturesOptions,
                &symbols.futures_options,
                &schwab.futures_option_fields,
            ),
            (Service::LevelOneForex, &symbols.forex, &schwab.forex_fields),
            (
                Service::ChartFutures,
                &symbols.futures_charts,
                &schwab.futures_chart_fields,
            ),
            (Service::NyseBook, &symbols.nyse_book, &BOOK_FIELDS),
            (Service::NasdaqBook, &symbols.nasdaq_book, &BOOK_FIELDS),
            (Service::OptionsBook, &symbols.options_book, &BOOK_FIELDS),
            (
                Service::ScreenerEquity,
                &symbols.screener_equity,
                &SCREENER_FIELDS,
            ),
            (
                Service::ScreenerOption,
                &symbols.screener_option,
                &SCREENER_FIELDS,
            ),
            (Service::AcctActivity, &account, &ACCOUNT_FIELDS),
        ]
        .map(|(service, keys, fields)| Subscription {
            service,
            keys: keys.clone(),
            fields: fields.to_vec(),
        }),
    )
}

/// The watchlist task's settings: its own, the configured subscriptions and every
/// service's fields.
pub fn watchlist(cfg: &Config) -> crate::watchlist::WatchlistSettings {
    let s = &cfg.schwab;
    let fields = |service: Service| -> Vec<u32> {
        match service {
            Service::LevelOneEquities => s.equity_fields.clone(),
            Service::LevelOneOptions => s.option_fields.clone(),
            Service::ChartEquity => s.chart_fields.clone(),
            Service::LevelOneFutures => s.futures_fields.clone(),
            Service::LevelOneFuturesOptions => s.futures_option_fields.clone(),
            Service::LevelOneForex => s.forex_fields.clone(),
            Service::ChartFutures => s.futures_chart_fields.clone(),
            Service::NyseBook | Service::NasdaqBook | Service::OptionsBook => BOOK_FIELDS.to_vec(),
            Service::ScreenerEquity | Service::ScreenerOption => SCREENER_FIELDS.to_vec(),
            Service::AcctActivity => ACCOUNT_FIELDS.to_vec(),
        }
    };
    crate::watchlist::WatchlistSettings {
        max_per_service: cfg.watchlist.max_per_service,
        poll: cfg.watchlist.poll,
        configured: subscriptions(cfg),
        fields: Service::ALL.map(|sv| (sv, fields(sv))).to_vec(),
    }
}

/// How the pipeline stores books (`BOOK_DEPTH`, `BOOK_SNAPSHOT_INTERVAL`).
pub fn books(cfg: &Config) -> crate::market::books::BookSettings {
    crate::market::books::BookSettings {
        depth: cfg.books.depth,
        interval_ms: i64::try_from(cfg.books.snapshot_interval.as_millis()).unwrap_or(i64::MAX),
    }
}

/// Retention, partitions and the size budget.
pub fn retention(cfg: &Config) -> RetentionSettings {
    let r = &cfg.retention;
    RetentionSettings {
        keep: RetentionDays {
            ticks: r.tick_retention_days,
            bars: r.bar_retention_days,
            partition_premake: r.partition_premake_days,
        },
        interval: r.maintenance_interval,
        db_size_limit_mb: r.db_size_limit_mb,
        db_size_warn_percent: r.db_size_warn_percent,
        db_size_guard_percent: r.db_size_guard_percent,
        db_size_guard_target_percent: r.db_size_guard_target_percent,
    }
}

/// The `/health` rules.
pub fn health_rules(cfg: &Config) -> HealthRules {
    HealthRules::new(cfg.schwab.stall_timeout, cfg.health.db_down_after)
}

/// The Realtime message budget of `cfg` (see [`crate::realtime::budget`]), for the average
/// month of the New York year at `at`. SQLite has no Realtime: it sends nothing.
pub fn realtime_budget(cfg: &Config, at: chrono::DateTime<chrono::Utc>) -> Budget {
    let mode = match cfg.database.url {
        crate::db::DatabaseTarget::Postgres(_) => cfg.realtime.mode,
        crate::db::DatabaseTarget::Sqlite(_) => streamer_config::RealtimeMode::Off,
    };
    let s = &cfg.symbols;
    let symbols = s.equities.len() + s.futures.len() + s.forex.len();
    // Futures and forex quote nearly around the clock: the month then has more ticks.
    let session_per_month = if s.futures.is_empty() && s.forex.is_empty() {
        budget::regular_session_per_month(market_calendar::new_york_date(at).year())
    } else {
        budget::futures_week_per_month()
    };
    budget::estimate(&BudgetInput {
        mode,
        plan: cfg.realtime.plan,
        interval: cfg.realtime.interval,
        symbols: symbols as u64,
        parts_per_tick: estimated_parts(symbols, realtime_max_payload_bytes(cfg)) as u64,
        session_per_month,
    })
}

/// The settings `/health` reports; the Realtime budget for the month around `at`.
pub fn health_facts(cfg: &Config, at: chrono::DateTime<chrono::Utc>) -> FixedFacts {
    FixedFacts {
        database_kind: match cfg.database.url {
            crate::db::DatabaseTarget::Postgres(_) => "postgres",
            crate::db::DatabaseTarget::Sqlite(_) => "sqlite",
        },
        db_limit_bytes: cfg.retention.db_size_limit_mb.saturating_mul(1024 * 1024),
        db_warn_percent: cfg.retention.db_size_warn_percent,
        buffer_max_rows: cfg.writer.buffer_max_rows as u64,
        spool_configured: cfg.spool.dir.is_some(),
        spool_max_bytes: cfg.spool.max_bytes,
        realtime_budget: Some(realtime_budget(cfg, at)),
        backfill_enabled: cfg.schwab.backfill,
        backfill_skipped: if cfg.schwab.backfill {
            crate::backfill::no_history_symbols(cfg)
        } else {
            Vec::new()
        },
    }
}

/// The simulated market (`SCHWAB_MODE=simulated` and `simulate`).
pub fn simulator(cfg: &Config) -> SimServerSettings {
    SimServerSettings {
        market: SimConfig {
            seed: cfg.simulator.seed,
            updates_per_symbol_per_sec: cfg.simulator.updates_per_symbol_per_sec,
            ..SimConfig::default()
        },
        ..SimServerSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schwab::wire::{ChartFields, EquityFields, OptionFields};

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_default_field_lists_are_what_the_wire_parser_stores() {
        let cfg = from(&[]).expect("defaults are valid");
        assert_eq!(
            cfg.schwab.equity_fields,
            protocol::with_field_zero(EquityFields::FIELD_NUMBERS),
            "EQUITY_FIELDS"
        );
        assert_eq!(
            cfg.schwab.option_fields,
            protocol::with_field_zero(OptionFields::FIELD_NUMBERS),
            "OPTION_FIELDS"
        );
        assert_eq!(
            cfg.schwab.chart_fields,
            protocol::with_field_zero(ChartFields::FIELD_NUMBERS),
            "CHART_FIELDS"
        );
    }

    #[test]
    fn indicator_settings_have_documented_defaults_and_parse() {
        let s = indicators(&from(&[]).expect("defaults"));
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
        assert_eq!(s.warm_start_bars, 1400, "40 x (MACD_SLOW + MACD_SIGNAL)");
        assert_eq!(s, IndicatorSettings::default());

        let s = indicators(
            &from(&[
                ("BAR_SECONDS", "300"),
                ("RSI_PERIOD", "7"),
                ("MACD_SLOW", "30"),
                ("BB_STDDEV", "2.5"),
            ])
            .expect("valid"),
        );
        assert_eq!(s.bar_seconds, 300);
        assert_eq!(s.rsi_period, 7);
        assert_eq!(s.bb_stddev, 2.5);
        assert_eq!(
            s.warm_start_bars,
            40 * 39,
            "the default follows the periods"
        );
        let off = from(&[("WARM_START_BARS", "0")]).expect("0 turns warm start off");
        assert_eq!(indicators(&off).warm_start_bars, 0);
        let set = from(&[("WARM_START_BARS", "35")]).expect("at least the longest warm-up");
        assert_eq!(indicators(&set).warm_start_bars, 35);
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
            ("WARM_START_BARS", "10"),
            ("RSI_PERIOD", "x"),
        ])
        .expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 7, "{text}");
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
        assert!(
            text.contains("WARM_START_BARS") && text.contains("from 30 (the longest warm-up"),
            "{text}"
        );
        assert!(text.contains("RSI_PERIOD"), "{text}");
    }

    #[test]
    fn configured_subscriptions_follow_the_documented_order() {
        let only_equities = |n: &str| {
            matches!(
                n,
                "OPTION_SYMBOLS"
                    | "FUTURES_SYMBOLS"
                    | "FUTURES_OPTION_SYMBOLS"
                    | "FOREX_SYMBOLS"
                    | "NASDAQ_BOOK_SYMBOLS"
                    | "SCREENER_EQUITY_KEYS"
                    | "SCREENER_OPTION_KEYS"
            )
            .then(String::new)
            .or_else(|| (n == "ACCOUNT_ACTIVITY").then(|| "off".to_string()))
        };
        let cfg = from_lookup(only_equities).expect("cfg");
        let subs = subscriptions(&cfg);
        let services: Vec<_> = subs.iter().map(|s| s.service).collect();
        assert_eq!(
            services,
            [Service::LevelOneEquities, Service::ChartEquity],
            "no options configured"
        );
        assert!(
            subs.iter()
                .all(|s| s.fields[0] == 0 && s.fields.windows(2).all(|w| w[0] < w[1]))
        );
        let cfg = from(&[]).expect("defaults");
        let subs = subscriptions(&cfg);
        let services: Vec<_> = subs.iter().map(|s| s.service).collect();
        assert_eq!(
            services,
            [
                Service::LevelOneEquities,
                Service::LevelOneOptions,
                Service::ChartEquity,
                Service::LevelOneFutures,
                Service::LevelOneFuturesOptions,
                Service::LevelOneForex,
                Service::ChartFutures,
                Service::NasdaqBook,
                Service::ScreenerEquity,
                Service::ScreenerOption,
                Service::AcctActivity,
            ],
            "the zero-configuration run subscribes a small set of every service but the empty books"
        );
        let account = subs.last().expect("account activity");
        assert_eq!(account.keys, [ACCOUNT_ACTIVITY_KEY]);
        assert_eq!(account.fields, [0, 1, 2, 3]);
        let off = from(&[("ACCOUNT_ACTIVITY", "off"), ("FOREX_SYMBOLS", "")]).expect("valid");
        let services: Vec<_> = subscriptions(&off).iter().map(|s| s.service).collect();
        assert!(!services.contains(&Service::AcctActivity));
        assert!(!services.contains(&Service::LevelOneForex));
    }

    #[test]
    fn only_live_sources_get_the_spool() {
        let cfg = from(&[("BATCH_SIZE", "7"), ("SPOOL_DIR", "x/spool")]).expect("valid");
        let live = writer(&cfg, OverflowPolicy::DropOldest);
        assert_eq!(live.batch_size, 7);
        assert_eq!(
            live.spool.map(|s| s.dir),
            Some(std::path::PathBuf::from("x/spool"))
        );
        assert!(writer(&cfg, OverflowPolicy::Backpressure).spool.is_none());
        let off = from(&[("SPOOL_DIR", "off")]).expect("valid");
        assert!(writer(&off, OverflowPolicy::DropOldest).spool.is_none());
    }
}
