//! `TOKEN_STORE=file`: the tokens as one JSON object in `TOKEN_FILE` (mode 0600).
//!
//! Writes go to a temporary file in the same folder that is synced and renamed over the old
//! one, so a crash never leaves half a file. Refreshes are serialised across processes by an
//! exclusive `flock` on `TOKEN_FILE.lock` (released when its file is closed, also on a crash).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{TokenSet, TokenStoreError};

/// How long [`FileStore::lock`] waits for another holder.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);
const LOCK_POLL: Duration = Duration::from_millis(50);

/// The token file.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

/// An exclusive lock on a lock file, released on drop.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileStore {
    /// A store at `path` (nothing is touched until the first load or save).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// The token file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the tokens of `client_id`; `None` when the file is missing or belongs to another app.
    pub async fn load(&self, client_id: &str) -> Result<Option<TokenSet>, TokenStoreError> {
        let path = self.path.display().to_string();
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TokenStoreError::Read { path, source }),
        };
        let tokens: TokenSet =
            serde_json::from_str(&text).map_err(|e| TokenStoreError::Corrupt {
                path: path.clone(),
                // serde's message names the field, never the value of a string.
                detail: e.to_string(),
            })?;
        if tokens.client_id != client_id {
            tracing::warn!(
                file = %path,
                "the token file holds tokens of another app (SCHWAB_CLIENT_ID changed?); run `market-streamer login`"
            );
            return Ok(None);
        }
        Ok(Some(tokens))
    }

    /// Replaces the file atomically with `tokens` (mode 0600).
    pub async fn save(&self, tokens: &TokenSet) -> Result<(), TokenStoreError> {
        let mut bytes = serde_json::to_vec_pretty(tokens).map_err(|e| TokenStoreError::Write {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        bytes.push(b'\n');
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| TokenStoreError::Write {
                path: self.path.display().to_string(),
                source: std::io::Error::other(e),
            })?
    }

    /// Takes the exclusive lock on `TOKEN_FILE.lock`, waiting up to [`LOCK_WAIT`].
    pub async fn lock(&self) -> Result<FileLock, TokenStoreError> {
        lock_file(&lock_path(&self.path)).await
    }
}

/// `PATH.lock`, next to `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Takes an exclusive `flock` on `path` (created with mode 0600 if missing).
// SAFETY: the only unsafe call is flock(2) on a descriptor this function owns (see below).
#[allow(unsafe_code)]
pub async fn lock_file(path: &Path) -> Result<FileLock, TokenStoreError> {
    let shown = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| TokenStoreError::Write {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TokenStoreError::Write {
            path: shown.clone(),
            source,
        })?;
    let started = tokio::time::Instant::now();
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is shared with the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(FileLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK)
            && err.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(TokenStoreError::Write {
                path: shown,
                source: err,
            });
        }
        if started.elapsed() >= LOCK_WAIT {
            return Err(TokenStoreError::LockTimeout {
                what: shown,
                secs: LOCK_WAIT.as_secs(),
            });
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// Writes `bytes` to a temporary file next to `path` (mode 0600), syncs it and renames it
/// over `path`, then syncs the folder.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TokenStoreError> {
    let err = |p: &Path| {
        let p = p.display().to_string();
        move |source| TokenStoreError::Write { path: p, source }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above is filtered by the umask; make sure it is exactly 0600.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schwab::secret::Secret;
    use chrono::Utc;

    fn tokens(client: &str, access: &str) -> TokenSet {
        let now = Utc::now();
        TokenSet {
            client_id: client.into(),
            access_token: Secret::new(access),
            refresh_token: Secret::new("R0.refresh"),
            access_expires_at: now,
            refresh_issued_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn saves_atomically_with_mode_0600_and_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(&dir.path().join("nested/tokens.json"));
        assert_eq!(store.load("app").await.expect("load"), None, "missing file");
        let t = tokens("app", "I0.one");
        store.save(&t).await.expect("save");
        let mode = std::fs::metadata(store.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.load("app").await.expect("load"), Some(t.clone()));
        store
            .save(&tokens("app", "I0.two"))
            .await
            .expect("save again");
        let back = store.load("app").await.expect("load").expect("some");
        assert_eq!(back.access_token.expose(), "I0.two");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file left");
        assert_eq!(
            store.load("other-app").await.expect("load"),
            None,
            "another app's tokens are not used"
        );
    }

    #[tokio::test]
    async fn a_corrupt_file_says_to_log_in_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, "{not json").expect("write");
        let err = FileStore::new(&path)
            .load("app")
            .await
            .expect_err("corrupt");
        assert!(err.to_string().contains("market-streamer login"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(&dir.path().join("tokens.json"));
        let first = store.lock().await.expect("first lock");
        let err = store
            .lock()
            .await
            .expect_err("second lock times out while the first is held");
        assert!(matches!(err, TokenStoreError::LockTimeout { .. }), "{err}");
        drop(first);
        store.lock().await.expect("free again");
    }
}
