//! The settings, one entry per variable: this list is the single place a setting is defined.
//! [`settings!`](crate::table) turns it into the section structs, [`Config`], the
//! [`SERVICE_VARIABLES`] table and the parser. README's configuration table and
//! `env.template` are checked against it by this crate's tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::database::DatabaseTarget;
use crate::parse;
use crate::secret::Secret;
use crate::symbols;
use crate::table::settings;
use crate::{RealtimeMode, RealtimePlan, SchwabMode, TokenStoreKind};

/// Longest indicator period accepted (bars).
pub const MAX_PERIOD: u32 = 1000;

settings! {
    /// Where rows go.
    Database => database: DatabaseSettings {
        /// Where rows go.
        url: DatabaseTarget = "DATABASE_URL" {
            default: value("sqlite://data/market.db"),
            allowed: "sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
            parse: parse::database_url,
            help: "`sqlite://PATH` (file and folder created if missing) or `postgres://USER:PASSWORD@HOST:PORT/DB` (the user name is required)",
        },
    },
    /// How the writer batches rows, and how long it may drain at shutdown.
    Writer => writer: WriterSettings {
        /// Flush when this many rows are buffered.
        batch_size: usize = "BATCH_SIZE" {
            default: value("1"),
            allowed: "a whole number from 1 to 100000",
            parse: parse::within(|v: usize| (1..=100_000).contains(&v)),
            help: "flush when this many rows are buffered (1–100000)",
        },
        /// Flush when the oldest buffered row is this old.
        batch_interval: Duration = "BATCH_INTERVAL" {
            default: value("1"),
            allowed: "seconds from 0.001 to 3600, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.001, 3600.0),
            help: "seconds; flush when the oldest buffered row is this old (fractions allowed, e.g. `0.25`)",
        },
        /// Cap of the writer's in-memory buffer (at least `batch_size`).
        buffer_max_rows: usize = "BUFFER_MAX_ROWS" {
            default: value("100000"),
            allowed: "a whole number from 100 to 10000000",
            parse: parse::within(|v: usize| (100..=10_000_000).contains(&v)),
            help: "cap of the in-memory buffer, see *When the buffer is full*",
        },
        /// Cap of one database write (a bigger buffer goes out in several).
        max_rows_per_write: usize = "MAX_ROWS_PER_WRITE" {
            default: value("5000"),
            allowed: "a whole number from 1 to 100000",
            parse: parse::within(|v: usize| (1..=100_000).contains(&v)),
            help: "cap of one database write; a larger backlog goes out in several",
        },
        /// How long the writer may keep retrying after a stop signal.
        shutdown_grace: Duration = "SHUTDOWN_GRACE" {
            default: value("8"),
            allowed: "seconds from 0 to 600, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.0, 600.0),
            help: "seconds the service may take to stop: the buffer is written (or spooled if the database is down), and the spool keeps replaying while time is left",
        },
    },
    /// The disk spool that holds batches while the database is down or the buffer is full.
    Spool => spool: SpoolSettings {
        /// The spool's folder (`None`: `off`).
        dir: Option<PathBuf> = "SPOOL_DIR" {
            default: value("data/spool"),
            allowed: "a folder, or off (memory only)",
            parse: parse::spool_dir,
            help: "folder of the disk spool that holds batches while the database is down or the buffer is full; `off` keeps everything in memory",
        },
        /// The spool's size cap in bytes.
        max_bytes: u64 = "SPOOL_MAX_BYTES" {
            default: shown("`512M`", "512M"),
            allowed: "a size from 1M to 1024G, in bytes or with a K, M or G suffix (e.g. 512M)",
            parse: parse::spool_bytes,
            help: "size cap of the spool (bytes, or with `K`/`M`/`G`); past it the oldest spooled rows are dropped, loudly and counted",
        },
    },
    /// What to stream.
    Symbols => symbols: SymbolSettings {
        /// Equities (LEVELONE_EQUITIES), upper-cased, de-duplicated, in order.
        equities: Vec<String> = "SYMBOLS" {
            default: value("AAPL,MSFT,NVDA,SPY,TSLA"),
            allowed: "comma-separated tickers of up to 12 letters, digits, '.', '/', '$' or '-' (e.g. AAPL,BRK.B,$SPX)",
            parse: parse::symbols,
            help: "equities (LEVELONE_EQUITIES), comma-separated",
        },
        /// Option contracts (21-character form, LEVELONE_OPTIONS); empty is a value: no options.
        options: Vec<String> = "OPTION_SYMBOLS" {
            default: shown("two demo contracts", "AAPL  271217C00250000,SPY   271217P00600000"),
            allowed: "21-character Schwab option symbols, root padded to 6 with spaces + YYMMDD + C/P + strike x1000 in 8 digits, e.g. \"MSFT  251219C00480000\"; empty for none",
            parse: parse::option_symbols,
            help: "21-character option symbols (`MSFT  251219C00480000`), comma-separated; empty for none",
        },
        /// Equities for one-minute bars (CHART_EQUITY); `SYMBOLS` when unset.
        charts: Vec<String> = "CHART_SYMBOLS" {
            default: unset("`SYMBOLS`"),
            allowed: "comma-separated tickers, like SYMBOLS",
            parse: parse::symbols,
            help: "equities for one-minute candles (CHART_EQUITY)",
        },
        /// Futures (LEVELONE_FUTURES): `/ES` (front month) or `/ESZ25`, upper-cased,
        /// de-duplicated, in order; empty is a value: none.
        futures: Vec<String> = "FUTURES_SYMBOLS" {
            default: value("/ES,/NQ"),
            allowed: symbols::FUTURES_ALLOWED,
            parse: parse::futures_symbols,
            help: "futures (LEVELONE_FUTURES, into `futures_data`), comma-separated: `/ES` is the front month, `/ESZ25` a contract (root, month code, 2-digit year); empty for none",
        },
        /// Futures for one-minute bars (CHART_FUTURES); `futures` when unset or empty, none
        /// when `none`.
        futures_charts: Vec<String> = "FUTURES_CHART_SYMBOLS" {
            default: unset("`FUTURES_SYMBOLS`"),
            allowed: "comma-separated futures like FUTURES_SYMBOLS (e.g. /ES,/NQ), or none for no futures candles (unset or empty: FUTURES_SYMBOLS)",
            parse: parse::futures_chart_symbols,
            help: "futures for one-minute candles (CHART_FUTURES, into `futures_bars`); `none` for no futures candles",
        },
        /// Futures options (LEVELONE_FUTURES_OPTIONS), e.g. `./OZCZ27C565`, upper-cased,
        /// de-duplicated, in order; empty is a value: none. Read them with
        /// [`FuturesOptionContract`](crate::futures_option_symbol::FuturesOptionContract).
        futures_options: Vec<String> = "FUTURES_OPTION_SYMBOLS" {
            default: value("./OZCZ27C565"),
            allowed: symbols::FUTURES_OPTIONS_ALLOWED,
            parse: parse::futures_option_symbols,
            help: "futures options (LEVELONE_FUTURES_OPTIONS, into `futures_option_data`), comma-separated: `.` + `/` + root + month code + 2-digit year + `C`/`P` + strike; empty for none",
        },
        /// Currency pairs (LEVELONE_FOREX), e.g. `EUR/USD`, upper-cased, de-duplicated, in
        /// order; empty is a value: none.
        forex: Vec<String> = "FOREX_SYMBOLS" {
            default: value("EUR/USD,USD/JPY"),
            allowed: symbols::FOREX_ALLOWED,
            parse: parse::forex_symbols,
            help: "currency pairs (LEVELONE_FOREX, into `forex_data`), comma-separated, e.g. `EUR/USD`; empty for none",
        },
        /// Equities whose NYSE order book is stored (NYSE_BOOK); empty: none.
        nyse_book: Vec<String> = "NYSE_BOOK_SYMBOLS" {
            default: shown("none", ""),
            allowed: "comma-separated tickers, like SYMBOLS (e.g. IBM,F); empty for none",
            parse: parse::symbols_or_none,
            help: "equities whose NYSE order book (NYSE_BOOK) is stored in `book_snapshots`, comma-separated; empty for none",
        },
        /// Equities whose NASDAQ order book is stored (NASDAQ_BOOK); empty is a value: none.
        nasdaq_book: Vec<String> = "NASDAQ_BOOK_SYMBOLS" {
            default: value("AAPL"),
            allowed: "comma-separated tickers, like SYMBOLS (e.g. AAPL,MSFT); empty for none",
            parse: parse::symbols_or_none,
            help: "equities whose NASDAQ order book (NASDAQ_BOOK) is stored in `book_snapshots`, comma-separated; empty for none",
        },
        /// Option contracts (21-character form) whose order book is stored (OPTIONS_BOOK);
        /// empty: none.
        options_book: Vec<String> = "OPTIONS_BOOK_SYMBOLS" {
            default: shown("none", ""),
            allowed: "21-character Schwab option symbols like OPTION_SYMBOLS, e.g. \"MSFT  251219C00480000\"; empty for none",
            parse: parse::option_symbols,
            help: "21-character option symbols whose order book (OPTIONS_BOOK) is stored in `book_snapshots`, comma-separated; empty for none",
        },
        /// SCREENER_EQUITY keys (`NASDAQ_VOLUME_5`), upper-cased, de-duplicated, in order;
        /// empty is a value: none.
        screener_equity: Vec<String> = "SCREENER_EQUITY_KEYS" {
            default: value("NASDAQ_VOLUME_5"),
            allowed: symbols::SCREENER_EQUITY_ALLOWED,
            parse: parse::screener_equity_keys,
            help: "equity screeners (SCREENER_EQUITY, into `screener_snapshots`), comma-separated `PREFIX_SORTFIELD_FREQUENCY`: prefix `$COMPX`, `$DJI`, `$SPX.X`, `INDEX_AL`, `NYSE`, `NASDAQ`, `OTCBB` or `EQUITY_ALL`; sort field `VOLUME`, `TRADES`, `PERCENT_CHANGE_UP`, `PERCENT_CHANGE_DOWN` or `AVERAGE_PERCENT_VOLUME`; frequency in minutes `0` (whole day), `1`, `5`, `10`, `30` or `60`, e.g. `$SPX.X_PERCENT_CHANGE_UP_60`; empty for none",
        },
        /// SCREENER_OPTION keys (`OPTION_CALL_VOLUME_5`), upper-cased, de-duplicated, in
        /// order; empty is a value: none.
        screener_option: Vec<String> = "SCREENER_OPTION_KEYS" {
            default: value("OPTION_CALL_VOLUME_5"),
            allowed: symbols::SCREENER_OPTION_ALLOWED,
            parse: parse::screener_option_keys,
            help: "option screeners (SCREENER_OPTION, into `screener_snapshots`), like `SCREENER_EQUITY_KEYS` with the prefix `OPTION_PUT`, `OPTION_CALL` or `OPTION_ALL`; empty for none",
        },
        /// Subscribe ACCT_ACTIVITY (orders and fills of every account under the login).
        account_activity: bool = "ACCOUNT_ACTIVITY" {
            default: value("on"),
            allowed: "on or off (also true/false, yes/no, 1/0)",
            parse: parse::on_off,
            help: "`on` subscribes ACCT_ACTIVITY (orders and fills of every account under the login) into the private table `account_activity` (no grant to `anon`/`authenticated`, row-level security on); `off` does not",
        },
    },
    /// Order books (NYSE_BOOK, NASDAQ_BOOK, OPTIONS_BOOK): how much of them is stored.
    Books => books: BookSettings {
        /// Price levels per side stored in `book_snapshots`.
        depth: usize = "BOOK_DEPTH" {
            default: value("10"),
            allowed: "a whole number from 1 to 50",
            parse: parse::within(|v: usize| (1..=50).contains(&v)),
            help: "price levels per side stored in `book_snapshots` (1–50)",
        },
        /// At most one stored snapshot per symbol and book per this long; the newest book in
        /// between is kept in memory.
        snapshot_interval: Duration = "BOOK_SNAPSHOT_INTERVAL" {
            default: value("5"),
            allowed: "seconds from 0.1 to 3600, fractions allowed (e.g. 0.5)",
            parse: parse::seconds(0.1, 3600.0),
            help: "seconds; at most one stored snapshot per symbol and book per interval (fractions allowed, 0.1–3600); the newest book in between is kept in memory",
        },
    },
    /// The watchlist: symbols the front end adds and removes while the service runs.
    Watchlist => watchlist: WatchlistSettings {
        /// Read the `watchlist` table and apply it live.
        enabled: bool = "WATCHLIST" {
            default: value("on"),
            allowed: "on or off (also true/false, yes/no, 1/0)",
            parse: parse::on_off,
            help: "`on`: the service also subscribes the rows of the `watchlist` table (see [SCHEMA.md](SCHEMA.md#watchlist)), applying inserts and deletes within seconds with `ADD`/`UNSUBS` on the running connection; `off` ignores the table",
        },
        /// Most watchlist symbols per service.
        max_per_service: usize = "WATCHLIST_MAX_PER_SERVICE" {
            default: value("50"),
            allowed: "a whole number from 1 to 500",
            parse: parse::within(|v: usize| (1..=500).contains(&v)),
            help: "most watchlist symbols per service (1–500); rows past it are `rejected` with the reason",
        },
        /// How often the table is read (SQLite; PostgreSQL is told at once and re-reads every 30 s).
        poll: Duration = "WATCHLIST_POLL" {
            default: value("2"),
            allowed: "seconds from 0.1 to 3600, fractions allowed (e.g. 0.5)",
            parse: parse::seconds(0.1, 3600.0),
            help: "seconds between reads of the `watchlist` table on SQLite (PostgreSQL is notified at once by a trigger and re-read every 30 s)",
        },
    },
    /// The Schwab session: credentials, token store, field sets, reconnect timings.
    Schwab => schwab: SchwabSettings {
        /// Where the stream comes from.
        mode: SchwabMode = "SCHWAB_MODE" {
            default: unset("`live` if `SCHWAB_CLIENT_ID` is set, else `simulated`"),
            allowed: "simulated or live (unset: live when SCHWAB_CLIENT_ID is set)",
            parse: parse::schwab_mode,
            help: "`simulated`: the built-in simulator, started in process on 127.0.0.1 with a temporary token file (no other Schwab setting is needed or used); `live`: Schwab (or any server at `SCHWAB_API_BASE`)",
        },
        /// The app key of the developer app.
        client_id: Option<String> = "SCHWAB_CLIENT_ID" {
            default: unset("none"),
            allowed: "the App Key from your app's page on developer.schwab.com (or SCHWAB_MODE=simulated)",
            parse: parse::text,
            help: "the App Key of your Schwab developer app (required for `live` and `login`)",
        },
        /// The app secret (redacted from `Debug`).
        client_secret: Option<Secret> = "SCHWAB_CLIENT_SECRET" {
            default: unset("none"),
            allowed: "the Secret from your app's page on developer.schwab.com",
            parse: parse::secret,
            help: "the app's Secret (required with the id; never logged)",
        },
        /// The callback registered for the app (https, exact match).
        callback_url: String = "SCHWAB_CALLBACK_URL" {
            default: value("https://127.0.0.1:8182"),
            allowed: "the exact https callback URL registered for the app, e.g. https://127.0.0.1:8182",
            parse: parse::callback_url,
            help: "the callback URL registered for the app, character for character (https, trailing `/` matters)",
        },
        /// Base of the REST API (`/trader/v1/userPreference` is below it), without a trailing `/`.
        api_base: String = "SCHWAB_API_BASE" {
            default: value("https://api.schwabapi.com"),
            allowed: "an http(s) URL, e.g. https://api.schwabapi.com",
            parse: parse::base_url,
            help: "REST base; `userPreference` is `…/trader/v1/userPreference`",
        },
        /// Base of the OAuth endpoints (`/authorize`, `/token`), without a trailing `/`.
        auth_base: String = "SCHWAB_AUTH_BASE" {
            default: value("https://api.schwabapi.com/v1/oauth"),
            allowed: "an http(s) URL, e.g. https://api.schwabapi.com",
            parse: parse::base_url,
            help: "OAuth base; `…/authorize` and `…/token`",
        },
        /// Where the OAuth tokens are kept.
        token_store: TokenStoreKind = "TOKEN_STORE" {
            default: value("file"),
            allowed: "file (TOKEN_FILE) or database (table schwab_tokens in DATABASE_URL)",
            parse: parse::token_store,
            help: "`file` (`TOKEN_FILE`) or `database` (table `schwab_tokens` in `DATABASE_URL`, see *Connecting to Schwab*)",
        },
        /// The token file when `TOKEN_STORE=file`.
        token_file: PathBuf = "TOKEN_FILE" {
            default: value("data/schwab-tokens.json"),
            allowed: "a file path",
            parse: parse::path,
            help: "the token file (written atomically, mode 0600; a `.lock` file next to it serialises refreshes)",
        },
        /// LEVELONE_EQUITIES fields, ascending, with 0. The default is the fields `equity_data` stores (the service checks this).
        equity_fields: Vec<u32> = "EQUITY_FIELDS" {
            default: shown("the fields `equity_data` stores", "0,1,2,3,4,5,8,9,10,11,12,17,18,32,33,34,35,42"),
            allowed: "comma-separated field numbers from 0 to 51 (sorted and field 0 added for you)",
            parse: parse::fields(51),
            help: "LEVELONE_EQUITIES field numbers (0–51), comma-separated; sorted and field 0 added for you",
        },
        /// LEVELONE_OPTIONS fields, ascending, with 0. The default is the fields `option_data` stores (the service checks this).
        option_fields: Vec<u32> = "OPTION_FIELDS" {
            default: shown("the fields `option_data` stores", "0,2,3,4,5,6,7,8,9,10,16,17,19,20,21,22,25,27,28,29,30,31,32,34,35,37,38,39"),
            allowed: "comma-separated field numbers from 0 to 55 (sorted and field 0 added for you)",
            parse: parse::fields(55),
            help: "LEVELONE_OPTIONS field numbers (0–55)",
        },
        /// CHART_EQUITY fields, ascending, with 0.
        chart_fields: Vec<u32> = "CHART_FIELDS" {
            default: value("0,1,2,3,4,5,6,7,8"),
            allowed: "comma-separated field numbers from 0 to 8 (sorted and field 0 added for you)",
            parse: parse::fields(8),
            help: "CHART_EQUITY field numbers (0–8)",
        },
        /// LEVELONE_FUTURES fields, ascending, with 0. The default is the fields `futures_data` stores.
        futures_fields: Vec<u32> = "FUTURES_FIELDS" {
            default: shown("the fields `futures_data` stores", "0,1,2,3,4,5,8,9,10,11,12,13,14,18,19,20,22,23,24,31,33,34,35"),
            allowed: "comma-separated field numbers from 0 to 40 (sorted and field 0 added for you)",
            parse: parse::fields(40),
            help: "LEVELONE_FUTURES field numbers (0–40)",
        },
        /// LEVELONE_FUTURES_OPTIONS fields, ascending, with 0. The default is the fields `futures_option_data` stores.
        futures_option_fields: Vec<u32> = "FUTURES_OPTION_FIELDS" {
            default: shown("the fields `futures_option_data` stores", "0,1,2,3,4,5,8,9,10,11,12,13,14,17,18,19,22,23,24,25,26,28,29"),
            allowed: "comma-separated field numbers from 0 to 31 (sorted and field 0 added for you)",
            parse: parse::fields(31),
            help: "LEVELONE_FUTURES_OPTIONS field numbers (0–31)",
        },
        /// LEVELONE_FOREX fields, ascending, with 0. The default is the fields `forex_data` stores.
        forex_fields: Vec<u32> = "FOREX_FIELDS" {
            default: shown("the fields `forex_data` stores", "0,1,2,3,4,5,6,7,8,9,10,11,12,15,16,17,20,29"),
            allowed: "comma-separated field numbers from 0 to 29 (sorted and field 0 added for you)",
            parse: parse::fields(29),
            help: "LEVELONE_FOREX field numbers (0–29)",
        },
        /// CHART_FUTURES fields, ascending, with 0.
        futures_chart_fields: Vec<u32> = "FUTURES_CHART_FIELDS" {
            default: value("0,1,2,3,4,5,6"),
            allowed: "comma-separated field numbers from 0 to 6 (sorted and field 0 added for you)",
            parse: parse::fields(6),
            help: "CHART_FUTURES field numbers (0–6)",
        },
        /// How far ahead of the receive time a stream time may lie before it is clamped.
        clock_skew_tolerance: Duration = "CLOCK_SKEW_TOLERANCE" {
            default: value("60"),
            allowed: "seconds from 1 to 3600, fractions allowed (e.g. 2.5)",
            parse: parse::seconds(1.0, 3600.0),
            help: "seconds; a stream time (item `timestamp`, quote/trade time, candle start, book or screener time) further ahead of the receive time is clamped to it, so `latest_quotes` and the indicators never move into the future (counted as `market_streamer_times_clamped_total`; `/health` notes the skew: check NTP on the box). Times over a day ahead are refused",
        },
        /// Largest stream message (and replay line) accepted.
        max_frame_bytes: usize = "MAX_FRAME_BYTES" {
            default: shown("`4M`", "4M"),
            allowed: "a size from 64K to 256M, in bytes or with a K or M suffix (e.g. 4M)",
            parse: parse::frame_bytes,
            help: "largest Schwab message (and `replay` line) accepted; a larger one is refused before it is read whole (the connection is made again, counted as `market_streamer_reconnects_total{reason=\"frame_too_large\"}`; `replay` skips the line), which bounds memory whatever arrives",
        },
        /// Reconnect when no frame (data or heartbeat) arrived for this long.
        stall_timeout: Duration = "STALL_TIMEOUT" {
            default: value("30"),
            allowed: "seconds from 0.1 to 3600, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.1, 3600.0),
            help: "seconds without any frame (data or heartbeat) after which the connection is dropped and re-established",
        },
        /// A LEVELONE, book or screener service without data for this long (its market open)
        /// is subscribed again; as long again, and the connection is made again.
        service_silence_timeout: Duration = "SERVICE_SILENCE_TIMEOUT" {
            default: value("60"),
            allowed: "seconds from 1 to 86400, fractions allowed (e.g. 30)",
            parse: parse::seconds(1.0, 86400.0),
            help: "seconds a LEVELONE, book or screener service may deliver no data while its market is open (NYSE regular session; futures and forex: their near-24-hour weeks) before it is subscribed again on the same connection; silent as long again, the connection is made again (a `stream_gaps` row, reason `service_silent`)",
        },
        /// The same for the CHART services.
        chart_silence_timeout: Duration = "CHART_SILENCE_TIMEOUT" {
            default: value("180"),
            allowed: "seconds from 1 to 86400, fractions allowed (e.g. 120)",
            parse: parse::seconds(1.0, 86400.0),
            help: "the same rule for CHART_EQUITY and CHART_FUTURES (one candle a minute)",
        },
        /// Deadline for the LOGIN ack and each subscription ack.
        response_timeout: Duration = "STREAM_RESPONSE_TIMEOUT" {
            default: value("10"),
            allowed: "seconds from 0.1 to 300, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.1, 300.0),
            help: "seconds to wait for the LOGIN answer and for each subscription answer",
        },
        /// Deadline of every REST call and of the WebSocket connect.
        http_timeout: Duration = "SCHWAB_HTTP_TIMEOUT" {
            default: value("15"),
            allowed: "seconds from 0.1 to 300, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.1, 300.0),
            help: "seconds for each REST call and for the WebSocket connect",
        },
        /// First reconnect delay ceiling (full jitter below it).
        reconnect_backoff_min: Duration = "RECONNECT_BACKOFF_MIN" {
            default: value("1"),
            allowed: "seconds from 0.01 to 600, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.01, 600.0),
            help: "seconds; first reconnect delay ceiling (each delay is random between 0 and the ceiling, which doubles per failure)",
        },
        /// Cap of the reconnect delay (at least the minimum).
        reconnect_backoff_max: Duration = "RECONNECT_BACKOFF_MAX" {
            default: value("120"),
            allowed: "seconds from 0.01 to 3600, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.01, 3600.0),
            help: "seconds; cap of that ceiling. It resets after a connection streamed for a minute",
        },
        /// Wait after code 12 (another login took the single streamer slot).
        kicked_backoff: Duration = "KICKED_BACKOFF" {
            default: value("300"),
            allowed: "seconds from 0.01 to 86400, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.01, 86400.0),
            help: "seconds to wait after code 12 (another login took Schwab's single streamer slot)",
        },
        /// How often a refused refresh (or denied login) is tried again.
        needs_login_retry: Duration = "NEEDS_LOGIN_RETRY" {
            default: value("1800"),
            allowed: "seconds from 0.01 to 86400, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.01, 86400.0),
            help: "seconds between retries of a refused token refresh (or of repeated LOGIN denials)",
        },
        /// How often the store is read for tokens of a new `login`.
        token_store_poll: Duration = "TOKEN_STORE_POLL" {
            default: value("10"),
            allowed: "seconds from 0.01 to 3600, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.01, 3600.0),
            help: "seconds between reads of the token store, so a new `login` is picked up without a restart",
        },
        /// Refill missed one-minute candles from REST `pricehistory` (live and simulated modes).
        backfill: bool = "BACKFILL" {
            default: value("on"),
            allowed: "on or off (also true/false, yes/no, 1/0)",
            parse: parse::on_off,
            help: "`on` refills the one-minute candles of `CHART_SYMBOLS` missed during a stream gap (and since the newest stored candle at startup) from REST `pricehistory` into `equity_bars`, marked `backfilled`; options and futures have no history and are skipped; `off` does not (never in `replay`)",
        },
    },
    /// The simulated market (`SCHWAB_MODE=simulated`).
    Simulator => simulator: SimulatorSettings {
        /// Mean LEVELONE updates per symbol per second.
        updates_per_symbol_per_sec: f64 = "SIM_UPDATES_PER_SEC" {
            default: value("1"),
            allowed: "a number above 0 and at most 1000",
            parse: parse::within(|v: f64| v > 0.0 && v <= 1000.0),
            help: "simulated market: mean updates per symbol per second",
        },
        /// Seed of the simulated market (same seed, same quotes).
        seed: u64 = "SIM_SEED" {
            default: value("42"),
            allowed: "a whole number from 0 to 18446744073709551615",
            parse: parse::within(|_: u64| true),
            help: "simulated market: random seed (same seed, same quotes)",
        },
    },
    /// Logs and the status line.
    Logging => logging: LoggingSettings {
        /// The log filter (tracing-subscriber syntax).
        rust_log: String = "RUST_LOG" {
            default: value("info"),
            allowed: "a level (error, warn, info, debug, trace) or target=level list",
            parse: parse::log_filter,
            help: "log filter, e.g. `debug` or `info,market_streamer::writer=trace`",
        },
        /// How often the one-line status is printed; zero turns it off.
        status_interval: Duration = "STATUS_INTERVAL" {
            default: value("5"),
            allowed: "0 (off), or seconds from 1 to 86400, fractions allowed (e.g. 2.5)",
            parse: parse::off_or_seconds(1.0, 86400.0),
            help: "seconds between status lines (at least 1); `0` turns them off",
        },
    },
    /// Bars, indicator periods and warm start.
    Indicators => indicators: IndicatorsSettings {
        /// Length of the time bars.
        bar_seconds: u32 = "BAR_SECONDS" {
            default: value("60"),
            allowed: "a whole number of seconds that divides 3600 (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, ...), so bars never straddle New York midnight",
            parse: parse::within(|v: u32| (1..=3600).contains(&v) && 3600 % v == 0),
            help: "length of the time bars indicators run on; must divide 3600 (1, 5, 15, 30, 60, 300, …)",
        },
        /// Bars of the simple moving average.
        sma_period: u32 = "SMA_PERIOD" {
            default: value("20"),
            allowed: "a whole number of bars from 2 to 1000",
            parse: parse::within(|v: u32| (2..=MAX_PERIOD).contains(&v)),
            help: "bars of the simple moving average (`sma`), 2–1000",
        },
        /// Bars of the fast EMA (shorter than the slow one).
        ema_fast_period: u32 = "EMA_FAST_PERIOD" {
            default: value("9"),
            allowed: "a whole number of bars from 2 to 1000",
            parse: parse::within(|v: u32| (2..=MAX_PERIOD).contains(&v)),
            help: "bars of the fast EMA (`ema_fast`), 2–1000, shorter than `EMA_SLOW_PERIOD`",
        },
        /// Bars of the slow EMA.
        ema_slow_period: u32 = "EMA_SLOW_PERIOD" {
            default: value("21"),
            allowed: "a whole number of bars from 2 to 1000",
            parse: parse::within(|v: u32| (2..=MAX_PERIOD).contains(&v)),
            help: "bars of the slow EMA (`ema_slow`), 2–1000",
        },
        /// Bars of Wilder's RSI.
        rsi_period: u32 = "RSI_PERIOD" {
            default: value("14"),
            allowed: "a whole number of bars from 2 to 1000",
            parse: parse::within(|v: u32| (2..=MAX_PERIOD).contains(&v)),
            help: "bars of Wilder's RSI (`rsi`), 2–1000",
        },
        /// Fast EMA of the MACD line (shorter than the slow one).
        macd_fast: u32 = "MACD_FAST" {
            default: value("12"),
            allowed: "a whole number of bars from 2 to 1000",
            parse: parse::within(|v: u32| (2..=MAX_PERIOD).contains(&v)),
            help: "fast EMA of the MACD line, 2–1000, shorter than `MACD_SLOW`",
        },
        /// Slow EMA of the MACD line.
        macd_slow: u32 = "MACD_SLOW" {
            default: value("26"),
            allowed: "a whole number of bars from 2 to 1000",
            parse: parse::within(|v: u32| (2..=MAX_PERIOD).contains(&v)),
            help: "slow EMA of the MACD line, 2–1000",
        },
        /// EMA of the MACD line giving the signal.
        macd_signal: u32 = "MACD_SIGNAL" {
            default: value("9"),
            allowed: "a whole number of bars from 1 to 1000",
            parse: parse::within(|v: u32| (1..=MAX_PERIOD).contains(&v)),
            help: "EMA of the MACD line giving `macd_signal`, 1–1000",
        },
        /// Bars of the Bollinger Bands.
        bb_period: u32 = "BB_PERIOD" {
            default: value("20"),
            allowed: "a whole number of bars from 2 to 1000",
            parse: parse::within(|v: u32| (2..=MAX_PERIOD).contains(&v)),
            help: "bars of the Bollinger Bands, 2–1000",
        },
        /// Bollinger band width in (population) standard deviations.
        bb_stddev: f64 = "BB_STDDEV" {
            default: value("2"),
            allowed: "a number of standard deviations above 0 and at most 10, e.g. 2 or 2.5",
            parse: parse::within(|v: f64| v.is_finite() && v > 0.0 && v <= 10.0),
            help: "band width in (population) standard deviations, above 0 and at most 10",
        },
        /// Bars per symbol rebuilt at startup; `None`: the indicators' default, which follows the periods (the indicators check the lower bound).
        warm_start_bars: Option<usize> = "WARM_START_BARS" {
            default: unset("40 × the longest of `RSI_PERIOD`, `EMA_*_PERIOD`, `MACD_SLOW + MACD_SIGNAL` (1400)"),
            allowed: "0 (no warm start) or a whole number of bars from the longest warm-up of the periods to 1000000",
            parse: parse::warm_start_bars,
            help: "bars per symbol rebuilt from `equity_data` (futures: `futures_data`) at startup; `0` turns warm start off; otherwise at least the longest warm-up",
        },
    },
    /// Supabase Realtime: how the front end is fed live updates.
    Realtime => realtime: RealtimeSettings {
        /// postgres_changes | broadcast | both | off.
        mode: RealtimeMode = "REALTIME_MODE" {
            default: value("broadcast"),
            allowed: "postgres_changes, broadcast, both, off",
            parse: parse::realtime_mode,
            help: "`broadcast`, `postgres_changes`, `both` or `off`: how the front end gets live updates (see [SCHEMA.md](SCHEMA.md#realtime-contract))",
        },
        /// The public Broadcast topic.
        topic: String = "REALTIME_TOPIC" {
            default: value("market:quotes"),
            allowed: "up to 200 characters without spaces, not \"realtime\" (e.g. market:quotes)",
            parse: parse::realtime_topic,
            help: "the public Broadcast topic",
        },
        /// The live cadence: at most one Broadcast message (and one `latest_quotes` change per
        /// ticker with postgres_changes) per this long, whatever the write cadence.
        interval: Duration = "REALTIME_INTERVAL" {
            default: value("1"),
            allowed: "seconds from 0.1 to 3600, fractions allowed (e.g. 0.5)",
            parse: parse::seconds(0.1, 3600.0),
            help: "seconds; the live cadence: at most one Broadcast message per interval with the newest quote of every ticker that changed (nothing while nothing changed), and with postgres_changes `latest_quotes` updated at most once per interval per ticker, whatever `BATCH_SIZE` / `BATCH_INTERVAL` are (see [SCHEMA.md](SCHEMA.md#message-budget))",
        },
        /// The Supabase plan the message budget is judged against.
        plan: RealtimePlan = "REALTIME_PLAN" {
            default: value("free"),
            allowed: "free, pro, pro_no_spend_cap, team, enterprise",
            parse: parse::realtime_plan,
            help: "your Supabase plan (`free`, `pro`, `pro_no_spend_cap`, `team`, `enterprise`): the Realtime quotas the message budget at startup and in `/health` is judged against, and the Broadcast payload limit (256 KB on Free, 3000 KB otherwise) above which a message is split",
        },
    },
    /// Retention, partitions and the database size budget.
    Retention => retention: RetentionSettings {
        /// Days of equity_data / option_data kept (whole UTC days).
        tick_retention_days: u32 = "TICK_RETENTION_DAYS" {
            default: value("7"),
            allowed: "whole days from 1 to 3650",
            parse: parse::within(|v: u32| (1..=3650).contains(&v)),
            help: "whole UTC days of `equity_data` / `option_data` kept",
        },
        /// Days of equity_bars kept.
        bar_retention_days: u32 = "BAR_RETENTION_DAYS" {
            default: value("365"),
            allowed: "whole days from 1 to 36500",
            parse: parse::within(|v: u32| (1..=36_500).contains(&v)),
            help: "days of `equity_bars` kept",
        },
        /// Daily partitions created ahead of today.
        partition_premake_days: u32 = "PARTITION_PREMAKE_DAYS" {
            default: value("3"),
            allowed: "whole days from 1 to 60",
            parse: parse::within(|v: u32| (1..=60).contains(&v)),
            help: "daily partitions created ahead (PostgreSQL)",
        },
        /// How often retention and size checks run.
        maintenance_interval: Duration = "MAINTENANCE_INTERVAL" {
            default: value("3600"),
            allowed: "seconds from 10 to 86400, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(10.0, 86400.0),
            help: "seconds between retention and size checks",
        },
        /// The database size to stay under (Supabase Free turns read-only past 500 MB).
        db_size_limit_mb: u64 = "DB_SIZE_LIMIT_MB" {
            default: value("500"),
            allowed: "megabytes from 50 to 100000000",
            parse: parse::within(|v: u64| (50..=100_000_000).contains(&v)),
            help: "database size to stay under (Supabase Free turns read-only past 500 MB)",
        },
        /// Warn when the database reaches this share of `db_size_limit_mb`.
        db_size_warn_percent: u8 = "DB_SIZE_WARN_PERCENT" {
            default: value("80"),
            allowed: "a whole percentage from 1 to 100",
            parse: parse::within(|v: u8| (1..=100).contains(&v)),
            help: "warn when the database reaches this share of the limit",
        },
        /// The size guard acts at this share of `db_size_limit_mb`.
        db_size_guard_percent: u8 = "DB_SIZE_GUARD_PERCENT" {
            default: value("90"),
            allowed: "a whole percentage from 2 to 100",
            parse: parse::within(|v: u8| (2..=100).contains(&v)),
            help: "at this share of `DB_SIZE_LIMIT_MB` the size guard removes the oldest data (tick partitions, then candles) until the database is below `DB_SIZE_GUARD_TARGET_PERCENT`, so Supabase Free never reaches its read-only limit",
        },
        /// The size guard removes data until the database is below this share.
        db_size_guard_target_percent: u8 = "DB_SIZE_GUARD_TARGET_PERCENT" {
            default: value("75"),
            allowed: "a whole percentage from 1 to 99, below DB_SIZE_GUARD_PERCENT",
            parse: parse::within(|v: u8| (1..=99).contains(&v)),
            help: "the share of `DB_SIZE_LIMIT_MB` the size guard brings the database down to",
        },
    },
    /// The `/health` and `/metrics` endpoint.
    Health => health: HealthSettings {
        /// Where `GET /health` and `GET /metrics` listen (`None`: `off`).
        addr: Option<SocketAddr> = "HEALTH_ADDR" {
            default: value("127.0.0.1:8080"),
            allowed: "IP:PORT such as 127.0.0.1:8080 (loopback, the default), 0.0.0.0:8080 (every interface, e.g. inside a container), [::1]:8080, or off",
            parse: parse::health_addr,
            help: "where the service answers `GET /health` and `GET /metrics` (see [Health endpoint and metrics](#health-endpoint-and-metrics)): `IP:PORT` (port `0` picks a free one, logged), `0.0.0.0:8080` inside a container, or `off`. Loopback by default: never public unless you say so",
        },
        /// Failing database writes turn `/health` from `degraded` into `down` after this long while rows wait.
        db_down_after: Duration = "HEALTH_DB_DOWN_AFTER" {
            default: value("120"),
            allowed: "seconds from 0 to 86400, fractions allowed (e.g. 0.25)",
            parse: parse::seconds(0.0, 86400.0),
            help: "seconds of failing database writes (while rows wait) after which `/health` says `down` instead of `degraded`",
        },
    },
}
