//! The write-ahead log's records and their framing.
//!
//! A segment is a sequence of frames, each `[payload length: u32 LE][CRC-32 of the
//! length: u32 LE][CRC-32 of the payload: u32 LE][payload]`, the payload a bincode
//! [`WalRecord`]. The length has its own checksum so a damaged length is told from a
//! record cut short: with it, recovery knows where every intact record ends, and a
//! damaged frame counts as a torn tail only if no intact frame follows it anywhere. The first record of
//! a segment says what the segment is: a [`WalRecord::Checkpoint`] (the log restarts from
//! a snapshot, or from nothing) or a [`WalRecord::Continue`] (the log goes on from the
//! previous segment).

use raft_core::{Entry, LogIndex, Snapshot};
use serde::{Deserialize, Serialize};

/// Bytes in a frame's header: the length and the checksum.
pub(crate) const FRAME_HEADER_BYTES: usize = 12;

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WalRecord {
    /// The first record of a segment that starts the log afresh: from the snapshot
    /// `snapshot` names (its file holds the data), or from an empty log. The entries
    /// the log keeps after the snapshot follow as `Entries` records.
    Checkpoint {
        /// The segment's own sequence number (its file name says the same).
        sequence: u64,
        /// The snapshot the log restarts from, if any (its bytes are in its own file).
        snapshot: Option<Snapshot>,
    },
    /// The first record of a segment that continues the one before it.
    Continue {
        /// The segment's own sequence number.
        sequence: u64,
    },
    /// Entries appended after the current last one.
    Entries(Vec<Entry>),
    /// Every entry at or after `from` removed.
    Truncate {
        /// The first index removed.
        from: LogIndex,
    },
}

fn codec() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Appends `record` to `out` as one frame.
pub(crate) fn encode_frame(record: &WalRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    bincode::serde::encode_into_std_write(record, out, codec()).expect("writing into a Vec cannot fail");
    let payload_len = out.len() - start - FRAME_HEADER_BYTES;
    let length = u32::try_from(payload_len).expect("a WAL record is under 4 GiB (the core bounds messages)");
    let payload_crc = crc32fast::hash(&out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc32fast::hash(&length.to_le_bytes()).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&payload_crc.to_le_bytes());
}

/// The payload's range if an intact frame starts at `offset`.
fn intact_frame_at(bytes: &[u8], offset: usize) -> Option<std::ops::Range<usize>> {
    let header = bytes.get(offset..offset + FRAME_HEADER_BYTES)?;
    let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(&header[0..4]) != word(4) {
        return None;
    }
    let payload = offset + FRAME_HEADER_BYTES..offset + FRAME_HEADER_BYTES + word(0) as usize;
    (payload.end <= bytes.len() && crc32fast::hash(&bytes[payload.clone()]) == word(8)).then_some(payload)
}

/// Whether an intact frame starts anywhere at or after `from`: damage before one is
/// damage in the middle of the log, not a torn tail.
fn intact_frame_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len().saturating_sub(FRAME_HEADER_BYTES - 1))
        .any(|offset| intact_frame_at(bytes, offset).is_some())
}

/// The granularity at which a file system may leave zeros where a crash cut an append.
const ZERO_FILL_BLOCK_BYTES: usize = 512;

/// Whether the bytes are zeros from a block boundary at or after `offset` and before
/// `frame_end` to the end of the file: a frame cut by a zero-filled block.
fn zero_filled_from_a_block_boundary(bytes: &[u8], offset: usize, frame_end: usize) -> bool {
    let nonzero_end = bytes.iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1);
    let boundary = nonzero_end.max(offset).next_multiple_of(ZERO_FILL_BLOCK_BYTES);
    boundary < frame_end
}

/// What is found at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole record, and the offset just after it.
    Record(WalRecord, usize),
    /// The end of the bytes, exactly at a frame boundary.
    End,
    /// The rest of the bytes is not a whole, intact record; `reaches_end`: the bad
    /// frame runs to the end of the bytes (or the rest is zeros), as a write torn by a
    /// crash leaves it, rather than being followed by more data.
    Damaged {
        /// What is wrong.
        why: String,
        /// Whether nothing follows the damage.
        reaches_end: bool,
    },
}

/// Reads the frame at `offset` of `bytes`.
pub(crate) fn decode_frame(bytes: &[u8], offset: usize) -> Frame {
    let rest = &bytes[offset..];
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.iter().all(|&byte| byte == 0) {
        // A file system may extend a file with zeros when a crash cuts an append short.
        return Frame::Damaged { why: "zeros where a record should start".into(), reaches_end: true };
    }
    if rest.len() < FRAME_HEADER_BYTES {
        return Frame::Damaged {
            why: format!("{} bytes, less than a record header", rest.len()),
            reaches_end: true,
        };
    }
    let Some(payload) = intact_frame_at(bytes, offset) else {
        let length = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
        let length_intact =
            crc32fast::hash(&rest[0..4]) == u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let frame_end = offset + FRAME_HEADER_BYTES + if length_intact { length as usize } else { 0 };
        let (why, cut_short) = if !length_intact {
            ("a damaged record header".to_string(), false)
        } else if frame_end > bytes.len() {
            (format!("a record of {length} bytes but only {} follow", rest.len() - FRAME_HEADER_BYTES), true)
        } else {
            ("a record whose checksum does not match".to_string(), false)
        };
        // A crash leaves a prefix of what was appended (a frame cut short), or, on some
        // file systems, zeros from a block boundary on. A whole frame that fails its
        // checksum with neither is damage to synced bytes (a flipped bit), never a torn
        // write, even at the very end: cutting it would drop an entry that was durable.
        let torn = cut_short || zero_filled_from_a_block_boundary(bytes, offset, frame_end);
        return Frame::Damaged { why, reaches_end: torn && !intact_frame_after(bytes, offset + 1) };
    };
    match bincode::serde::decode_from_slice::<WalRecord, _>(&bytes[payload.clone()], codec()) {
        Ok((record, read)) if read == payload.len() => Frame::Record(record, payload.end),
        // An intact checksum over bytes that are not a record: written so, not torn.
        Ok(_) => Frame::Damaged { why: "trailing bytes inside a record".into(), reaches_end: false },
        Err(error) => {
            Frame::Damaged { why: format!("a record that does not decode ({error})"), reaches_end: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::EntryPayload;

    fn entries() -> WalRecord {
        WalRecord::Entries(vec![Entry {
            term: 2,
            index: 7,
            payload: EntryPayload::Command(b"set".to_vec().into()),
        }])
    }

    #[test]
    fn frames_round_trip_one_after_another() {
        let mut bytes = Vec::new();
        encode_frame(&WalRecord::Continue { sequence: 3 }, &mut bytes);
        encode_frame(&entries(), &mut bytes);
        let Frame::Record(first, next) = decode_frame(&bytes, 0) else { panic!() };
        assert_eq!(first, WalRecord::Continue { sequence: 3 });
        let Frame::Record(second, end) = decode_frame(&bytes, next) else { panic!() };
        assert_eq!(second, entries());
        assert_eq!(decode_frame(&bytes, end), Frame::End);
    }

    #[test]
    fn a_cut_anywhere_in_the_last_frame_is_damage_that_reaches_the_end() {
        let mut bytes = Vec::new();
        encode_frame(&entries(), &mut bytes);
        for cut in 1..bytes.len() {
            match decode_frame(&bytes[..cut], 0) {
                Frame::Damaged { reaches_end: true, .. } => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_flipped_bit_before_more_records_is_damage_in_the_middle() {
        let mut bytes = Vec::new();
        encode_frame(&entries(), &mut bytes);
        let first_len = bytes.len();
        encode_frame(&entries(), &mut bytes);
        for position in 0..first_len {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x10;
            match decode_frame(&damaged, 0) {
                Frame::Damaged { reaches_end: false, .. } => {}
                other => panic!("bit flipped at {position}: {other:?}"),
            }
        }
    }

    /// Found by the simulator (a bit flipped in the last synced record of a segment was
    /// cut off as a torn tail, and the node restarted without a durable entry).
    #[test]
    fn a_flipped_bit_in_the_last_whole_frame_is_damage_not_a_torn_tail() {
        let mut bytes = Vec::new();
        encode_frame(&entries(), &mut bytes);
        for position in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[position] ^= 1 << bit;
                if let Frame::Damaged { reaches_end: true, why } = decode_frame(&damaged, 0) {
                    // Only a flip that leaves zeros from a block boundary on may look torn.
                    let nonzero_end = damaged.iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1);
                    assert!(nonzero_end % ZERO_FILL_BLOCK_BYTES == 0, "flip at {position}.{bit}: {why}");
                }
            }
        }
    }

    #[test]
    fn zeros_from_a_block_boundary_inside_the_last_frame_are_a_torn_tail() {
        let mut bytes = Vec::new();
        let big = WalRecord::Entries(
            (1..=40)
                .map(|index| Entry { term: 1, index, payload: EntryPayload::Command(vec![7; 40].into()) })
                .collect(),
        );
        encode_frame(&big, &mut bytes);
        assert!(bytes.len() > 2 * ZERO_FILL_BLOCK_BYTES);
        let mut zeroed = bytes.clone();
        zeroed[ZERO_FILL_BLOCK_BYTES..].fill(0);
        assert!(matches!(decode_frame(&zeroed, 0), Frame::Damaged { reaches_end: true, .. }));
        // Zeros in the middle of a whole frame, with data after them, are damage.
        let mut zeroed = bytes.clone();
        zeroed[ZERO_FILL_BLOCK_BYTES + 10..ZERO_FILL_BLOCK_BYTES + 90].fill(0);
        assert!(matches!(decode_frame(&zeroed, 0), Frame::Damaged { reaches_end: false, .. }));
    }
}
