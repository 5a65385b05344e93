//! A throwaway PostgreSQL cluster for tests and benchmarks.
//!
//! [`TestPostgres::start`] runs `initdb` into a fresh temporary directory, picks a
//! free port on 127.0.0.1, spawns `postgres` directly as a child process and waits
//! until it accepts connections. Authentication is `trust`, the superuser is
//! `postgres`, and the Unix socket lives inside the temporary directory, so the
//! cluster never touches system state. Dropping the value stops the server and
//! deletes the directory.
//!
//! Server binaries are located via `PG_BIN`, then `pg_config --bindir`, then the
//! highest `/usr/lib/postgresql/*/bin`, then `PATH`. PostgreSQL refuses to run as
//! root, so when the current process is root (typical in CI containers) `initdb`
//! and `postgres` are run as the `postgres` OS user instead.
//!
//! ```ignore
//! let pg = TestPostgres::start()?;
//! let url = pg.create_database("app")?; // postgres://postgres@127.0.0.1:PORT/app
//! assert_eq!(pg.psql("app", "select 1")?, "1");
//! ```

// SAFETY (module-wide allow): the unsafe calls are libc process and user look-ups
// (kill, waitid, geteuid, getpwnam_r) on values this module owns, each with its own
// SAFETY comment; nothing shares memory with another thread.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long to wait for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Interval between readiness probes.
const READY_POLL: Duration = Duration::from_millis(50);
/// How long to wait for the postmaster to exit after SIGINT before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many fresh ports to try when the chosen one turns out to be taken.
const PORT_ATTEMPTS: usize = 5;
/// Number of server log lines included in startup errors.
const LOG_TAIL_LINES: usize = 30;
/// Superuser created by `initdb` and OS user used when running as root.
const SUPERUSER: &str = "postgres";
/// Longest identifier PostgreSQL keeps without truncation (NAMEDATALEN - 1).
const MAX_IDENT_BYTES: usize = 63;

/// Errors from starting, using or stopping a [`TestPostgres`].
///
/// Every message says what went wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// No directory with `initdb` and `postgres` could be found.
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found; searched: {searched}. \
         Install the server: `apt-get install postgresql` on Debian/Ubuntu \
         (`dnf install postgresql-server` on Fedora, `brew install postgresql` on macOS), \
         or set PG_BIN to the directory containing initdb, postgres, psql and pg_isready"
    )]
    BinariesNotFound {
        /// Human-readable list of the places that were checked.
        searched: String,
    },

    /// `PG_BIN` is set but does not point at a usable directory.
    #[error(
        "PG_BIN is set to {path:?}, but that directory has no executable `{missing}`. \
         Point PG_BIN at the PostgreSQL server bin directory \
         (e.g. /usr/lib/postgresql/15/bin) or unset it to auto-detect"
    )]
    InvalidPgBin {
        /// The value of `PG_BIN`.
        path: PathBuf,
        /// The binary that is missing.
        missing: &'static str,
    },

    /// Running as root, but there is no `postgres` OS user to run the server as.
    #[error(
        "running as root, and PostgreSQL refuses to run as root, but there is no `postgres` \
         OS user to run it as. Install the server package (`apt-get install postgresql` on \
         Debian/Ubuntu creates that user), create the user (`useradd --system postgres`), \
         or run the tests as a non-root user"
    )]
    NoPostgresUser,

    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// `initdb` exited unsuccessfully.
    #[error("initdb failed ({status}){hint}\n--- initdb output ---\n{output}")]
    InitDb {
        /// Exit status of `initdb`.
        status: ExitStatus,
        /// Combined stdout and stderr of `initdb`.
        output: String,
        /// Extra advice, may be empty.
        hint: String,
    },

    /// The server exited or never became ready.
    #[error("PostgreSQL did not start: {reason}{hint}\n--- last lines of {log} ---\n{log_tail}")]
    StartFailed {
        /// What happened (exit status, timeout, ...).
        reason: String,
        /// Extra advice, may be empty.
        hint: String,
        /// Path of the server log.
        log: PathBuf,
        /// Last lines of the server log.
        log_tail: String,
    },

    /// The server did not exit within the timeout after SIGINT and was killed.
    #[error(
        "PostgreSQL did not shut down within {}s after SIGINT and was killed with SIGKILL; \
         the next start will run crash recovery. See the server log at {log}",
        .waited.as_secs()
    )]
    StopTimeout {
        /// How long we waited before SIGKILL.
        waited: Duration,
        /// Path of the server log.
        log: PathBuf,
    },

    /// `psql` failed (connection error or SQL error).
    #[error("psql on database {database:?} failed ({status}): {stderr}")]
    Psql {
        /// Database the statement ran against.
        database: String,
        /// Exit status of `psql`.
        status: ExitStatus,
        /// What `psql` printed on stderr.
        stderr: String,
    },

    /// An argument was rejected before doing anything.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl TestkitError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// Server settings for [`TestPostgres::start_with`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Durability. `false` (the default) sets `fsync` and `full_page_writes` to `off`, which
    /// is much faster and fine for throwaway data. `synchronous_commit` stays `on` either way:
    /// logical decoding only sees flushed WAL, so with it off a commit could be invisible to a
    /// replication slot for up to `wal_writer_delay` (and tests would flake).
    pub fsync: bool,
    /// `true` (the default) sets `wal_level=logical`, `max_replication_slots=10`
    /// and `max_wal_senders=10`, so logical replication / decoding can be tested.
    pub wal_level_logical: bool,
    /// `true` starts the server with `ssl=on` and a fresh self-signed certificate for
    /// `localhost` (made with the `openssl` command), so clients can use `sslmode=require`.
    pub tls: bool,
    /// Extra `-c key=value` server settings, applied last (they override the above).
    pub extra_settings: Vec<(String, String)>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            fsync: false,
            wal_level_logical: true,
            tls: false,
            extra_settings: Vec::new(),
        }
    }
}

impl PgOptions {
    /// The `-c` settings passed to `postgres`, in order.
    fn server_settings(&self) -> Vec<(String, String)> {
        let mut s: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: &str| s.push((k.to_owned(), v.to_owned()));
        set("listen_addresses", "127.0.0.1");
        set("max_connections", "100");
        if self.fsync {
            set("fsync", "on");
            set("synchronous_commit", "on");
        } else {
            set("fsync", "off");
            set("synchronous_commit", "on");
            set("full_page_writes", "off");
        }
        if self.wal_level_logical {
            set("wal_level", "logical");
            set("max_replication_slots", "10");
            set("max_wal_senders", "10");
        }
        if self.tls {
            set("ssl", "on");
            set("ssl_cert_file", "server.crt");
            set("ssl_key_file", "server.key");
        }
        s.extend(self.extra_settings.iter().cloned());
        s
    }
}

/// A running throwaway PostgreSQL cluster.
///
/// Superuser `postgres`, `trust` authentication, listening on `127.0.0.1` on a
/// random port. Dropping it stops the server (SIGINT, SIGKILL after ~10 s) and
/// deletes its temporary directory. It is `Send + Sync`; share it with `Arc` if
/// several threads need it. Do not keep it in a `static`: statics are never
/// dropped, so the server would outlive the test process.
#[derive(Debug)]
pub struct TestPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    opts: PgOptions,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    // Declared last so it is removed after everything else is dropped.
    tmp: tempfile::TempDir,
}

impl TestPostgres {
    /// Start a cluster with [`PgOptions::default`] (no fsync, `wal_level=logical`).
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(PgOptions::default())
    }

    /// Start a cluster with the given options: `initdb` into a fresh temporary
    /// directory, start `postgres` on a random free port and wait until it accepts
    /// connections (up to 30 s). If the port is grabbed by someone else in the
    /// meantime, a new one is tried a few times.
    pub fn start_with(opts: PgOptions) -> Result<Self, TestkitError> {
        let bin_dir = find_bin_dir()?;
        let run_as = if is_root() {
            Some(lookup_user(SUPERUSER)?.ok_or(TestkitError::NoPostgresUser)?)
        } else {
            None
        };

        let tmp = tempfile::Builder::new()
            .prefix("testpg-")
            .tempdir()
            .map_err(|e| {
                TestkitError::io(
                    "could not create a temporary directory (check TMPDIR and free disk space)",
                    e,
                )
            })?;
        let root = tmp.path().to_path_buf();
        let data_dir = root.join("data");
        let socket_dir = root.join("sock");
        let log_path = root.join("postgres.log");
        std::fs::create_dir(&socket_dir)
            .map_err(|e| TestkitError::io(format!("could not create {socket_dir:?}"), e))?;
        File::create(&log_path)
            .map_err(|e| TestkitError::io(format!("could not create {log_path:?}"), e))?;
        if let Some((uid, gid)) = run_as {
            chown_tree(&root, uid, gid)?;
        }

        let mut pg = Self {
            bin_dir,
            data_dir,
            socket_dir,
            log_path,
            port: 0,
            opts,
            run_as,
            child: None,
            tmp,
        };
        pg.initdb()?;
        if pg.opts.tls {
            pg.make_certificate()?;
        }

        let mut attempt = 0;
        loop {
            attempt += 1;
            pg.port = free_port()?;
            match pg.spawn_and_wait() {
                Ok(()) => return Ok(pg),
                Err(e) if attempt < PORT_ATTEMPTS && port_in_use(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// TCP port the server listens on (on 127.0.0.1). Stays the same across
    /// [`stop`](Self::stop) / [`start_again`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection URL of the `postgres` database:
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// Connection URL of `database` (percent-encoded):
    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{}",
            self.port,
            percent_encode(database)
        )
    }

    /// `CREATE DATABASE` (name quoted as an identifier, so any name up to 63 bytes
    /// works) and return its URL.
    pub fn create_database(&self, name: &str) -> Result<String, TestkitError> {
        if name.is_empty() || name.len() > MAX_IDENT_BYTES || name.contains('\0') {
            return Err(TestkitError::InvalidArgument(format!(
                "database name {name:?} must be 1..={MAX_IDENT_BYTES} bytes without NUL"
            )));
        }
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(name)),
        )?;
        Ok(self.url_for(name))
    }

    /// Run `sql` as a script with the server's `psql`
    /// (`-X -q -A -t -v ON_ERROR_STOP=1`, fed on stdin, so several statements and
    /// psql meta-commands work) against `database` as user `postgres`.
    ///
    /// Returns stdout without trailing newlines: unaligned, tuples only, columns
    /// separated by `|`, one row per line (e.g. `"1"` for `select 1`). Fails with
    /// [`TestkitError::Psql`], including psql's stderr, on connection or SQL errors.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, TestkitError> {
        let psql = self.tool("psql");
        let mut child = Command::new(&psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", database, "-f", "-"])
            .envs(client_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TestkitError::io(format!("could not run {psql:?}"), e))?;

        // Feed stdin from another thread so a large script cannot deadlock against
        // a large result.
        let writer = child.stdin.take().map(|mut stdin| {
            let sql = sql.to_owned();
            std::thread::spawn(move || {
                // A write error means psql exited early; its stderr says why.
                let _ = stdin.write_all(sql.as_bytes());
            })
        });
        let out = child
            .wait_with_output()
            .map_err(|e| TestkitError::io(format!("could not wait for {psql:?}"), e))?;
        if let Some(w) = writer {
            let _ = w.join();
        }

        if !out.status.success() {
            return Err(TestkitError::Psql {
                database: database.to_owned(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end_matches(['\n', '\r'])
            .to_owned())
    }

    /// Fast shutdown: SIGINT to the postmaster, then wait for it to exit (SIGKILL
    /// after ~10 s, reported as [`TestkitError::StopTimeout`]). Does nothing if the
    /// server is not running.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(child.id()).map_err(|_| {
            TestkitError::InvalidArgument(format!("child pid {} out of range", child.id()))
        })?;
        // SAFETY: plain syscall; `pid` is our own unreaped child, so it cannot
        // have been recycled for an unrelated process.
        unsafe { libc::kill(pid, libc::SIGINT) };
        if wait_timeout(&mut child, STOP_TIMEOUT)?.is_some() {
            return Ok(());
        }
        let _ = child.kill();
        child
            .wait()
            .map_err(|e| TestkitError::io("could not wait for killed postgres", e))?;
        Err(TestkitError::StopTimeout {
            waited: STOP_TIMEOUT,
            log: self.log_path.clone(),
        })
    }

    /// Start the server again after [`stop`](Self::stop), on the same data
    /// directory and the same port, and wait until it accepts connections. Fails
    /// (with the server log) if the port has been taken meanwhile. Does nothing if
    /// the server is already running.
    pub fn start_again(&mut self) -> Result<(), TestkitError> {
        if self.is_running() {
            return Ok(());
        }
        self.spawn_and_wait()
    }

    /// Whether the server process is alive.
    pub fn is_running(&self) -> bool {
        let Some(child) = &self.child else {
            return false;
        };
        // Non-reaping check so this can take `&self`.
        // SAFETY: all-zero is a valid siginfo_t; si_pid must start at 0 (see waitid(2)).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t; WNOWAIT leaves the child
        // reapable by `Child::wait` later.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                libc::id_t::from(child.id()),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: reading si_pid of a siginfo_t filled (or zeroed) above.
        rc == 0 && unsafe { info.si_pid() } == 0
    }

    /// The cluster's data directory (`<tmp>/data`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory the server binaries (`postgres`, `initdb`, `psql`, ...) came from.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Path of the server log (`<tmp>/postgres.log`).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn tool(&self, name: &str) -> PathBuf {
        let p = self.bin_dir.join(name);
        if p.is_file() { p } else { PathBuf::from(name) }
    }

    /// A command for a server binary, run as the `postgres` user when we are root.
    fn server_command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(name));
        cmd.current_dir(self.tmp.path())
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .env_remove("PGOPTIONS")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            // std clears supplementary groups (setgroups(0)) when uid is set and
            // no explicit group list was given.
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// A self-signed certificate and its key in the data directory (read relative to it),
    /// made as the server's user so the server may read the key.
    fn make_certificate(&self) -> Result<(), TestkitError> {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&self.data_dir)
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
            .args(["-keyout", "server.key", "-out", "server.crt", "-days", "2"])
            .args(["-subj", "/CN=localhost"])
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd.output().map_err(|e| {
            TestkitError::io(
                "could not run `openssl` for the test server's certificate (install openssl)",
                e,
            )
        })?;
        if !out.status.success() {
            return Err(TestkitError::InvalidArgument(format!(
                "openssl could not make a test certificate: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        use std::os::unix::fs::PermissionsExt;
        let key = self.data_dir.join("server.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| TestkitError::io(format!("could not chmod {key:?}"), e))
    }

    fn initdb(&self) -> Result<(), TestkitError> {
        let out = self
            .server_command("initdb")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"])
            .arg("--locale=C")
            .output()
            .map_err(|e| self.spawn_error("initdb", e))?;
        if out.status.success() {
            return Ok(());
        }
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Err(TestkitError::InitDb {
            status: out.status,
            output,
            hint: self.root_hint(),
        })
    }

    /// Advice for failures caused by running the server as the `postgres` user.
    fn root_hint(&self) -> String {
        if self.run_as.is_none() {
            return String::new();
        }
        format!(
            "; running as root, so initdb/postgres run as the `postgres` OS user, and {:?} \
             and every parent directory must be accessible to that user \
             (set TMPDIR to a world-traversable directory such as /tmp)",
            self.tmp.path()
        )
    }

    fn spawn_error(&self, name: &str, e: io::Error) -> TestkitError {
        TestkitError::io(
            format!(
                "could not run {:?}{}",
                self.bin_dir.join(name),
                self.root_hint()
            ),
            e,
        )
    }

    /// Spawn `postgres` on `self.port` and wait until it is ready.
    fn spawn_and_wait(&mut self) -> Result<(), TestkitError> {
        let log = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log_path)
            .map_err(|e| TestkitError::io(format!("could not open {:?}", self.log_path), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| TestkitError::io("could not duplicate log file handle", e))?;

        let mut cmd = self.server_command("postgres");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.socket_dir);
        for (k, v) in self.opts.server_settings() {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        let child = cmd
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| self.spawn_error("postgres", e))?;
        self.child = Some(child);

        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(e) => {
                // Best effort: do not leave a half-started server behind.
                let _ = self.stop();
                Err(e)
            }
        }
    }

    fn wait_ready(&mut self) -> Result<(), TestkitError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(self.start_failed("server process handle lost".into()));
            };
            let pid = child.id();
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Err(self.start_failed(format!("postgres exited early ({status})")));
                }
                Ok(None) => {}
                Err(e) => return Err(TestkitError::io("could not poll postgres process", e)),
            }
            // The pid file says "ready" only once *our* postmaster listens; this
            // guards against pg_isready reaching another server on a taken port.
            if self.pidfile_ready(pid) && self.pg_isready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.start_failed(format!(
                    "not accepting connections on 127.0.0.1:{} after {}s",
                    self.port,
                    READY_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(READY_POLL);
        }
    }

    fn pidfile_ready(&self, pid: u32) -> bool {
        let Ok(text) = std::fs::read_to_string(self.data_dir.join("postmaster.pid")) else {
            return false;
        };
        let lines: Vec<&str> = text.lines().collect();
        lines.first().map(|l| l.trim()) == Some(pid.to_string().as_str())
            && lines.get(7).map(|l| l.trim()) == Some("ready")
    }

    fn pg_isready(&self) -> bool {
        Command::new(self.tool("pg_isready"))
            .args([
                "-q",
                "-t",
                "2",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", SUPERUSER, "-d", "postgres"])
            .envs(client_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn start_failed(&self, reason: String) -> TestkitError {
        let log_tail = log_tail(&self.log_path);
        let hint = if log_tail.contains("Address already in use") {
            format!(
                "; port {} is already in use by another process (start_again reuses the \
                 original port; free it or start a new TestPostgres)",
                self.port
            )
        } else if log_tail.contains("could not create shared memory")
            || log_tail.contains("No space left on device")
        {
            "; shared memory or disk is exhausted (in Docker, raise --shm-size; also \
             check for leftover test servers with `ps -C postgres`)"
                .to_owned()
        } else {
            String::new()
        };
        TestkitError::StartFailed {
            reason,
            hint,
            log: self.log_path.clone(),
            log_tail,
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // stop() already escalates to SIGKILL after the timeout; errors are
        // ignored because drop must not panic. The TempDir field is removed after
        // this runs.
        let _ = self.stop();
    }
}

/// Environment for client tools so user settings cannot break the connection.
fn client_env() -> [(&'static str, &'static str); 3] {
    [
        ("PGSSLMODE", "disable"),
        ("PGCONNECT_TIMEOUT", "10"),
        ("PGCLIENTENCODING", "UTF8"),
    ]
}

fn port_in_use(e: &TestkitError) -> bool {
    matches!(e, TestkitError::StartFailed { log_tail, .. }
        if log_tail.contains("Address already in use")
            || log_tail.contains("could not create any TCP/IP sockets"))
}

fn free_port() -> Result<u16, TestkitError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| TestkitError::io("could not bind 127.0.0.1:0 to find a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| TestkitError::io("could not read local address of probe socket", e))?
        .port();
    Ok(port)
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>, TestkitError> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if Instant::now() >= deadline => return Ok(None),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(TestkitError::io("could not wait for postgres to exit", e)),
        }
    }
}

fn log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines.get(start..).unwrap_or_default().join("\n")
        }
        Err(e) => format!("(could not read server log: {e})"),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Look up `(uid, gid)` of an OS user via NSS.
fn lookup_user(name: &str) -> Result<Option<(u32, u32)>, TestkitError> {
    let cname = CString::new(name)
        .map_err(|_| TestkitError::InvalidArgument(format!("user name {name:?} contains NUL")))?;
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers and zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is its size.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(TestkitError::io(
                format!("could not look up OS user {name:?}"),
                io::Error::from_raw_os_error(rc),
            ));
        }
        if result.is_null() {
            return Ok(None);
        }
        return Ok(Some((pwd.pw_uid, pwd.pw_gid)));
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), TestkitError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| {
        TestkitError::io(format!("could not chown {path:?} to the postgres user"), e)
    })?;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| TestkitError::io(format!("could not stat {path:?}"), e))?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| TestkitError::io(format!("could not list {path:?}"), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| TestkitError::io(format!("could not list {path:?}"), e))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

fn has_server_binaries(dir: &Path) -> Result<(), &'static str> {
    for name in ["initdb", "postgres"] {
        if !dir.join(name).is_file() {
            return Err(name);
        }
    }
    Ok(())
}

/// Locate the server bin directory (see the module docs for the search order).
fn find_bin_dir() -> Result<PathBuf, TestkitError> {
    find_bin_dir_from(
        std::env::var_os("PG_BIN"),
        Path::new("/usr/lib/postgresql"),
        std::env::var_os("PATH"),
    )
}

fn find_bin_dir_from(
    pg_bin: Option<OsString>,
    debian_root: &Path,
    path_var: Option<OsString>,
) -> Result<PathBuf, TestkitError> {
    if let Some(dir) = pg_bin.filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return match has_server_binaries(&dir) {
            Ok(()) => Ok(dir),
            Err(missing) => Err(TestkitError::InvalidPgBin { path: dir, missing }),
        };
    }
    let mut searched = vec!["PG_BIN (unset)".to_owned()];

    // pg_config may belong to a client-only install (libpq-dev), so check.
    match Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server_binaries(&dir).is_ok() {
                return Ok(dir);
            }
            searched.push(format!(
                "pg_config --bindir ({} has no initdb)",
                dir.display()
            ));
        }
        _ => searched.push("pg_config (not found)".to_owned()),
    }

    let mut versions: Vec<(Vec<u64>, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(debian_root) {
        for entry in entries.flatten() {
            let bin = entry.path().join("bin");
            if has_server_binaries(&bin).is_ok() {
                versions.push((version_key(&entry.file_name()), bin));
            }
        }
    }
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    searched.push(format!("{}/*/bin", debian_root.display()));

    if let Some(path_var) = path_var {
        for dir in std::env::split_paths(&path_var) {
            if has_server_binaries(&dir).is_ok() {
                return Ok(dir);
            }
        }
    }
    searched.push("PATH".to_owned());

    Err(TestkitError::BinariesNotFound {
        searched: searched.join(", "),
    })
}

/// "15" -> [15], "9.6" -> [9, 6]; non-numeric parts sort first.
fn version_key(name: &OsStr) -> Vec<u64> {
    name.to_string_lossy()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_stop_and_restart_keeps_data_and_port() -> Result<(), TestkitError> {
        let mut pg = TestPostgres::start()?;
        assert!(pg.is_running());
        let port = pg.port();
        assert_eq!(
            pg.url(),
            format!("postgres://postgres@127.0.0.1:{port}/postgres")
        );
        assert_eq!(pg.psql("postgres", "select 1")?, "1");

        let url = pg.create_database("app")?;
        assert_eq!(url, format!("postgres://postgres@127.0.0.1:{port}/app"));
        assert_eq!(url, pg.url_for("app"));
        pg.psql(
            "app",
            "create table t (id int primary key, name text);
             insert into t values (1, 'before stop');",
        )?;

        pg.stop()?;
        assert!(!pg.is_running());
        pg.stop()?; // idempotent
        let err = pg.psql("app", "select 1");
        assert!(
            matches!(err, Err(TestkitError::Psql { .. })),
            "psql must fail while stopped: {err:?}"
        );

        pg.start_again()?;
        assert!(pg.is_running());
        assert_eq!(pg.port(), port);
        assert_eq!(pg.psql("app", "select id, name from t")?, "1|before stop");
        pg.start_again()?; // no-op while running
        Ok(())
    }

    #[test]
    fn settings_are_applied() -> Result<(), TestkitError> {
        let pg = TestPostgres::start_with(PgOptions {
            extra_settings: vec![("work_mem".into(), "7MB".into())],
            ..PgOptions::default()
        })?;
        let out = pg.psql(
            "postgres",
            "select current_setting('wal_level'), current_setting('fsync'),
                    current_setting('synchronous_commit'), current_setting('full_page_writes'),
                    current_setting('max_replication_slots'), current_setting('max_connections'),
                    current_setting('work_mem'), current_user,
                    pg_encoding_to_char(encoding) from pg_database where datname = 'postgres'",
        )?;
        assert_eq!(out, "logical|off|on|off|10|100|7MB|postgres|UTF8");

        let durable = TestPostgres::start_with(PgOptions {
            fsync: true,
            wal_level_logical: false,
            tls: false,
            extra_settings: Vec::new(),
        })?;
        let out = durable.psql(
            "postgres",
            "select current_setting('wal_level'), current_setting('fsync')",
        )?;
        assert_eq!(out, "replica|on");
        Ok(())
    }

    #[test]
    fn psql_errors_include_stderr_and_multi_row_output() -> Result<(), TestkitError> {
        let pg = TestPostgres::start()?;
        assert_eq!(
            pg.psql("postgres", "select generate_series(1, 3)")?,
            "1\n2\n3"
        );
        let err = pg.psql("postgres", "select * from no_such_table");
        match err {
            Err(TestkitError::Psql { stderr, .. }) => {
                assert!(stderr.contains("no_such_table"), "stderr: {stderr}")
            }
            other => panic!("expected Psql error, got {other:?}"),
        }
        // Odd but legal names are quoted and percent-encoded.
        let url = pg.create_database("my \"db\"")?;
        assert!(url.ends_with("/my%20%22db%22"), "{url}");
        assert_eq!(
            pg.psql("my \"db\"", "select current_database()")?,
            "my \"db\""
        );
        assert!(matches!(
            pg.create_database(""),
            Err(TestkitError::InvalidArgument(_))
        ));
        Ok(())
    }

    #[test]
    fn start_again_fails_clearly_when_port_taken() -> Result<(), TestkitError> {
        let mut pg = TestPostgres::start()?;
        pg.stop()?;
        let squatter = match TcpListener::bind(("127.0.0.1", pg.port())) {
            Ok(l) => l,
            Err(_) => return Ok(()), // port momentarily unavailable; nothing to test
        };
        let err = pg.start_again();
        drop(squatter);
        match err {
            Err(e @ TestkitError::StartFailed { .. }) => {
                assert!(port_in_use(&e), "{e}");
                assert!(e.to_string().contains("already in use"), "{e}");
            }
            other => panic!("expected StartFailed, got {other:?}"),
        }
        assert!(!pg.is_running());
        pg.start_again()?;
        assert_eq!(pg.psql("postgres", "select 1")?, "1");
        Ok(())
    }

    #[test]
    fn drop_stops_server_and_removes_dir() -> Result<(), TestkitError> {
        let pg = TestPostgres::start()?;
        let root = pg.data_dir().parent().map(Path::to_path_buf);
        let pid = pg.child.as_ref().map(Child::id);
        drop(pg);
        if let Some(root) = root {
            assert!(!root.exists(), "{root:?} should be removed");
        }
        if let Some(pid) = pid {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "pid {pid} still alive"
            );
        }
        Ok(())
    }

    #[test]
    fn invalid_pg_bin_and_missing_binaries_explain_the_fix() {
        let empty = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let err = find_bin_dir_from(Some(empty.path().into()), empty.path(), None);
        let msg = match err {
            Err(e @ TestkitError::InvalidPgBin { .. }) => e.to_string(),
            other => panic!("expected InvalidPgBin, got {other:?}"),
        };
        assert!(msg.contains("PG_BIN"), "{msg}");

        let msg = TestkitError::BinariesNotFound {
            searched: "x".into(),
        }
        .to_string();
        assert!(msg.contains("apt-get install postgresql") && msg.contains("PG_BIN"));
        assert!(
            TestkitError::NoPostgresUser
                .to_string()
                .contains("apt-get install postgresql")
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(percent_encode("a-b_c.d~e f/é"), "a-b_c.d~e%20f%2F%C3%A9");
        assert!(version_key(OsStr::new("15")) > version_key(OsStr::new("9.6")));
    }
}
