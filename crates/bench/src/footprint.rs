//! Footprint: the real binary running the zero-configuration path (`SCHWAB_MODE=simulated`)
//! with many symbols at a high update rate into a throwaway PostgreSQL database: peak RSS
//! (`VmHWM`), CPU, committed rows/s, time from process start to the first committed row,
//! and the binary's size.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::TestPostgres;

use super::pg::Conn;
use super::{BenchError, load_average};

/// How long the first committed row may take before the run is declared failed.
const FIRST_ROW_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the service may take to drain and exit after SIGINT.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the footprint run measured.
#[derive(Debug, Clone)]
pub struct FootprintResult {
    /// The executable measured.
    pub binary: PathBuf,
    /// Its size on disk.
    pub binary_bytes: u64,
    /// `SYMBOLS` streamed.
    pub symbols: usize,
    /// `SIM_UPDATES_PER_SEC`.
    pub sim_updates_per_symbol_per_sec: f64,
    /// The steady-state window after the first committed row.
    pub window: Duration,
    /// From spawning the process to the first row visible in `equity_data`.
    pub time_to_first_row: Duration,
    /// Peak resident set (VmHWM) over the whole life of the process, in bytes.
    pub peak_rss_bytes: u64,
    /// Equity rows committed per second during the window.
    pub committed_per_sec: f64,
    /// CPU time of the process during the window, as a share of one core.
    pub cpu_share: f64,
    /// Whether it drained and exited with status 0 after SIGINT.
    pub exit_ok: bool,
    /// 1-minute load average before and after.
    pub load: (f64, f64),
}

/// Kills the child if the run stops early.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `binary run` for `window` after its first committed row.
// SAFETY: the only unsafe call is libc::kill(pid, SIGINT) on the child started here.
#[allow(unsafe_code)]
pub async fn run(
    pg: &TestPostgres,
    binary: &Path,
    symbols: &[String],
    per_symbol_per_sec: f64,
    window: Duration,
    work_dir: &Path,
) -> Result<FootprintResult, BenchError> {
    let load_before = load_average();
    let binary_bytes = std::fs::metadata(binary)
        .map_err(|e| BenchError::io(format!("cannot read {}", binary.display()), e))?
        .len();
    let url = pg.create_database("footprint")?;
    let dir = work_dir.join("footprint");
    std::fs::create_dir_all(&dir)
        .map_err(|e| BenchError::io(format!("cannot create {}", dir.display()), e))?;
    let log_path = dir.join("service.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| BenchError::io(format!("cannot create {}", log_path.display()), e))?;
    let mut cmd = Command::new(binary);
    cmd.arg("run")
        // Its own folder: no `.env` of the caller is read, the spool lands here.
        .current_dir(&dir)
        .env_clear()
        .envs(
            ["PATH", "HOME", "TMPDIR"]
                .iter()
                .filter_map(|k| Some((*k, std::env::var_os(k)?))),
        )
        .env("DATABASE_URL", &url)
        .env("SCHWAB_MODE", "simulated")
        .env("SYMBOLS", symbols.join(","))
        .env("SIM_UPDATES_PER_SEC", per_symbol_per_sec.to_string())
        .env("SPOOL_DIR", dir.join("spool"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);

    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| BenchError::io(format!("cannot start {}", binary.display()), e))?;
    let mut guard = ChildGuard(Some(child));
    let pid = guard.0.as_ref().map_or(0, Child::id);
    let mut peak = 0u64;
    let fail = |what: String| {
        let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        BenchError::Footprint(format!(
            "{what}; last lines of its log:\n{}",
            tail.join("\n")
        ))
    };

    // Time to the first committed row: poll the database.
    let conn = Conn::open(&url, "the footprint database").await?;
    let time_to_first_row = loop {
        // Until the service has migrated, the table does not exist: that is "no row yet".
        let found = conn
            .count("SELECT count(*) FROM (SELECT 1 FROM equity_data LIMIT 1) t")
            .await;
        if matches!(found, Ok(1)) {
            break started.elapsed();
        }
        if let Some(child) = guard.0.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(fail(format!("the service exited early ({status})")));
        }
        if started.elapsed() > FIRST_ROW_TIMEOUT {
            return Err(fail(format!(
                "no row committed within {} s",
                FIRST_ROW_TIMEOUT.as_secs()
            )));
        }
        peak = peak.max(read_status_kb(pid, "VmHWM:").unwrap_or(0) * 1024);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    // The window: steady state at the offered load.
    let rows_at_start = count_rows(&conn).await?;
    let cpu_at_start = cpu_ticks(pid);
    let window_start = Instant::now();
    while window_start.elapsed() < window {
        peak = peak.max(read_status_kb(pid, "VmHWM:").unwrap_or(0) * 1024);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows_at_end = count_rows(&conn).await?;
    let window_elapsed = window_start.elapsed();
    let cpu_used = cpu_ticks(pid).saturating_sub(cpu_at_start) as f64 / clock_ticks_per_sec();

    // Stop it as an operator would (SIGINT drains the buffer) and follow it to the end.
    // SAFETY: plain syscall on our own unreaped child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    let stop_started = Instant::now();
    let exit_ok = loop {
        if let Some(kb) = read_status_kb(pid, "VmHWM:") {
            peak = peak.max(kb * 1024);
        }
        if let Some(child) = guard.0.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            guard.0 = None;
            break status.success();
        }
        if stop_started.elapsed() > EXIT_TIMEOUT {
            return Err(fail(format!(
                "the service did not exit within {} s of SIGINT",
                EXIT_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(conn);
    pg.psql("postgres", "DROP DATABASE IF EXISTS footprint WITH (FORCE)")?;
    if !exit_ok {
        return Err(fail("the service exited with an error after SIGINT".into()));
    }
    Ok(FootprintResult {
        binary: binary.to_path_buf(),
        binary_bytes,
        symbols: symbols.len(),
        sim_updates_per_symbol_per_sec: per_symbol_per_sec,
        window: window_elapsed,
        time_to_first_row,
        peak_rss_bytes: peak,
        committed_per_sec: (rows_at_end - rows_at_start).max(0) as f64
            / window_elapsed.as_secs_f64().max(1e-9),
        cpu_share: cpu_used / window_elapsed.as_secs_f64().max(1e-9),
        exit_ok,
        load: (load_before, load_average()),
    })
}

async fn count_rows(conn: &Conn) -> Result<i64, BenchError> {
    conn.count("SELECT count(*) FROM equity_data").await
}

/// A `kB` line of `/proc/<pid>/status` (`VmHWM:`, `VmRSS:`), if the process is alive.
fn read_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// User + system CPU time of `pid` in clock ticks (0 if unreadable).
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: indexes 11 and 12 after ")".
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

// SAFETY: sysconf(_SC_CLK_TCK) reads a constant of the system and touches no memory of ours.
#[allow(unsafe_code)]
fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}
