//! The token store and lifecycle: expiry warnings, one refresher at a time (file lock and
//! PostgreSQL advisory lock), the database store handing tokens over, and its privileges.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use market_streamer::schwab::rest::SchwabRest;
use market_streamer::schwab::token_manager::{
    TokenHandle, TokenState, TokenStatus, Want, spawn_token_manager,
};
use market_streamer::schwab::tokens::TokenSet;
use market_streamer::settings::Config;
use schwab_sim::server::SimServer;
use testkit::service::{config_from, fast_sim, live_vars, login, start_sim};
use testkit::start_postgres;
use tokio::sync::watch;

async fn manager(cfg: &Config) -> (TokenHandle, watch::Receiver<TokenStatus>) {
    let store = market_streamer::app::open_token_store(cfg)
        .await
        .expect("store");
    let rest = Arc::new(SchwabRest::new(market_streamer::settings::rest(cfg)).expect("rest"));
    let app = market_streamer::settings::oauth_app(cfg).expect("app");
    let (tx, rx) = watch::channel(TokenStatus::starting());
    let (handle, _task) =
        spawn_token_manager(store, rest, app, market_streamer::settings::tokens(cfg), tx);
    (handle, rx)
}

async fn wait_state(rx: &mut watch::Receiver<TokenStatus>, state: TokenState) -> TokenStatus {
    let found = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| s.state == state))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|s| s.clone());
    found.unwrap_or_else(|| panic!("no {state:?}: {:?}", *rx.borrow()))
}

/// Rewrites the stored tokens as if the browser login happened `age` ago.
async fn age_login(cfg: &Config, age: chrono::Duration) {
    let store = market_streamer::app::open_token_store(cfg)
        .await
        .expect("store");
    let id = cfg.schwab.client_id.clone().expect("id");
    let mut t: TokenSet = store.load(&id).await.expect("load").expect("tokens");
    t.refresh_issued_at = Utc::now() - age;
    store.save(&t).await.expect("save");
    store.close().await;
}

async fn file_setup(sim: &SimServer) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let cfg = config_from(&live_vars(sim, dir.path(), &url, &[]));
    (dir, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_24_hours_before_the_refresh_token_ends_and_needs_login_after_7_days() {
    let sim = start_sim(fast_sim()).await;
    let (_dir, cfg) = file_setup(&sim).await;

    login(&cfg, &sim).await;
    let (_h, mut status) = manager(&cfg).await;
    let s = wait_state(&mut status, TokenState::Valid).await;
    let remaining = s.refresh_expires_at.expect("expiry") - Utc::now();
    assert!(
        remaining > chrono::Duration::days(6),
        "7 days from the login: {remaining}"
    );

    login(&cfg, &sim).await;
    age_login(&cfg, chrono::Duration::days(6) + chrono::Duration::hours(1)).await;
    let (_h, mut status) = manager(&cfg).await;
    let s = wait_state(&mut status, TokenState::ExpiringSoon).await;
    assert!(s.detail.contains("market-streamer login"), "{}", s.detail);

    login(&cfg, &sim).await;
    age_login(
        &cfg,
        chrono::Duration::days(7) + chrono::Duration::minutes(1),
    )
    .await;
    let (h, mut status) = manager(&cfg).await;
    let s = wait_state(&mut status, TokenState::NeedsLogin).await;
    assert!(s.detail.contains("7 days"), "{}", s.detail);
    // The process keeps running; a token whose refresh Schwab still accepts is used.
    assert!(h.access(Want::Valid).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshing_never_moves_the_login_time() {
    let sim = start_sim(fast_sim()).await;
    let (_dir, cfg) = file_setup(&sim).await;
    let first = login(&cfg, &sim).await;
    let (h, _status) = manager(&cfg).await;
    let t1 = h.access(Want::Fresh).await.expect("fresh");
    let t2 = h.access(Want::Fresh).await.expect("fresh again");
    assert!(t2.generation > t1.generation);
    assert_ne!(t1.token, t2.token);
    let store = market_streamer::app::open_token_store(&cfg)
        .await
        .expect("store");
    let stored = store
        .load(sim.client_id())
        .await
        .expect("load")
        .expect("tokens");
    assert_eq!(
        stored.access_token, t2.token,
        "the refreshed token is stored"
    );
    assert_eq!(
        stored.refresh_issued_at, first.refresh_issued_at,
        "refreshing does not extend the 7 days"
    );
    // Asking for a token newer than a rejected old one gives the current one without a refresh.
    let grants = sim.token_grants().len();
    let t3 = h
        .access(Want::NewerThan(t1.generation))
        .await
        .expect("newer");
    assert_eq!(t3.token, t2.token);
    assert_eq!(sim.token_grants().len(), grants, "no extra refresh");
}

/// Two token tasks sharing one store, both asked for a fresh token at once: one refresh
/// happens, the other task takes the refreshed token from the store.
async fn one_refresher_at_a_time(cfg: &Config, sim: &SimServer) {
    login(cfg, sim).await;
    let (a, _sa) = manager(cfg).await;
    let (b, _sb) = manager(cfg).await;
    a.access(Want::Valid).await.expect("a ready");
    b.access(Want::Valid).await.expect("b ready");
    let before = sim
        .token_grants()
        .iter()
        .filter(|g| g.grant_type == "refresh_token")
        .count();
    let (ta, tb) = tokio::join!(a.access(Want::Fresh), b.access(Want::Fresh));
    let (ta, tb) = (ta.expect("a"), tb.expect("b"));
    let after = sim
        .token_grants()
        .iter()
        .filter(|g| g.grant_type == "refresh_token")
        .count();
    assert_eq!(
        after - before,
        1,
        "exactly one refresh for two concurrent requests"
    );
    assert_eq!(ta.token, tb.token, "both use the one refreshed token");
    assert!(sim.is_access_token_valid(ta.token.expose()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresher_at_a_time_with_the_token_file() {
    let sim = start_sim(fast_sim()).await;
    let (_dir, cfg) = file_setup(&sim).await;
    one_refresher_at_a_time(&cfg, &sim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_token_store_locks_refreshes_hands_tokens_over_and_grants_nothing_to_api_roles() {
    let pg = start_postgres();
    let url = pg.create_database("tokens").expect("db");
    // Supabase's API roles, as on a Supabase project (plain PostgreSQL has none).
    pg.psql("tokens", "CREATE ROLE anon NOLOGIN; CREATE ROLE authenticated NOLOGIN; CREATE ROLE service_role NOLOGIN; GRANT ALL ON SCHEMA public TO anon, authenticated, service_role; ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;")
        .expect("roles");
    let sim = start_sim(fast_sim()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_from(&live_vars(
        &sim,
        dir.path(),
        &url,
        &[("TOKEN_STORE", "database")],
    ));

    one_refresher_at_a_time(&cfg, &sim).await;
    assert!(
        !dir.path().join("tokens.json").exists(),
        "nothing written to a file"
    );
    let row = pg
        .psql(
            "tokens",
            "SELECT count(*), bool_and(access_expires_at > now()) FROM schwab_tokens",
        )
        .expect("row");
    assert_eq!(row, "1|t");
    let privileges = pg
        .psql(
            "tokens",
            "SELECT r, has_table_privilege(r, 'schwab_tokens', 'SELECT'), has_table_privilege(r, 'schwab_tokens', 'UPDATE') FROM unnest(ARRAY['anon','authenticated','service_role']) AS r",
        )
        .expect("privileges");
    assert_eq!(privileges, "anon|f|f\nauthenticated|f|f\nservice_role|f|f");
    assert_eq!(
        pg.psql(
            "tokens",
            "SELECT relrowsecurity FROM pg_class WHERE relname = 'schwab_tokens'"
        )
        .expect("rls"),
        "t"
    );

    // The advisory lock: while one holder has it, another waits.
    let store_a = market_streamer::app::open_token_store(&cfg)
        .await
        .expect("a");
    let store_b = market_streamer::app::open_token_store(&cfg)
        .await
        .expect("b");
    let id = sim.client_id().to_string();
    let held = store_a.lock(&id).await.expect("lock");
    let waiter = tokio::spawn(async move {
        let lock = store_b.lock(&id).await?;
        lock.release().await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiter.is_finished(),
        "the second lock waits while the first is held"
    );
    held.release().await.expect("release");
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("free after release")
        .expect("task")
        .expect("locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_works_on_plain_postgres_without_supabase_roles() {
    let pg = start_postgres();
    let url = pg.create_database("plain").expect("db");
    let db = market_streamer::db::Database::connect(&market_streamer::settings::database(
        &testkit::config_for(&url, &[]),
    ))
    .await
    .expect("connect");
    db.migrate()
        .await
        .expect("migrate without anon/authenticated/service_role");
    assert_eq!(
        pg.psql("plain", "SELECT count(*) FROM stream_gaps")
            .expect("table"),
        "0"
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_into_the_database_store_reaches_a_running_service_without_a_restart() {
    let pg = start_postgres();
    let url = pg.create_database("handover").expect("db");
    let sim = start_sim(fast_sim()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = live_vars(&sim, dir.path(), &url, &[("TOKEN_STORE", "database")]);
    let cfg = config_from(&vars);

    // The service starts before any login: it waits in needs_login.
    let (health_tx, mut health) =
        watch::channel(market_streamer::schwab::session::SessionHealth::starting());
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run_cfg = cfg.clone();
    let task = tokio::spawn(async move {
        market_streamer::app::run(
            &run_cfg,
            market_streamer::app::RunOptions {
                health: Some(health_tx),
                ..Default::default()
            },
            async move {
                let _ = stop_rx.await;
            },
        )
        .await
    });
    use market_streamer::schwab::session::SessionState;
    tokio::time::timeout(
        Duration::from_secs(30),
        health.wait_for(|h| h.state == SessionState::NeedsLogin),
    )
    .await
    .expect("needs_login")
    .expect("health");

    // "On the laptop": a login with the same settings writes the row.
    login(&cfg, &sim).await;
    tokio::time::timeout(
        Duration::from_secs(30),
        health.wait_for(|h| h.state == SessionState::Streaming),
    )
    .await
    .expect("streaming")
    .expect("health");
    let _ = stop.send(());
    task.await.expect("task").expect("run");
    let gaps = pg
        .psql("handover", "SELECT count(*) FROM stream_gaps")
        .expect("gaps");
    assert_eq!(gaps, "0", "no gap before the first session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_calls_are_rate_limited_below_120_per_minute() {
    let sim = start_sim(fast_sim()).await;
    let (_dir, cfg) = file_setup(&sim).await;
    let rest = SchwabRest::new(market_streamer::settings::rest(&cfg)).expect("rest");
    let token = market_streamer::schwab::Secret::new("not-a-token");
    let started = std::time::Instant::now();
    for _ in 0..13 {
        let r = market_streamer::schwab::preferences::fetch_streamer_info(&rest, &token).await;
        assert!(matches!(
            r,
            Err(market_streamer::schwab::preferences::PreferenceError::Unauthorized { .. })
        ));
    }
    // A burst of 10, then one call per 0.6 s (100 per minute).
    assert!(
        started.elapsed() >= Duration::from_millis(1700),
        "{:?}",
        started.elapsed()
    );
}
