//! The bincode encoding of commands and snapshots, bounded so untrusted bytes cannot
//! make the decoder panic or allocate without limit.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest command, or item of a snapshot (the sessions, one key and its value),
/// the decoder accepts. Bounds what a hostile length prefix can make it allocate. A
/// snapshot itself has no bound: it is read an item at a time.
pub const MAX_ENCODED_BYTES: usize = 512 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_ENCODED_BYTES>()
}

#[cfg(test)]
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a vector cannot fail for these types: no maps with non-string keys,
    // no custom serializers; the limit applies only when decoding.
    bincode::serde::encode_to_vec(value, config()).expect("kv types always encode")
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(DecodeError::TooLarge { bytes: bytes.len() });
    }
    let (value, read): (T, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|error| DecodeError::Malformed(error.to_string()))?;
    if read != bytes.len() {
        return Err(DecodeError::TrailingBytes { extra: bytes.len() - read });
    }
    Ok(value)
}

/// Writes one value's bytes to `out`.
pub(crate) fn encode_to<T: Serialize>(value: &T, out: &mut impl std::io::Write) -> std::io::Result<()> {
    bincode::serde::encode_into_std_write(value, out, config()).map(|_| ()).map_err(|error| match error {
        bincode::error::EncodeError::Io { inner, .. } => inner,
        other => std::io::Error::other(other.to_string()),
    })
}

/// Reads one value from `input`, at most [`MAX_ENCODED_BYTES`] of it.
pub(crate) fn decode_from<T: DeserializeOwned>(input: &mut impl std::io::Read) -> Result<T, DecodeError> {
    bincode::serde::decode_from_std_read(input, config()).map_err(|error| match error {
        bincode::error::DecodeError::Io { inner, .. }
            if inner.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            DecodeError::Malformed("truncated".to_string())
        }
        other => DecodeError::Malformed(other.to_string()),
    })
}

/// Why bytes are not a command or a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input exceeds [`MAX_ENCODED_BYTES`].
    TooLarge {
        /// The input's length.
        bytes: usize,
    },
    /// The bytes do not decode (the decoder's message).
    Malformed(String),
    /// A value decoded but bytes were left over.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge { bytes } => {
                write!(f, "{bytes} bytes is more than the {MAX_ENCODED_BYTES}-byte limit")
            }
            DecodeError::Malformed(why) => write!(f, "malformed: {why}"),
            DecodeError::TrailingBytes { extra } => write!(f, "{extra} trailing bytes after the value"),
        }
    }
}

impl std::error::Error for DecodeError {}
