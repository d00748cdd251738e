//! `INFO [section ...]`: which sections a client asked for, as Redis reads it.

/// The sections of `INFO`, a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoSections(u16);

impl InfoSections {
    /// `# Server`: version, process, port, uptime.
    pub const SERVER: InfoSections = InfoSections(1);
    /// `# Clients`.
    pub const CLIENTS: InfoSections = InfoSections(1 << 1);
    /// `# Memory`.
    pub const MEMORY: InfoSections = InfoSections(1 << 2);
    /// `# Stats`.
    pub const STATS: InfoSections = InfoSections(1 << 3);
    /// `# Replication`.
    pub const REPLICATION: InfoSections = InfoSections(1 << 4);
    /// `# CPU`.
    pub const CPU: InfoSections = InfoSections(1 << 5);
    /// `# Sessions`: the exactly-once sessions.
    pub const SESSIONS: InfoSections = InfoSections(1 << 6);
    /// `# Keyspace`.
    pub const KEYSPACE: InfoSections = InfoSections(1 << 7);
    /// `# Raft`: what `RAFT.INFO` says.
    pub const RAFT: InfoSections = InfoSections(1 << 8);
    /// Every section (`INFO`, `INFO all`, `INFO default`, `INFO everything`).
    pub const ALL: InfoSections = InfoSections((1 << 9) - 1);

    const NAMES: [(&'static str, InfoSections); 9] = [
        ("server", InfoSections::SERVER),
        ("clients", InfoSections::CLIENTS),
        ("memory", InfoSections::MEMORY),
        ("stats", InfoSections::STATS),
        ("replication", InfoSections::REPLICATION),
        ("cpu", InfoSections::CPU),
        ("sessions", InfoSections::SESSIONS),
        ("keyspace", InfoSections::KEYSPACE),
        ("raft", InfoSections::RAFT),
    ];

    /// The sections `INFO`'s arguments name: none, `all`, `default` or `everything` is
    /// every section; other names are matched case-insensitively, and a name no
    /// section has selects nothing (Redis answers an empty text for it).
    pub fn parse(arguments: &[&[u8]]) -> InfoSections {
        if arguments.is_empty() {
            return InfoSections::ALL;
        }
        let mut selected = 0;
        for argument in arguments {
            let name = String::from_utf8_lossy(argument).to_ascii_lowercase();
            if matches!(name.as_str(), "all" | "default" | "everything") {
                return InfoSections::ALL;
            }
            if let Some((_, section)) = InfoSections::NAMES.iter().find(|(known, _)| *known == name) {
                selected |= section.0;
            }
        }
        InfoSections(selected)
    }

    /// Whether `section` is among these.
    pub fn contains(self, section: InfoSections) -> bool {
        self.0 & section.0 == section.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_read_as_redis_reads_them() {
        assert_eq!(InfoSections::parse(&[]), InfoSections::ALL);
        assert_eq!(InfoSections::parse(&[b"EVERYTHING"]), InfoSections::ALL);
        let two = InfoSections::parse(&[b"clients", b"Memory"]);
        assert!(two.contains(InfoSections::CLIENTS) && two.contains(InfoSections::MEMORY));
        assert!(!two.contains(InfoSections::SERVER));
        assert_eq!(InfoSections::parse(&[b"nonsense"]), InfoSections(0));
    }
}
