//! Spool tests: order, durability across reopen, torn and corrupt tails, the size cap.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::*;
use crate::rows::{EquityRow, Row};
use crate::schwab::wire::EquityFields;

fn batch(first_id: i32, n: i32) -> Batch {
    let mut b = Batch::default();
    for id in first_id..first_id + n {
        b.push(Row::Equity(EquityRow {
            ticker: Arc::from("AAPL"),
            timestamp: Utc
                .timestamp_millis_opt(1_700_000_000_000 + i64::from(id))
                .single()
                .expect("time"),
            seq: id,
            quote: EquityFields {
                last: Some(100.0 + f64::from(id)),
                total_volume: Some(1000),
                ..EquityFields::default()
            },
            indicators: Default::default(),
        }));
    }
    b
}

fn drain(spool: &mut Spool) -> Vec<i32> {
    let mut ids = Vec::new();
    while let Some((id, b)) = spool.oldest().expect("read") {
        ids.extend(b.equities.iter().map(|r| r.seq));
        spool.commit(id).expect("commit");
    }
    ids
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "spool"))
        .collect();
    v.sort();
    v
}

#[test]
fn replays_in_order_and_deletes_after_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, rec) = Spool::open(dir.path(), 1 << 30).expect("open");
    assert_eq!(rec, Recovery::default());
    spool.append(&batch(0, 3)).expect("append");
    spool.append(&batch(3, 2)).expect("append");
    assert_eq!(spool.counts().rows, 5);
    assert_eq!(drain(&mut spool), vec![0, 1, 2, 3, 4]);
    assert!(spool.is_empty());
    assert!(
        segment_files(dir.path()).is_empty(),
        "replayed segments are deleted"
    );
    spool.append(&batch(5, 1)).expect("append after draining");
    assert_eq!(drain(&mut spool), vec![5]);
}

#[test]
fn a_reopened_spool_still_holds_uncommitted_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut spool, _) = Spool::open(dir.path(), 1 << 30).expect("open");
        spool.append(&batch(0, 2)).expect("append");
        spool.append(&batch(2, 2)).expect("append");
        let (id, _) = spool.oldest().expect("read").expect("record");
        spool.commit(id).expect("commit");
        // dropped here without committing the second record: a crash
    }
    let (mut spool, rec) = Spool::open(dir.path(), 1 << 30).expect("reopen");
    assert_eq!(
        (rec.records, rec.dropped_bytes),
        (2, 0),
        "commits are not persisted: both records come back (idempotent writes)"
    );
    assert_eq!(drain(&mut spool), vec![0, 1, 2, 3]);
}

#[test]
fn a_torn_tail_is_cut_and_the_valid_records_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut spool, _) = Spool::open(dir.path(), 1 << 30).expect("open");
        for i in 0..3 {
            spool.append(&batch(i * 10, 2)).expect("append");
        }
    }
    let file = segment_files(dir.path()).remove(0);
    let len = fs::metadata(&file).expect("meta").len();
    OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open")
        .set_len(len - 7)
        .expect("truncate");

    let (mut spool, rec) = Spool::open(dir.path(), 1 << 30).expect("recovers");
    assert_eq!(rec.records, 2);
    assert!(rec.dropped_bytes > 0);
    assert_eq!(
        fs::metadata(&file).expect("meta").len() + rec.dropped_bytes,
        len - 7,
        "tail cut on disk"
    );
    spool.append(&batch(99, 1)).expect("appending continues");
    assert_eq!(drain(&mut spool), vec![0, 1, 10, 11, 99]);
}

#[test]
fn a_corrupt_record_ends_its_segment_and_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut spool, _) = Spool::open(dir.path(), 1 << 30).expect("open");
        for i in 0..3 {
            spool.append(&batch(i * 10, 1)).expect("append");
        }
    }
    let file = segment_files(dir.path()).remove(0);
    let mut bytes = fs::read(&file).expect("read");
    let second = record::scan(&bytes).0[1];
    bytes[second.offset + record::HEADER_LEN + 3] ^= 0xff; // flip a payload bit
    fs::write(&file, &bytes).expect("write");
    let (mut spool, rec) = Spool::open(dir.path(), 1 << 30).expect("recovers");
    assert_eq!(
        rec.records, 1,
        "only the record before the corruption is trusted"
    );
    assert_eq!(rec.dropped_bytes as usize, bytes.len() - second.offset);
    assert_eq!(drain(&mut spool), vec![0]);
}

#[test]
fn garbage_and_empty_files_never_stop_the_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("00000000000000000001.spool"),
        b"not a spool at all",
    )
    .expect("write");
    fs::write(dir.path().join("00000000000000000002.spool"), b"").expect("write");
    fs::write(dir.path().join("notes.txt"), b"ignored").expect("write");
    let (mut spool, rec) = Spool::open(dir.path(), 1 << 30).expect("open");
    assert_eq!((rec.records, rec.dropped_bytes), (0, 18));
    assert!(spool.is_empty());
    spool.append(&batch(1, 1)).expect("append");
    assert_eq!(drain(&mut spool), vec![1]);
}

#[test]
fn the_size_cap_drops_the_oldest_rows_and_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = record::encode(&batch(0, 50)).expect("encode").len() as u64;
    let (mut spool, _) = Spool::open(dir.path(), one * 3 + 10).expect("open");
    let mut dropped = 0;
    for i in 0..5 {
        dropped += spool.append(&batch(i * 50, 50)).expect("append");
    }
    let counts = spool.counts();
    assert!(counts.bytes <= one * 3 + 10, "{counts:?}");
    assert_eq!(dropped, counts.rows_dropped_cap);
    assert_eq!(
        counts.rows + counts.rows_dropped_cap,
        250,
        "every row is spooled or counted as dropped"
    );
    let ids = drain(&mut spool);
    assert_eq!(ids.last(), Some(&249), "the newest rows are kept");
}

#[test]
fn an_unusable_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").expect("write");
    let err = Spool::open(&file.join("spool"), 1 << 20).expect_err("not a folder");
    assert!(err.to_string().contains("SPOOL_DIR"), "{err}");
}

#[test]
fn a_second_open_of_a_folder_in_use_is_refused_and_leaves_the_segments_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(dir.path(), 1 << 30).expect("open");
    spool.append(&batch(0, 10)).expect("append");
    let segment = segment_files(dir.path()).pop().expect("a segment");
    // Half a record more, as an append in flight looks to another reader.
    let mut bytes = fs::read(&segment).expect("read");
    let before = bytes.len();
    bytes.extend_from_slice(b"MSP1\x10\x00\x00");
    fs::write(&segment, &bytes).expect("write");
    let err = Spool::open(dir.path(), 1 << 30).expect_err("the folder is in use");
    assert!(
        matches!(err, SpoolError::Locked { .. }) && err.to_string().contains("SPOOL_DIR"),
        "{err}"
    );
    assert_eq!(
        fs::read(&segment).expect("read").len(),
        before + 7,
        "the refused open cut nothing"
    );
    drop(spool);
    let (_, rec) = Spool::open(dir.path(), 1 << 30).expect("free again after the drop");
    assert_eq!((rec.rows, rec.dropped_bytes), (10, 7));
}
