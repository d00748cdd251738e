//! Small whole files (the hard state, a snapshot) as `[magic: 8 bytes][CRC-32 of the
//! payload: u32 LE][payload]`, the payload bincode. A file is always replaced whole
//! (see `files::replace_atomically`), so a damaged one is damage, never a torn write.

use serde::de::DeserializeOwned;
use serde::Serialize;

fn codec() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// `value` sealed under `magic`.
pub(crate) fn seal<T: Serialize>(magic: &[u8; 8], value: &T) -> Vec<u8> {
    let payload = bincode::serde::encode_to_vec(value, codec()).expect("storage types always encode");
    let mut bytes = Vec::with_capacity(12 + payload.len());
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

/// The value sealed in `bytes` under `magic`, or what is wrong with them.
pub(crate) fn unseal<T: DeserializeOwned>(magic: &[u8; 8], bytes: &[u8]) -> Result<T, String> {
    if bytes.len() >= 12 && bytes[..6] == magic[..6] && bytes[6..8] != magic[6..8] {
        return Err(format!(
            "written in format {} and this build reads {}: start from an empty data directory, or run the build that wrote it",
            String::from_utf8_lossy(&bytes[..8]),
            String::from_utf8_lossy(magic)
        ));
    }
    if bytes.len() < 12 || &bytes[..8] != magic {
        return Err(format!("not a {} file", String::from_utf8_lossy(magic).trim_end_matches('\0')));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let payload = &bytes[12..];
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch (the file is damaged)".to_string());
    }
    match bincode::serde::decode_from_slice::<T, _>(payload, codec()) {
        Ok((value, read)) if read == payload.len() => Ok(value),
        Ok(_) => Err("trailing bytes after the contents".to_string()),
        Err(error) => Err(format!("contents do not decode: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_and_any_flipped_bit_is_caught() {
        let sealed = seal(b"TESTFIL1", &(7u64, "seven".to_string()));
        assert_eq!(unseal::<(u64, String)>(b"TESTFIL1", &sealed).unwrap(), (7, "seven".to_string()));
        for bit in 0..sealed.len() * 8 {
            let mut damaged = sealed.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(unseal::<(u64, String)>(b"TESTFIL1", &damaged).is_err(), "bit {bit}");
        }
        assert!(unseal::<(u64, String)>(b"OTHERFIL", &sealed).unwrap_err().contains("not a OTHERFIL"));
    }
}
