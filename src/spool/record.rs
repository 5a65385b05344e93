//! Spool record framing: `MSP1 | payload length u32 | row count u32 | crc32 u32 | payload`.
//!
//! All integers are little-endian; the CRC covers the row count and the payload. The payload
//! is the JSON of one [`Batch`]. A reader stops at the first record that does not check out
//! (torn tail, truncation, bit rot) and reports how many bytes it could not use.

use crate::rows::Batch;

/// Marks the start of every record.
pub const MAGIC: [u8; 4] = *b"MSP1";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;
/// Larger records are taken as corruption (a batch is at most `MAX_ROWS_PER_WRITE` rows).
pub const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

/// Encodes one batch as a record.
pub fn encode(batch: &Batch) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(batch)?;
    let rows = u32::try_from(batch.len()).unwrap_or(u32::MAX);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&rows.to_le_bytes());
    crc.update(&payload);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&rows.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// A valid record found at `offset` of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    pub offset: usize,
    /// Total length including the header.
    pub len: usize,
    pub rows: u32,
}

/// Checks the record at `offset`; `None` when it is incomplete or corrupt.
pub fn check(buf: &[u8], offset: usize) -> Option<RecordSpan> {
    let header = buf.get(offset..offset.checked_add(HEADER_LEN)?)?;
    if header[0..4] != MAGIC {
        return None;
    }
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let payload_len = word(4) as usize;
    let rows = word(8);
    let crc = word(12);
    if payload_len > MAX_PAYLOAD {
        return None;
    }
    let start = offset + HEADER_LEN;
    let payload = buf.get(start..start.checked_add(payload_len)?)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&rows.to_le_bytes());
    hasher.update(payload);
    (hasher.finalize() == crc).then_some(RecordSpan {
        offset,
        len: HEADER_LEN + payload_len,
        rows,
    })
}

/// Scans a whole segment: the valid records from the start, and the offset where validity
/// ends (`buf.len()` when the segment is intact).
pub fn scan(buf: &[u8]) -> (Vec<RecordSpan>, usize) {
    let mut spans = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        match check(buf, offset) {
            Some(span) => {
                offset += span.len;
                spans.push(span);
            }
            None => break,
        }
    }
    (spans, offset)
}

/// Decodes the batch of a checked record.
pub fn decode(buf: &[u8], span: RecordSpan) -> Result<Batch, serde_json::Error> {
    serde_json::from_slice(&buf[span.offset + HEADER_LEN..span.offset + span.len])
}
