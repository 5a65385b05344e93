//! The judgement rules as pure functions of a snapshot and the market instant: every status
//! transition and the market-calendar cases (weekend, holiday, early close, pre-market).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::snapshot::{DatabaseFacts, SpoolFacts, StreamFacts, WriterFacts};
use super::*;
use crate::schwab::session::{SessionHealth, SessionState};
use crate::schwab::token_manager::{TokenState, TokenStatus};
use market_calendar::MarketStatus;

/// Wednesday 2025-01-08 10:00 New York: the regular session.
const OPEN: &str = "2025-01-08T15:00:00Z";
/// The same day 08:00 New York: pre-market.
const PRE_MARKET: &str = "2025-01-08T13:00:00Z";
/// Saturday 2025-01-11 10:00 New York.
const WEEKEND: &str = "2025-01-11T15:00:00Z";
/// Friday 2025-07-04 11:00 New York (EDT): Independence Day.
const HOLIDAY: &str = "2025-07-04T15:00:00Z";
/// Friday 2025-11-28 (day after Thanksgiving, closes 13:00 EST = 18:00 UTC): 12:30 and 13:30.
const EARLY_CLOSE_DAY_OPEN: &str = "2025-11-28T17:30:00Z";
const EARLY_CLOSE_DAY_AFTER: &str = "2025-11-28T18:30:00Z";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

fn rules() -> HealthRules {
    HealthRules {
        stall_timeout: Duration::from_secs(10),
        stall_after: Duration::from_secs(20),
        db_down_after: Duration::from_secs(120),
        refresh_warning: Duration::from_secs(24 * 3600),
        drop_window: Duration::from_secs(15 * 60),
        no_updates_after: Duration::from_secs(600),
    }
}

/// A service streaming and writing normally at `now`, up for an hour.
fn healthy(now: DateTime<Utc>) -> Snapshot {
    Snapshot {
        now,
        started_at: now - secs(3600),
        session: SessionHealth {
            state: SessionState::Streaming,
            since: now - secs(3000),
            detail: "streaming 3 subscription(s)".into(),
            connects: 1,
            sessions_streamed: 1,
            gaps: 0,
            last_close: None,
            reconnects: BTreeMap::new(),
            subscriptions: Vec::new(),
            silences: 0,
        },
        tokens: TokenStatus {
            state: TokenState::Valid,
            detail: "tokens valid".into(),
            access_expires_at: Some(now + secs(1200)),
            refresh_expires_at: Some(now + secs(5 * 86_400)),
            last_refresh_at: Some(now - secs(600)),
            generation: 3,
        },
        stream: StreamFacts {
            last_frame_at: Some(now - TimeDelta::milliseconds(300)),
            last_update_at: Some(now - TimeDelta::milliseconds(300)),
            frames: 1000,
            updates: 5000,
            malformed_frames: 0,
            items_refused: 0,
            ..StreamFacts::default()
        },
        writer: WriterFacts {
            last_commit_at: Some(now - secs(1)),
            last_commit_rows: 12,
            buffered_rows: 3,
            buffer_max_rows: 100_000,
            rows_written: 5000,
            ..WriterFacts::default()
        },
        database: DatabaseFacts {
            kind: "postgres",
            size_bytes: Some(100 * 1024 * 1024),
            measured_at: Some(now - secs(1800)),
            limit_bytes: 500 * 1024 * 1024,
            warn_percent: 80,
            budget: None,
        },
        spool: SpoolFacts {
            configured: true,
            usable: true,
            rows: 0,
            bytes: 0,
            max_bytes: 512 * 1024 * 1024,
        },
        realtime: RealtimeFacts::default(),
        backfill: Default::default(),
    }
}

fn judge_at(snap: &Snapshot) -> HealthReport {
    judge(snap, &MarketStatus::at(snap.now), &rules())
}

/// The status and the reasons joined, for assertions with a readable failure.
fn verdict(snap: &Snapshot) -> (Status, String) {
    let r = judge_at(snap);
    (r.status, r.reasons.join(" | "))
}

#[track_caller]
fn assert_verdict(snap: &Snapshot, status: Status, containing: &str) {
    let (got, reasons) = verdict(snap);
    assert_eq!(got, status, "{reasons}");
    assert!(
        reasons.contains(containing),
        "expected a reason containing {containing:?}: {reasons}"
    );
}

#[test]
fn a_streaming_writing_service_is_ok_whatever_the_market_does() {
    for now in [OPEN, PRE_MARKET, WEEKEND, HOLIDAY, EARLY_CLOSE_DAY_AFTER] {
        let r = judge_at(&healthy(at(now)));
        assert_eq!(r.status, Status::Ok, "{now}: {:?}", r.reasons);
        assert!(r.reasons.is_empty());
        assert_eq!(r.status.http_code(), 200);
    }
}

#[test]
fn a_silent_stream_is_down_only_during_the_regular_session() {
    let silent = |now: &str| {
        let mut s = healthy(at(now));
        s.stream.last_frame_at = Some(s.now - secs(25));
        s.stream.last_update_at = Some(s.now - secs(25));
        s.session.state = SessionState::Streaming;
        s
    };
    let open = silent(OPEN);
    assert_verdict(&open, Status::Down, "no frame from Schwab for 25.0 s");
    assert_eq!(judge_at(&open).status.http_code(), 503);
    assert_verdict(
        &silent(EARLY_CLOSE_DAY_OPEN),
        Status::Down,
        "during the regular session",
    );
    for quiet in [PRE_MARKET, WEEKEND, HOLIDAY, EARLY_CLOSE_DAY_AFTER] {
        let (status, reasons) = verdict(&silent(quiet));
        assert_eq!(
            status,
            Status::Ok,
            "{quiet}: silence is no error: {reasons}"
        );
    }
    // Between STALL_TIMEOUT and twice that: degraded.
    let mut s = healthy(at(OPEN));
    s.stream.last_frame_at = Some(s.now - secs(15));
    assert_verdict(&s, Status::Degraded, "no frame from Schwab for 15.0 s");
}

#[test]
fn no_frame_since_the_start_counts_from_the_start() {
    let mut s = healthy(at(OPEN));
    s.started_at = s.now - secs(5);
    s.stream.last_frame_at = None;
    s.stream.last_update_at = None;
    s.session.state = SessionState::Connecting;
    assert_verdict(&s, Status::Degraded, "stream logging_in");
    s.started_at = s.now - secs(60);
    assert_verdict(
        &s,
        Status::Down,
        "no frame from Schwab since the start, 1 min",
    );
    s.now = at(WEEKEND);
    s.started_at = s.now - secs(60);
    assert_verdict(&s, Status::Degraded, "stream logging_in");
}

#[test]
fn needs_login_is_down_while_open_and_degraded_before_the_next_open() {
    let needs = |now: &str| {
        let mut s = healthy(at(now));
        s.session.state = SessionState::NeedsLogin;
        s.session.detail = "Schwab refused the token refresh".into();
        s.tokens.state = TokenState::NeedsLogin;
        s.stream.last_frame_at = Some(s.now - secs(3600));
        s
    };
    let (status, reasons) = verdict(&needs(OPEN));
    assert_eq!(status, Status::Down, "{reasons}");
    assert!(reasons.contains("run `market-streamer login`"), "{reasons}");
    assert!(
        !reasons.contains("no frame"),
        "one reason for one cause: {reasons}"
    );
    assert_verdict(
        &needs(PRE_MARKET),
        Status::Degraded,
        "a browser login is needed before the next open (2025-01-08T14:30:00Z)",
    );
    assert_verdict(
        &needs(WEEKEND),
        Status::Degraded,
        "before the next open (2025-01-13T14:30:00Z)",
    );
    // The tokens need a login while the current connection still streams.
    let mut s = healthy(at(OPEN));
    s.tokens.state = TokenState::NeedsLogin;
    s.tokens.detail = "refused; run `market-streamer login`".into();
    assert_verdict(
        &s,
        Status::Degraded,
        "the stream keeps going until its connection ends",
    );
}

#[test]
fn kicked_and_backing_off_are_degraded() {
    let mut s = healthy(at(WEEKEND));
    s.session.state = SessionState::Kicked;
    s.session.detail = "code 12: another login took the single streamer connection".into();
    assert_verdict(&s, Status::Degraded, "kicked by another login (code 12)");
    assert_eq!(judge_at(&s).stream.state, "kicked");
    s.session.state = SessionState::Reconnecting;
    s.session.detail = "network error; reconnecting in 2s".into();
    assert_verdict(
        &s,
        Status::Degraded,
        "stream backing off before reconnecting",
    );
    assert_eq!(judge_at(&s).stream.state, "backing_off");
    // While open, a fresh frame keeps it degraded; a long wait turns it down.
    s.now = at(OPEN);
    s.stream.last_frame_at = Some(s.now - secs(2));
    assert_eq!(verdict(&s).0, Status::Degraded);
    s.stream.last_frame_at = Some(s.now - secs(300));
    assert_verdict(&s, Status::Down, "no frame from Schwab for 5 min");
}

#[test]
fn failing_writes_are_degraded_then_down_while_rows_wait() {
    let mut s = healthy(at(WEEKEND));
    s.writer.failing_since = Some(s.now - secs(30));
    s.writer.buffered_rows = 40;
    s.spool.rows = 960;
    assert_verdict(
        &s,
        Status::Degraded,
        "database writes failing for 30.0 s, retrying; 1000 row(s) waiting (40 in memory, 960 in the disk spool)",
    );
    let r = judge_at(&s);
    assert!(r.database.writes_failing);
    assert_eq!(r.writer.unwritten_rows, 1000);
    assert!(
        !r.reasons.iter().any(|x| x.contains("being written")),
        "the spool is part of the outage reason: {:?}",
        r.reasons
    );
    s.writer.failing_since = Some(s.now - secs(150));
    assert_verdict(&s, Status::Down, "down after HEALTH_DB_DOWN_AFTER (2 min)");
    // Nothing waiting (e.g. the market is closed and nothing streams): not down.
    s.writer.buffered_rows = 0;
    s.spool.rows = 0;
    assert_eq!(verdict(&s).0, Status::Degraded);
    // Writes work again: ok.
    s.writer.failing_since = None;
    assert_eq!(verdict(&s).0, Status::Ok);
}

#[test]
fn a_permanently_failed_writer_is_down() {
    let mut s = healthy(at(WEEKEND));
    s.writer.failed = true;
    assert_verdict(&s, Status::Down, "the database writer stopped");
}

#[test]
fn storage_problems_are_degraded() {
    let mut s = healthy(at(OPEN));
    s.database.size_bytes = Some(420 * 1024 * 1024);
    assert_verdict(
        &s,
        Status::Degraded,
        "database size 420 MB is at least DB_SIZE_WARN_PERCENT (80%) of DB_SIZE_LIMIT_MB (500 MB)",
    );
    let r = judge_at(&s);
    assert!(r.database.near_limit);
    assert_eq!(r.database.used_percent, Some(84.0));

    let mut s = healthy(at(OPEN));
    s.writer.rows_dropped = 77;
    s.writer.last_drop_at = Some(s.now - secs(60));
    assert_verdict(
        &s,
        Status::Degraded,
        "77 row(s) dropped in all, the last 1 min ago",
    );
    s.writer.last_drop_at = Some(s.now - secs(3600));
    assert_eq!(verdict(&s).0, Status::Ok, "old drops are history");

    let mut s = healthy(at(OPEN));
    s.spool.rows = 500;
    assert_verdict(&s, Status::Degraded, "500 row(s) in the disk spool");
    s.spool.rows = 0;
    s.spool.usable = false;
    assert_verdict(
        &s,
        Status::Degraded,
        "the disk spool (SPOOL_DIR) cannot be used",
    );
    s.spool.configured = false;
    assert_eq!(verdict(&s).0, Status::Ok, "SPOOL_DIR=off is a choice");

    let mut s = healthy(at(OPEN));
    s.writer.buffered_rows = 60_000;
    assert_verdict(&s, Status::Degraded, "write buffer 60% full");
}

#[test]
fn tokens_near_their_end_or_failing_to_refresh_are_degraded() {
    let mut s = healthy(at(OPEN));
    s.tokens.state = TokenState::ExpiringSoon;
    s.tokens.refresh_expires_at = Some(s.now + secs(12 * 3600));
    assert_verdict(
        &s,
        Status::Degraded,
        "the refresh token ends in 12 h (2025-01-09T03:00:00Z): run `market-streamer login`",
    );
    let r = judge_at(&s);
    assert_eq!(r.tokens.state, "expiring_soon");
    assert_eq!(r.tokens.refresh_expires_in_secs, Some(43_200.0));
    assert_eq!(r.tokens.access_expires_in_secs, Some(1200.0));

    let mut s = healthy(at(OPEN));
    s.tokens.state = TokenState::RefreshFailing;
    s.tokens.detail = "token endpoint answered 503".into();
    assert_verdict(
        &s,
        Status::Degraded,
        "token refresh failing, retrying: token endpoint answered 503",
    );

    let mut s = healthy(at(OPEN));
    s.tokens.access_expires_at = Some(s.now - secs(90));
    assert_verdict(
        &s,
        Status::Degraded,
        "the access token expired 1 min 30 s ago",
    );
}

#[test]
fn no_market_data_for_ten_minutes_of_open_market_is_degraded() {
    let mut s = healthy(at(OPEN)); // 30 minutes after the open
    s.stream.last_update_at = Some(s.now - secs(700));
    assert_verdict(&s, Status::Degraded, "no market data for 11 min 40 s");
    // Five minutes after the open, yesterday's last update is no alarm yet.
    let mut s = healthy(at("2025-01-08T14:35:00Z"));
    s.stream.last_update_at = Some(at("2025-01-07T21:00:00Z"));
    assert_eq!(verdict(&s).0, Status::Ok);
    // Closed market: never.
    let mut s = healthy(at(WEEKEND));
    s.stream.last_update_at = Some(s.now - secs(86_400));
    assert_eq!(verdict(&s).0, Status::Ok);
}

#[test]
fn down_reasons_come_first_and_several_problems_are_all_listed() {
    let mut s = healthy(at(OPEN));
    s.database.size_bytes = Some(450 * 1024 * 1024);
    s.writer.failed = true;
    let r = judge_at(&s);
    assert_eq!(r.status, Status::Down);
    assert_eq!(r.reasons.len(), 2, "{:?}", r.reasons);
    assert!(r.reasons[0].contains("writer stopped"), "{:?}", r.reasons);
    assert!(r.reasons[1].contains("database size"), "{:?}", r.reasons);
}

#[test]
fn the_json_has_the_fields_health_check_reads() {
    let mut s = healthy(at(OPEN));
    s.session.reconnects.insert("stall", 2);
    let json = serde_json::to_value(judge_at(&s)).expect("serialize");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["reasons"], serde_json::json!([]));
    assert_eq!(json["stream"]["state"], "connected");
    assert_eq!(json["stream"]["session_state"], "streaming");
    assert_eq!(json["stream"]["last_frame_age_secs"], 0.3);
    assert_eq!(json["writer"]["last_commit_age_secs"], 1.0);
    assert_eq!(json["writer"]["buffered_rows"], 3);
    assert_eq!(json["market"]["open"], true);
    assert_eq!(json["market"]["phase"], "regular");
    assert_eq!(
        json["market"]["summary"],
        "market open, regular session until 16:00 ET"
    );
    assert_eq!(json["tokens"]["state"], "valid");
    assert_eq!(json["database"]["size_bytes"], 100 * 1024 * 1024);
    assert_eq!(json["database"]["limit_bytes"], 500 * 1024 * 1024);
    assert_eq!(json["database"]["near_limit"], false);
    assert_eq!(json["spool"]["rows"], 0);
    assert_eq!(json["service"]["uptime_secs"], 3600.0);
    // Before anything happened: ages are null, not zero.
    let mut s = healthy(at(OPEN));
    s.stream.last_frame_at = None;
    s.writer.last_commit_at = None;
    s.database.size_bytes = None;
    let json = serde_json::to_value(judge_at(&s)).expect("serialize");
    assert!(json["stream"]["last_frame_age_secs"].is_null());
    assert!(json["writer"]["last_commit_age_secs"].is_null());
    assert!(json["database"]["used_percent"].is_null());
}

#[test]
fn a_fixed_market_clock_only_moves_the_calendar() {
    let now = at(WEEKEND);
    assert_eq!(MarketClock::Wall.market_now(now), now);
    assert_eq!(MarketClock::Fixed(at(OPEN)).market_now(now), at(OPEN));
    let mut s = healthy(now);
    s.stream.last_frame_at = Some(now - secs(60));
    let weekend = judge(&s, &MarketStatus::at(now), &rules());
    let pinned = judge(&s, &MarketStatus::at(at(OPEN)), &rules());
    assert_eq!(weekend.status, Status::Ok);
    assert_eq!(pinned.status, Status::Down);
    assert_eq!(pinned.stream.last_frame_age_secs, Some(60.0));
}

#[test]
fn durations_read_naturally() {
    assert_eq!(judge::human(Duration::from_millis(400)), "0.4 s");
    assert_eq!(judge::human(Duration::from_secs(185)), "3 min 5 s");
    assert_eq!(judge::human(Duration::from_secs(7200)), "2 h");
    assert_eq!(judge::human(Duration::from_secs(90_000)), "1 d 1 h");
}

#[test]
fn metrics_render_the_mirrored_counters_the_histograms_and_the_reasons() {
    use std::sync::atomic::Ordering::Relaxed;

    use crate::counters::PipelineStats;

    let metrics = metrics::Metrics::new();
    let stats = PipelineStats {
        histograms: metrics.write_histograms(),
        ..PipelineStats::default()
    };
    use crate::rows::Table;
    use crate::schwab::wire::Service;
    stats.service_frames[Service::LevelOneEquities.index()].store(40, Relaxed);
    stats.service_frames[Service::LevelOneFutures.index()].store(5, Relaxed);
    stats.other_frames.store(7, Relaxed);
    stats.service_updates[Service::LevelOneEquities.index()].store(120, Relaxed);
    stats.service_updates[Service::AcctActivity.index()].store(3, Relaxed);
    stats.rows_written_by_table[Table::OptionData.index()].store(9, Relaxed);
    stats.rows_written_by_table[Table::BookSnapshots.index()].store(4, Relaxed);
    stats.malformed_frames.store(2, Relaxed);
    stats.histograms.flush_seconds.record(0.004);
    stats.histograms.flush_rows.record(12.0);
    stats.histograms.tick_to_commit_seconds.record_many(0.2, 12);
    let mut snap = healthy(at(OPEN));
    snap.session.reconnects.insert("network_error", 3);
    snap.writer.buffered_rows = 17;
    let verdict = judge_at(&snap);
    let text = metrics.render(&stats, &snap, &verdict);
    for line in [
        "market_streamer_frames_total{service=\"LEVELONE_EQUITIES\"} 40",
        "market_streamer_frames_total{service=\"other\"} 7",
        "market_streamer_updates_total{service=\"LEVELONE_EQUITIES\"} 120",
        "market_streamer_updates_total{service=\"CHART_EQUITY\"} 0",
        "market_streamer_rows_written_total{table=\"option_data\"} 9",
        "market_streamer_rows_written_total{table=\"book_snapshots\"} 4",
        "market_streamer_rows_written_total{table=\"account_activity\"} 0",
        "market_streamer_frames_total{service=\"LEVELONE_FUTURES\"} 5",
        "market_streamer_updates_total{service=\"ACCT_ACTIVITY\"} 3",
        "market_streamer_malformed_frames_total 2",
        "market_streamer_reconnects_total{reason=\"network_error\"} 3",
        "market_streamer_buffered_rows 17",
        "market_streamer_access_token_seconds_left 1200",
        "market_streamer_refresh_token_seconds_left 432000",
        "market_streamer_health_status 0",
        "market_streamer_market_open 1",
        "market_streamer_stream_connected 1",
        "market_streamer_flush_duration_seconds_bucket{le=\"0.005\"} 1",
        "market_streamer_flush_duration_seconds_count 1",
        "market_streamer_flush_rows_bucket{le=\"25\"} 1",
        "market_streamer_tick_to_commit_seconds_bucket{le=\"0.25\"} 12",
        "market_streamer_tick_to_commit_seconds_bucket{le=\"0.1\"} 0",
        "market_streamer_tick_to_commit_seconds_count 12",
        "# TYPE market_streamer_tick_to_commit_seconds histogram",
        "# TYPE market_streamer_frames_total counter",
        "# TYPE market_streamer_buffered_rows gauge",
        "# HELP market_streamer_rows_written_total Rows committed, by table",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    // A second scrape shows the same counters (mirrored, not added).
    let again = metrics.render(&stats, &snap, &verdict);
    assert!(again.contains("market_streamer_frames_total{service=\"LEVELONE_EQUITIES\"} 40\n"));
    assert!(again.contains("market_streamer_tick_to_commit_seconds_count 12\n"));
}

#[test]
fn a_retention_that_does_not_fit_is_degraded_with_the_numbers() {
    let mut snap = healthy(at(OPEN));
    snap.database.budget = Some(crate::storage_budget::StorageBudget {
        bytes_per_row: 210,
        rows_per_day: 400_000,
        days_that_fit: Some(4.8),
        retention_days: 7,
        fits: false,
    });
    assert_verdict(
        &snap,
        Status::Degraded,
        "TICK_RETENTION_DAYS (7) does not fit",
    );
    assert_verdict(&snap, Status::Degraded, "4.8 days fit");
}

mod subscription_rules {
    //! The per-subscription rules (issue 19): refused, unanswered, silent, none active.

    use super::*;
    use crate::schwab::session::subscriptions::{SubState, SubscriptionStatus};
    use crate::schwab::wire::Service;

    fn sub(
        service: Service,
        state: SubState,
        last_data: Option<DateTime<Utc>>,
    ) -> SubscriptionStatus {
        SubscriptionStatus {
            service,
            keys: 2,
            state,
            since: at(OPEN) - secs(600),
            last_data,
            silence_limit: Some(Duration::from_secs(60)),
        }
    }

    fn with(subs: Vec<SubscriptionStatus>) -> HealthReport {
        let mut snap = healthy(at(OPEN));
        snap.session.subscriptions = subs;
        judge_at(&snap)
    }

    #[test]
    fn a_refused_service_is_named_with_its_code_and_what_to_do() {
        let r = with(vec![
            sub(Service::LevelOneEquities, SubState::Active, Some(at(OPEN))),
            sub(
                Service::LevelOneOptions,
                SubState::Refused {
                    code: 19,
                    message: "Reached symbol limit".into(),
                },
                None,
            ),
        ]);
        assert_eq!(r.status, Status::Degraded, "{:?}", r.reasons);
        let text = r.reasons.join(" | ");
        assert!(
            text.contains("LEVELONE_OPTIONS subscription refused by Schwab (code 19"),
            "{text}"
        );
        assert!(text.contains("2 key(s)") && text.contains(".env"), "{text}");
        assert_eq!(r.stream.subscriptions[1].state, "refused");
        assert_eq!(r.stream.subscriptions[1].code, Some(19));
    }

    #[test]
    fn nothing_active_is_down() {
        let r = with(vec![
            sub(
                Service::LevelOneEquities,
                SubState::Refused {
                    code: 21,
                    message: "bad".into(),
                },
                None,
            ),
            sub(
                Service::ChartEquity,
                SubState::Unanswered { attempts: 3 },
                None,
            ),
        ]);
        assert_eq!(r.status, Status::Down, "{:?}", r.reasons);
        assert!(
            r.reasons
                .iter()
                .any(|x| x.contains("no subscription is active"))
        );
    }

    #[test]
    fn one_silent_service_degrades_and_a_long_or_total_silence_is_down() {
        let quiet = at(OPEN) - secs(70);
        let r = with(vec![
            sub(Service::LevelOneEquities, SubState::Active, Some(at(OPEN))),
            sub(Service::LevelOneOptions, SubState::Silent, Some(quiet)),
        ]);
        assert_eq!(r.status, Status::Degraded, "{:?}", r.reasons);
        // Older than its limit (60 s) plus 2 × STALL_TIMEOUT (20 s): down.
        let r = with(vec![
            sub(Service::LevelOneEquities, SubState::Active, Some(at(OPEN))),
            sub(
                Service::LevelOneOptions,
                SubState::Silent,
                Some(at(OPEN) - secs(81)),
            ),
        ]);
        assert_eq!(r.status, Status::Down, "{:?}", r.reasons);
        // Every service that should deliver is silent (heartbeats may still come): down.
        let r = with(vec![
            sub(Service::LevelOneEquities, SubState::Silent, Some(quiet)),
            sub(Service::LevelOneOptions, SubState::Silent, Some(quiet)),
        ]);
        assert_eq!(r.status, Status::Down, "{:?}", r.reasons);
        assert!(r.reasons.iter().any(|x| x.contains("are silent")));
    }
}
