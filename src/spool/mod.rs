//! The disk spool: batches the database could not take, kept in order until they are committed.
//!
//! Segment files `SPOOL_DIR/<id>.spool` (20-digit ids, oldest first) hold checksummed records
//! ([`record`]); each append is fsynced before it counts. Replay reads records in order; a
//! segment is deleted once all its records were committed. On open, every segment is checked:
//! a torn or corrupt tail is cut off (what was dropped is logged and counted), an unreadable
//! file is skipped, nothing ever panics or stops the service. Total size is capped by
//! `SPOOL_MAX_BYTES`: reaching the cap drops the oldest segments, loudly and counted.
//! One process at a time: an exclusive lock on `SPOOL_DIR/spool.lock` is held while the spool
//! is open, because opening cuts tails that look torn, and another process's append in flight
//! looks torn.
//!
//! Committed-but-not-yet-deleted records can be sent again after a crash; writes are
//! idempotent (natural keys), so that never duplicates a row.

pub mod record;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::rows::Batch;

/// Start a new segment beyond this size.
const SEGMENT_TARGET_BYTES: u64 = 4 * 1024 * 1024;

/// A spool problem. The writer then keeps rows in memory and says so.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "spool {action} failed for {path}: {source} (check that SPOOL_DIR exists, is writable and the disk has space)"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "spool folder {path} is in use by another process (another market-streamer?); give every instance its own SPOOL_DIR"
    )]
    Locked { path: PathBuf },
    #[error("cannot encode a batch for the spool: {0} (this is a bug, please report it)")]
    Encode(#[from] serde_json::Error),
}

impl SpoolError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What opening the spool found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    pub records: u64,
    pub rows: u64,
    /// Bytes of torn or corrupt tails that were cut off.
    pub dropped_bytes: u64,
    /// Segment files that could not be read at all (left in place, renamed `.bad`).
    pub unreadable_segments: usize,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    bytes: u64,
    /// (offset, len, rows) of every record, in order.
    records: VecDeque<record::RecordSpan>,
}

/// The handle of one record taken for replay; pass it to [`Spool::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordId {
    segment: u64,
    offset: usize,
}

/// Counts of what the spool holds and lost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpoolCounts {
    pub bytes: u64,
    pub records: u64,
    pub rows: u64,
    /// Rows dropped because of `SPOOL_MAX_BYTES` (oldest first).
    pub rows_dropped_cap: u64,
}

/// The spool. Owned by the writer task.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    active: Option<File>,
    next_id: u64,
    rows_dropped_cap: u64,
    /// Holds the folder's exclusive lock while the spool is open (released on drop).
    _lock: File,
}

/// The lock file's name (no `.spool` suffix: never taken for a segment).
const LOCK_FILE: &str = "spool.lock";

/// Takes the exclusive lock on `dir`, so no other process reads or cuts segments under us.
fn lock_folder(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SpoolError::io("create lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SpoolError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(SpoolError::io("lock", &path, e)),
    }
}

impl Spool {
    /// Opens (creating) `dir` and recovers what earlier runs left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Self, Recovery), SpoolError> {
        fs::create_dir_all(dir).map_err(|e| SpoolError::io("create folder", dir, e))?;
        let lock = lock_folder(dir)?;
        let mut ids: Vec<(u64, PathBuf)> = fs::read_dir(dir)
            .map_err(|e| SpoolError::io("list", dir, e))?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let id = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".spool")?
                    .parse()
                    .ok()?;
                Some((id, path))
            })
            .collect();
        ids.sort();
        let mut recovery = Recovery::default();
        let mut segments = VecDeque::new();
        for (id, path) in ids {
            match recover_segment(id, &path) {
                Ok((segment, dropped)) => {
                    recovery.dropped_bytes += dropped;
                    if segment.records.is_empty() {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    recovery.segments += 1;
                    recovery.records += segment.records.len() as u64;
                    recovery.rows += segment
                        .records
                        .iter()
                        .map(|r| u64::from(r.rows))
                        .sum::<u64>();
                    segments.push_back(segment);
                }
                Err(e) => {
                    recovery.unreadable_segments += 1;
                    tracing::error!(path = %path.display(), error = %e, "cannot read a spool segment; renamed to .bad and skipped");
                    let _ = fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        if recovery.dropped_bytes > 0 {
            tracing::warn!(
                bytes = recovery.dropped_bytes,
                "cut a torn or corrupt tail off the spool (the rows in it were lost)"
            );
        }
        let next_id = segments.back().map_or(1, |s| s.id + 1);
        let spool = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            segments,
            active: None,
            next_id,
            rows_dropped_cap: 0,
            _lock: lock,
        };
        Ok((spool, recovery))
    }

    /// True when nothing waits for replay.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.records.is_empty())
    }

    /// What the spool holds.
    pub fn counts(&self) -> SpoolCounts {
        let mut c = SpoolCounts {
            rows_dropped_cap: self.rows_dropped_cap,
            ..SpoolCounts::default()
        };
        for s in &self.segments {
            c.bytes += s.bytes;
            c.records += s.records.len() as u64;
            c.rows += s.records.iter().map(|r| u64::from(r.rows)).sum::<u64>();
        }
        c
    }

    /// Appends a batch and fsyncs it. Returns the rows dropped to stay under the cap.
    pub fn append(&mut self, batch: &Batch) -> Result<u64, SpoolError> {
        let bytes = record::encode(batch)?;
        let len = bytes.len() as u64;
        let mut dropped = 0;
        while self.counts().bytes + len > self.max_bytes && !self.segments.is_empty() {
            dropped += self.drop_oldest_segment();
        }
        if len > self.max_bytes {
            dropped += batch.len() as u64;
            self.rows_dropped_cap += batch.len() as u64;
            tracing::error!(
                rows = batch.len(),
                "a batch is larger than SPOOL_MAX_BYTES and was dropped"
            );
            return Ok(dropped);
        }
        let needs_new = match self.segments.back() {
            Some(s) => self.active.is_none() || s.bytes >= SEGMENT_TARGET_BYTES,
            None => true,
        };
        if needs_new {
            self.start_segment()?;
        }
        let (Some(file), Some(segment)) = (self.active.as_mut(), self.segments.back_mut()) else {
            return Err(SpoolError::io(
                "append",
                &self.dir,
                std::io::Error::other("no open segment"),
            ));
        };
        let offset = segment.bytes as usize;
        let written = file.write_all(&bytes).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Undo a partial write so the segment stays readable; a segment this append
            // created holds nothing and goes (a full disk must not leave a trail of empty
            // files, one per attempt).
            let _ = file.set_len(segment.bytes);
            self.active = None;
            let err = SpoolError::io("append (fsync)", &segment.path, e);
            if segment.records.is_empty()
                && let Some(empty) = self.segments.pop_back()
            {
                let _ = fs::remove_file(&empty.path);
            }
            return Err(err);
        }
        segment.bytes += len;
        segment.records.push_back(record::RecordSpan {
            offset,
            len: bytes.len(),
            rows: batch.len() as u32,
        });
        Ok(dropped)
    }

    /// The oldest record not yet committed, decoded. A record that fails to decode (only
    /// possible if the file changed under us) is dropped with an error log.
    pub fn oldest(&mut self) -> Result<Option<(RecordId, Batch)>, SpoolError> {
        loop {
            let Some(segment) = self.segments.front() else {
                return Ok(None);
            };
            let Some(span) = segment.records.front().copied() else {
                self.retire_front();
                continue;
            };
            let buf =
                fs::read(&segment.path).map_err(|e| SpoolError::io("read", &segment.path, e))?;
            match record::check(&buf, span.offset).and_then(|s| record::decode(&buf, s).ok()) {
                Some(batch) => {
                    return Ok(Some((
                        RecordId {
                            segment: segment.id,
                            offset: span.offset,
                        },
                        batch,
                    )));
                }
                None => {
                    tracing::error!(path = %segment.path.display(), offset = span.offset, rows = span.rows, "a spooled record changed on disk and was dropped");
                    self.pop_record();
                }
            }
        }
    }

    /// Marks a replayed record as committed; deletes its segment when that was the last one.
    pub fn commit(&mut self, id: RecordId) -> Result<(), SpoolError> {
        let front = self
            .segments
            .front()
            .and_then(|s| Some((s.id, s.records.front()?.offset)));
        if front == Some((id.segment, id.offset)) {
            self.pop_record();
        }
        Ok(())
    }

    fn pop_record(&mut self) {
        if let Some(segment) = self.segments.front_mut() {
            segment.records.pop_front();
            if segment.records.is_empty() {
                self.retire_front();
            }
        }
    }

    /// Deletes the front segment (all its records are committed or dropped).
    fn retire_front(&mut self) {
        if let Some(segment) = self.segments.pop_front() {
            if self.segments.is_empty() {
                self.active = None; // the active segment was the front one
            }
            if let Err(e) = fs::remove_file(&segment.path) {
                tracing::warn!(path = %segment.path.display(), error = %e, "cannot delete a replayed spool segment; it will be replayed again (harmless: writes are idempotent)");
            }
        }
    }

    fn drop_oldest_segment(&mut self) -> u64 {
        let Some(segment) = self.segments.front() else {
            return 0;
        };
        let rows: u64 = segment.records.iter().map(|r| u64::from(r.rows)).sum();
        self.rows_dropped_cap += rows;
        tracing::error!(
            rows,
            dropped_total = self.rows_dropped_cap,
            "SPOOL_MAX_BYTES reached: dropped the oldest spooled rows (raise SPOOL_MAX_BYTES or fix the database)"
        );
        self.retire_front();
        rows
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        let id = self.next_id;
        self.next_id += 1;
        let path = self.dir.join(format!("{id:020}.spool"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| SpoolError::io("create segment", &path, e))?;
        // Make the new file's name durable too.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.segments.push_back(Segment {
            id,
            path,
            bytes: 0,
            records: VecDeque::new(),
        });
        self.active = Some(file);
        Ok(())
    }
}

/// Reads a segment, cuts off anything after the last valid record, returns what was cut.
fn recover_segment(id: u64, path: &Path) -> Result<(Segment, u64), SpoolError> {
    let buf = fs::read(path).map_err(|e| SpoolError::io("read", path, e))?;
    let (spans, valid) = record::scan(&buf);
    let dropped = (buf.len() - valid) as u64;
    if dropped > 0 {
        tracing::warn!(path = %path.display(), valid_bytes = valid, dropped_bytes = dropped, "spool segment has a torn or corrupt tail; keeping the valid records");
        let truncated = OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(valid as u64).and_then(|()| f.sync_all()));
        if let Err(e) = truncated {
            tracing::warn!(path = %path.display(), error = %e, "cannot cut the torn tail; the valid records are still used");
        }
    }
    Ok((
        Segment {
            id,
            path: path.to_path_buf(),
            bytes: valid as u64,
            records: spans.into(),
        },
        dropped,
    ))
}

#[cfg(test)]
mod tests;
