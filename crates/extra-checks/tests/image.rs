//! The container image, built and run for real without a container engine:
//!
//! 1. the build stage's output (`/rootfs`: the release binary, the glibc libraries it links,
//!    the loader, a passwd entry for uid 10001, `/tmp`, `/app/data`) is assembled from the
//!    host's release build exactly as the Dockerfile's builder does, and committed as a local
//!    image with buildah (nothing can be pulled here);
//! 2. the real Dockerfile's `runtime` stage is built with `buildah bud --target runtime
//!    --build-arg BUILD_OUTPUT=<that image>` (buildah skips the unused Rust builder stage);
//! 3. the image is exported, its size measured (target: 25 MB uncompressed), its config
//!    checked (user, entrypoint, working directory, health check);
//! 4. it runs as uid 10001 with a read-only root file system, a tmpfs on /tmp and a host
//!    folder as the data volume, through `unshare` (mount, pid, uts, ipc namespaces) and
//!    its `--root` (a chroot): the zero-configuration service answers `/health`, streams
//!    the simulated market and writes rows into the volume.
//!
//! Needs root, buildah, unshare (util-linux 2.38+) and `target/release/market-streamer`
//! (`scripts/extra-checks.sh` builds it first).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The measured size must stay at or under this (uncompressed root file system).
const SIZE_LIMIT_BYTES: u64 = 25 * 1024 * 1024;
/// The image's user.
const APP_UID: u32 = 10001;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

fn release_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let bin = target.join("release/market-streamer");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p market-streamer` first (scripts/extra-checks.sh does)",
        bin.display()
    );
    bin
}

/// Runs a command to success and returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// buildah with its own storage under `dir`, so the test leaves nothing in the machine's.
fn buildah(dir: &Path) -> Command {
    let mut cmd = Command::new("buildah");
    cmd.arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--storage-driver")
        .arg("vfs");
    cmd
}

/// The build stage's `/rootfs`, assembled like the Dockerfile's builder: the binary, the
/// libraries its ELF header names (from the host's multiarch folder), the loader, passwd
/// and group entries for uid 10001, `/tmp` (1777) and `/app/data` owned by 10001.
fn assemble_rootfs(rootfs: &Path) {
    let bin = release_binary();
    let multiarch = "x86_64-linux-gnu";
    let libdir = Path::new("/lib").join(multiarch);
    let interp = "/lib64/ld-linux-x86-64.so.2";
    for dir in [
        "usr/local/bin".to_string(),
        format!("lib/{multiarch}"),
        "lib64".to_string(),
        "etc".to_string(),
        "tmp".to_string(),
        "app/data".to_string(),
    ] {
        std::fs::create_dir_all(rootfs.join(dir)).expect("mkdir");
    }
    std::fs::copy(&bin, rootfs.join("usr/local/bin/market-streamer")).expect("copy the binary");
    let dynamic = run(Command::new("readelf").arg("-d").arg(&bin));
    let libs: Vec<&str> = dynamic
        .lines()
        .filter_map(|l| l.split_once("Shared library: [")?.1.split_once(']'))
        .map(|(lib, _)| lib)
        .collect();
    assert!(
        libs.iter().any(|l| l.starts_with("libc.so")),
        "links glibc: {libs:?}"
    );
    for lib in libs {
        // `cp -L` as the Dockerfile does: the file, not the symlink.
        let real = std::fs::canonicalize(libdir.join(lib)).expect("a linked library");
        std::fs::copy(real, rootfs.join(format!("lib/{multiarch}/{lib}"))).expect("copy lib");
    }
    let loader = std::fs::canonicalize(interp).expect("the loader");
    std::fs::copy(loader, rootfs.join(interp.trim_start_matches('/'))).expect("copy loader");
    std::fs::write(
        rootfs.join("etc/passwd"),
        "app:x:10001:10001:market-streamer:/app:/nonexistent\n",
    )
    .expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "app:x:10001:\n").expect("group");
    run(Command::new("chmod").arg("1777").arg(rootfs.join("tmp")));
    run(Command::new("chown")
        .arg("-R")
        .arg("10001:10001")
        .arg(rootfs.join("app")));
}

/// Total bytes of the regular files under `dir` (what the image holds, uncompressed).
fn tree_bytes(dir: &Path) -> u64 {
    let out = run(Command::new("du").arg("-sb").arg(dir));
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du output")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET `path` on 127.0.0.1:`port`: (status code, body), or None while nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Every process below `pid` (children first listed by the kernel in
/// `/proc/PID/task/*/children`).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(child);
                todo.push(child);
            }
        }
    }
    out
}

/// Ends the container like `docker stop`: SIGTERM to the service (the process tree below
/// the outer `unshare`; `--kill-child` cannot reach it, since changing the user id clears the
/// parent-death signal), up to 15 s to drain, then SIGKILL for whatever is left.
struct Running(Child);

impl Running {
    fn stop(&mut self) {
        let signal = |sig: &str, pids: &[u32]| {
            if !pids.is_empty() {
                let _ = Command::new("kill")
                    .arg(sig)
                    .args(pids.iter().map(u32::to_string))
                    .status();
            }
        };
        signal("-TERM", &descendants(self.0.id()));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal("-KILL", &descendants(self.0.id()));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
#[ignore = "needs root, buildah and unshare, and a release build: run scripts/extra-checks.sh"]
fn the_runtime_stage_builds_offline_is_small_and_runs_read_only_as_uid_10001() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();

    // 1. The build stage's output as a local image.
    let staging = work.join("staging");
    assemble_rootfs(&staging.join("rootfs"));
    let ctr = run(buildah(work).args(["from", "scratch"]))
        .trim()
        .to_string();
    let mnt = run(buildah(work).args(["mount", &ctr])).trim().to_string();
    run(Command::new("cp")
        .arg("-a")
        .arg(staging.join("rootfs"))
        .arg(&mnt));
    run(buildah(work).args(["umount", &ctr]));
    let output_image = "localhost/market-streamer-build-output:image-test";
    run(buildah(work).args(["commit", "-q", &ctr, output_image]));
    run(buildah(work).args(["rm", &ctr]));

    // 2. The real Dockerfile's runtime stage (an empty context: only the builder reads it).
    let context = work.join("context");
    std::fs::create_dir_all(&context).expect("context");
    let image = "localhost/market-streamer:image-test";
    run(buildah(work)
        .arg("bud")
        // Docker's image format, as `docker build` makes: OCI's has no HEALTHCHECK.
        .args(["--format", "docker"])
        .args(["--target", "runtime"])
        .arg("--build-arg")
        .arg(format!("BUILD_OUTPUT={output_image}"))
        .args(["-t", image, "-f"])
        .arg(repo().join("Dockerfile"))
        .arg(&context));

    // 3. Its config and size.
    let inspect: Value = serde_json::from_str(&run(
        buildah(work).args(["inspect", "--type", "image", image])
    ))
    .expect("buildah inspect JSON");
    let config = &inspect["OCIv1"]["config"];
    assert_eq!(config["User"], "10001:10001", "{config}");
    assert_eq!(config["WorkingDir"], "/app", "{config}");
    assert_eq!(config["Entrypoint"][0], "market-streamer", "{config}");
    assert_eq!(config["Cmd"][0], "run", "{config}");
    let env: Vec<String> = config["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        env.iter().any(|e| e == "HEALTH_ADDR=0.0.0.0:8080"),
        "{env:?}"
    );
    let healthcheck = inspect["Docker"]["config"]["Healthcheck"]["Test"].to_string();
    assert!(healthcheck.contains("probe"), "{healthcheck}");

    let ctr = run(buildah(work).args(["from", image])).trim().to_string();
    let mnt = run(buildah(work).args(["mount", &ctr])).trim().to_string();
    let root = work.join("root");
    std::fs::create_dir_all(&root).expect("root");
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{mnt}/."))
        .arg(&root));
    run(buildah(work).args(["umount", &ctr]));
    run(buildah(work).args(["rm", &ctr]));
    let size = tree_bytes(&root);
    println!(
        "image size: {:.1} MB uncompressed ({size} bytes)",
        size as f64 / 1_048_576.0
    );
    assert!(
        size <= SIZE_LIMIT_BYTES,
        "the image is {size} bytes, over the {SIZE_LIMIT_BYTES}-byte target"
    );
    let mut top: Vec<String> = std::fs::read_dir(&root)
        .expect("read root")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["app", "etc", "lib", "lib64", "tmp", "usr"],
        "nothing else in the image"
    );

    // 4. Run it: read-only root, tmpfs /tmp, a host folder as /app/data, uid and gid 10001.
    std::fs::create_dir_all(root.join("proc")).expect("a /proc mount point");
    let data = work.join("data");
    std::fs::create_dir_all(&data).expect("data");
    run(Command::new("chown").arg("10001:10001").arg(&data));
    let port = free_port();
    let r = root.display();
    let script = format!(
        "set -e; mount --bind {r} {r}; mount -o remount,bind,ro {r}; \
         mount -t tmpfs -o mode=1777 tmpfs {r}/tmp; mount --bind {d} {r}/app/data; \
         mount -t proc proc {r}/proc; \
         exec unshare --pid --uts --ipc --fork --kill-child=SIGTERM --root={r} --wd=/app \
           --setgid={APP_UID} --setuid={APP_UID} /usr/local/bin/market-streamer run",
        d = data.display()
    );
    let mut container = Command::new("unshare");
    container
        .args([
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "--kill-child=SIGTERM",
        ])
        .args(["sh", "-c", &script])
        .env_clear()
        // The image's own environment, with the health port moved off 8080 (no network
        // namespace here, so the host's port must be free).
        .env("HEALTH_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = container.spawn().expect("unshare");
    let mut running = Running(child);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut health = None;
    while Instant::now() < deadline {
        if let Some(status) = running.0.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut e) = running.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("the container exited ({status}) before answering:\n{err}");
        }
        if let Some((code, body)) = get(port, "/health") {
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let written = json["writer"]["rows_written"].as_u64().unwrap_or(0);
            if code == 200 && written > 0 {
                health = Some(json);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let health = health.expect("the service in the image answered /health with rows written");
    assert_ne!(health["status"], "down", "{health}");
    let db = data.join("market.db");
    let meta = std::fs::metadata(&db).expect("the SQLite file in the data volume");
    assert!(meta.len() > 0);
    assert_eq!(meta.uid(), APP_UID, "written by uid 10001");
    assert!(
        std::fs::read_dir(data.join("spool")).is_ok(),
        "the spool lives in the volume too"
    );

    // Stopping the container stops the service gracefully (nothing is left running).
    running.stop();
    assert!(
        matches!(running.0.try_wait(), Ok(Some(_))),
        "the container ended"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(port, "/health").is_some() {
        assert!(
            Instant::now() < deadline,
            "the service in the container still answers after the stop"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
