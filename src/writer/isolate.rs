//! Isolating rows the database rejects: a batch refused for its data (`ErrorKind::Rejected`)
//! is split in halves, and each half written again, until the rejected rows stand alone; the
//! others are written, the rejected ones go to the quarantine (`rejected_rows`, or a JSON
//! Lines file when the database cannot take them). With `k` bad rows in `n` this costs about
//! `2·k·log2(n)` extra writes, only when it happens.
//!
//! Halves get ids derived from their batch's ([`crate::rows::BatchId::child`]), so if the
//! isolation is interrupted (a transient error, a crash with the batch in the spool) and done
//! again, halves already committed are recognised by the ledger.

use std::io::Write as _;
use std::path::Path;

use crate::db::quarantine::RejectedRow;
use crate::db::{ErrorKind, Sink, SinkError, WriteReport};
use crate::rows::Batch;

/// What a write with isolation did.
#[derive(Debug, Default)]
pub struct Isolated {
    /// The rows written (rejected ones not counted).
    pub report: WriteReport,
    /// The rows the database rejected, each with its error.
    pub rejected: Vec<RejectedRow>,
}

/// Writes `batch`, isolating the rows the database rejects. Any other error ends it (the
/// caller retries the whole batch later: halves already committed are skipped then).
pub async fn write_isolating<S: Sink>(sink: &S, batch: &Batch) -> Result<Isolated, SinkError> {
    let first = match sink.write(batch).await {
        Ok(report) => {
            return Ok(Isolated {
                report,
                rejected: Vec::new(),
            });
        }
        Err(e) if e.kind == ErrorKind::Rejected => e,
        Err(e) => return Err(e),
    };
    tracing::warn!(batch = %batch.id, rows = batch.len(), error = %first, "the database rejected a batch for its data; isolating the rejected rows (the others are written)");
    let mut out = Isolated::default();
    // Depth first, left half first: rows keep their order.
    let mut stack: Vec<Batch> = Vec::new();
    isolate_or_split(batch, first, &mut stack, &mut out);
    while let Some(part) = stack.pop() {
        match sink.write(&part).await {
            Ok(r) => add(&mut out.report, &r),
            Err(e) if e.kind == ErrorKind::Rejected => {
                isolate_or_split(&part, e, &mut stack, &mut out)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A part the database rejected: its halves go on `stack` (left on top), or, for a single
/// row, the row is rejected.
fn isolate_or_split(part: &Batch, e: SinkError, stack: &mut Vec<Batch>, out: &mut Isolated) {
    if part.len() > 1 {
        let (left, right) = part.split_in_two();
        stack.push(right);
        stack.push(left);
    } else {
        out.rejected
            .extend(part.rows().map(|row| RejectedRow::new(&row, part.id, &e)));
    }
}

fn add(total: &mut WriteReport, r: &WriteReport) {
    total.rows += r.rows;
    total.inserted += r.inserted;
    total.equities += r.equities;
    total.options += r.options;
    total.bars += r.bars;
    for (t, n) in total.by_table.iter_mut().zip(r.by_table) {
        *t += n;
    }
    total.copied_rows += r.copied_rows;
}

/// Appends rejected rows to a JSON Lines file (one object per row), creating it and its
/// folder: the quarantine of last resort when the database cannot take them.
pub fn append_to_file(path: &Path, rows: &[RejectedRow]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut text = String::new();
    for r in rows {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    file.write_all(text.as_bytes())?;
    file.sync_data()
}
