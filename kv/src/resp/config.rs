//! `CONFIG GET` and `CONFIG SET`: the settings a server has, by Redis's names, with
//! Redis's replies. What may be set and how a value is read is decided here, where the
//! simulator can run it; the server only stores the typed [`Setting`].

use super::Reply;

/// The settings a server reports, as they are now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `maxclients`: client connections served at once.
    pub max_clients: u64,
    /// `timeout`: seconds a client may stay idle before it is closed; 0 never.
    pub idle_timeout_secs: u64,
    /// `proto-max-bulk-len`: the largest value (set at start).
    pub max_value_bytes: u64,
    /// `maxmemory`: writes that add data are refused past it (0: no bound).
    pub max_memory: u64,
}

/// A setting `CONFIG SET` may change while the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `maxclients` (at least 1).
    MaxClients(u64),
    /// `timeout` in seconds (0: never).
    IdleTimeoutSecs(u64),
    /// `maxmemory` in bytes (0: no bound).
    MaxMemory(u64),
}

/// A size as Redis reads `maxmemory`: bytes, or a number with `k`, `kb`, `m`, `mb`,
/// `g` or `gb` (k = 1000, kb = 1024, and so on), any case.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower.find(|character: char| !character.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return Err(format!("{text:?} is not a size (bytes, or a number with k, kb, m, mb, g or gb)")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or a number with k, kb, m, mb, g or gb)"))
}

/// Reads `CONFIG SET name value`, with Redis's error texts for what cannot be set.
pub fn parse_set(name: &[u8], value: &[u8]) -> Result<Setting, String> {
    let name_text = String::from_utf8_lossy(name).to_ascii_lowercase();
    let number = || -> Result<u64, String> {
        std::str::from_utf8(value).ok().and_then(|text| text.parse::<u64>().ok()).ok_or_else(|| {
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{name_text}') - argument couldn't be parsed into an integer"
            )
        })
    };
    match name_text.as_str() {
        "maxclients" => match number()? {
            0 => Err("ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 18446744073709551615 inclusive".into()),
            count => Ok(Setting::MaxClients(count)),
        },
        "timeout" => Ok(Setting::IdleTimeoutSecs(number()?)),
        "maxmemory" => match parse_memory(&String::from_utf8_lossy(value)) {
            Ok(bytes) => Ok(Setting::MaxMemory(bytes)),
            Err(_) => Err("ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value".into()),
        },
        "proto-max-bulk-len" => {
            Err("ERR CONFIG SET failed - 'proto-max-bulk-len' is set at start (kv server --max-value-bytes)".into())
        }
        _ => Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name_text}'")),
    }
}

/// Writes `CONFIG GET pattern`'s reply: the name and value of every setting whose name
/// matches the glob `pattern` (`crate::glob`; case-insensitive), as Redis does.
pub(crate) fn render_get(pattern: &[u8], settings: &Settings, reply: &mut Reply) {
    let (max_clients, timeout, max_bulk, max_memory) = (
        settings.max_clients.to_string(),
        settings.idle_timeout_secs.to_string(),
        settings.max_value_bytes.to_string(),
        settings.max_memory.to_string(),
    );
    let known = [
        ("appendfsync", "always"),
        ("appendonly", "yes"),
        ("databases", "1"),
        ("maxclients", max_clients.as_str()),
        ("maxmemory", max_memory.as_str()),
        ("maxmemory-policy", "noeviction"),
        ("proto-max-bulk-len", max_bulk.as_str()),
        ("save", ""),
        ("timeout", timeout.as_str()),
    ];
    let pattern = pattern.to_ascii_lowercase();
    let matching: Vec<_> =
        known.iter().filter(|(name, _)| crate::glob::matches(&pattern, name.as_bytes())).collect();
    reply.array(matching.len() * 2);
    for (name, value) in matching {
        reply.bulk(Some(name.as_bytes()));
        reply.bulk(Some(value.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: Settings =
        Settings { max_clients: 10_000, idle_timeout_secs: 0, max_value_bytes: 16 << 20, max_memory: 0 };

    fn get(pattern: &str) -> String {
        let mut reply = Reply::default();
        render_get(pattern.as_bytes(), &SETTINGS, &mut reply);
        String::from_utf8(reply.bytes).unwrap()
    }

    #[test]
    fn get_matches_names_by_glob_and_set_takes_what_can_change() {
        assert_eq!(get("maxclients"), "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n");
        assert_eq!(get("MAXCLIENTS"), get("maxclients"));
        assert!(get("*").starts_with("*18\r\n"));
        assert!(get("proto-*").contains("16777216"));
        assert_eq!(get("nothing"), "*0\r\n");
        assert_eq!(parse_set(b"maxclients", b"5"), Ok(Setting::MaxClients(5)));
        assert_eq!(parse_set(b"maxmemory", b"100mb"), Ok(Setting::MaxMemory(100 << 20)));
        assert_eq!(parse_set(b"maxmemory", b"2G"), Ok(Setting::MaxMemory(2_000_000_000)));
        assert!(parse_set(b"maxmemory", b"lots").unwrap_err().contains("memory value"));
        assert_eq!(
            get("maxmemory*"),
            "*4\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n"
        );
        assert_eq!(parse_set(b"TIMEOUT", b"0"), Ok(Setting::IdleTimeoutSecs(0)));
        assert!(parse_set(b"maxclients", b"0").unwrap_err().contains("between 1"));
        assert!(parse_set(b"timeout", b"x").unwrap_err().contains("couldn't be parsed into an integer"));
        assert!(parse_set(b"maxmemory-policy", b"allkeys-lru")
            .unwrap_err()
            .starts_with("ERR Unknown option"));
        assert!(parse_set(b"proto-max-bulk-len", b"1").unwrap_err().contains("--max-value-bytes"));
    }
}
