//! Client sessions: what makes a retried command apply exactly once (Raft thesis §6.3),
//! and how sessions end.
//!
//! A client first opens a session ([`crate::Operation::OpenSession`], `KV.SESSION`): the
//! store gives it the id of the entry that opened it, an id never handed out again.
//! It then numbers its writes 1, 2, 3… and has one outstanding at a time, so
//! remembering its last sequence number and that command's response is enough: the
//! same number again is a retry (answer from memory), a lower one is a late copy of a
//! command the client has given up on or already seen answered (refuse it), a higher
//! one is new. Opening has no effect but the session, so a retried open is harmless
//! (it leaves an unused session, which expires).
//!
//! Why the store, not the client, picks the id: once sessions expire, a store that let
//! a command open a session under an id the client chose could not tell a retry of a
//! client's first write, arriving after its session expired, from a new client's first
//! write, and would apply it twice. (The simulator found exactly that: a write applied,
//! its session evicted, the retry applied again, a read seeing the value come back.)
//! An id the store handed out and no longer holds is certainly expired.
//!
//! ## Expiry, through the log
//! Sessions cannot live forever (every `kv client` run opens one), and no replica may
//! decide on its own clock when one ends, or replicas would disagree about which retries
//! apply. Time comes from the log instead: the leader puts a [`crate::Operation::Clock`]
//! entry through it now and then, carrying the leader's log time and the
//! [`SessionPolicy`]; applying it advances the store's log time (never backwards, so a
//! leader with a slow clock cannot take time back) and drops, on every replica at once,
//! each session unused for the policy's idle timeout, then the least recently used ones
//! past its bound. A session used since the latest clock entry counts as used at the
//! next one: a session may outlive its timeout by one clock interval, never the other
//! way round. A command of a client whose session is gone is refused with
//! [`KvError::SessionExpired`]: its client must open a new session, and cannot know
//! whether its last write before the expiry applied.

use crate::command::{ClientId, KvError, Response, Sequence};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A session's `last_used_ms` while it has been used since the latest clock entry: the
/// next clock entry stamps it with its own time.
const USED_SINCE_LAST_CLOCK: u64 = u64::MAX;

/// A client's last applied command and its response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The sequence number of the client's last applied command.
    pub last_sequence: Sequence,
    /// What that command answered.
    pub last_response: Response,
    /// The log time (milliseconds) of the first clock entry after the session's last
    /// use; `u64::MAX` while no clock entry has followed it yet.
    pub last_used_ms: u64,
}

/// How long sessions live and how many there may be: set by the leader's configuration,
/// carried in each clock entry, so every replica applies the same policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPolicy {
    /// A session unused for this much log time (milliseconds) is dropped; 0 never.
    pub idle_timeout_ms: u64,
    /// The most sessions kept; past it the least recently used go first. 0: no bound.
    pub max_sessions: u64,
}

/// What to do with a command, given its client's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Not seen before: apply it.
    Apply,
    /// A retry of the last command: answer this without applying anything.
    Duplicate(Response),
    /// Older than the last command, or its client has no session: refuse it.
    Stale(KvError),
}

/// Every client's session, in client order (the order snapshots are written in), with
/// the log time and the session policy the latest clock entry set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    by_client: BTreeMap<ClientId, Session>,
    log_time_ms: u64,
    policy: SessionPolicy,
    expired_total: u64,
}

impl Sessions {
    /// Decides what a command numbered `sequence` from `client` does.
    pub fn admit(&self, client: ClientId, sequence: Sequence) -> Admission {
        if sequence == 0 {
            return Admission::Apply;
        }
        match self.by_client.get(&client) {
            Some(session) if sequence == session.last_sequence => {
                Admission::Duplicate(session.last_response.clone())
            }
            Some(session) if sequence < session.last_sequence => {
                Admission::Stale(KvError::StaleSequence { last: session.last_sequence })
            }
            Some(_) => Admission::Apply,
            None => Admission::Stale(KvError::SessionExpired { client }),
        }
    }

    /// Opens a session for `client` (the index of the entry opening it), evicting the
    /// least recently used session first if the table is at the policy's bound.
    pub fn open(&mut self, client: ClientId) {
        let bound = self.policy.max_sessions;
        if bound > 0 && self.by_client.len() as u64 >= bound {
            self.evict_least_recently_used(self.by_client.len() as u64 + 1 - bound);
        }
        let session =
            Session { last_sequence: 0, last_response: Response::Done, last_used_ms: USED_SINCE_LAST_CLOCK };
        self.by_client.insert(client, session);
    }

    /// Remembers that `client`'s command `sequence` was applied and answered `response`
    /// (a client [`Sessions::admit`] let through: one with a session, or sequence 0).
    pub fn record(&mut self, client: ClientId, sequence: Sequence, response: &Response) {
        if sequence == 0 {
            return;
        }
        if let Some(session) = self.by_client.get_mut(&client) {
            session.last_sequence = sequence;
            session.last_response.clone_from(response);
            session.last_used_ms = USED_SINCE_LAST_CLOCK;
        }
    }

    /// Applies a clock entry: log time advances to `now_ms` (never back), `policy` takes
    /// effect, and sessions idle past its timeout or beyond its bound are dropped.
    /// Returns how many were dropped.
    pub fn advance_clock(&mut self, now_ms: u64, policy: SessionPolicy) -> u64 {
        self.log_time_ms = self.log_time_ms.max(now_ms);
        self.policy = policy;
        let now = self.log_time_ms;
        let before = self.by_client.len();
        self.by_client.retain(|_, session| {
            if session.last_used_ms == USED_SINCE_LAST_CLOCK {
                session.last_used_ms = now;
            }
            policy.idle_timeout_ms == 0 || now - session.last_used_ms < policy.idle_timeout_ms
        });
        let idle = (before - self.by_client.len()) as u64;
        self.expired_total += idle;
        let mut evicted = 0;
        if policy.max_sessions > 0 && self.by_client.len() as u64 > policy.max_sessions {
            evicted = self.evict_least_recently_used(self.by_client.len() as u64 - policy.max_sessions);
        }
        idle + evicted
    }

    /// Drops the `count` least recently used sessions (the lowest client id first among
    /// equals, so every replica drops the same ones), counts them as expired, and
    /// returns how many. Linear in the table (a selection, not a sort): a full table
    /// evicts on every new session.
    fn evict_least_recently_used(&mut self, count: u64) -> u64 {
        let mut by_age: Vec<(u64, ClientId)> =
            self.by_client.iter().map(|(&client, session)| (session.last_used_ms, client)).collect();
        let count = (count as usize).min(by_age.len());
        if count == 0 {
            return 0;
        }
        // Keys are distinct (one per client), so the `count` smallest are one set on
        // every replica whatever order the selection leaves them in.
        by_age.select_nth_unstable(count - 1);
        for &(_, client) in &by_age[..count] {
            self.by_client.remove(&client);
        }
        self.expired_total += count as u64;
        count as u64
    }

    /// Whether a clock entry at `now_ms` under `policy` would change anything: a session
    /// used since the last one (its use gets a time), one due to expire, a table past
    /// the bound, or a new policy. The leader proposes one only then, so an idle
    /// cluster's log stays quiet.
    pub fn clock_due(&self, now_ms: u64, policy: SessionPolicy) -> bool {
        if policy != self.policy {
            return true;
        }
        if now_ms <= self.log_time_ms {
            return false;
        }
        if policy.max_sessions > 0 && self.by_client.len() as u64 > policy.max_sessions {
            return true;
        }
        self.by_client.values().any(|session| {
            session.last_used_ms == USED_SINCE_LAST_CLOCK
                || (policy.idle_timeout_ms > 0 && now_ms - session.last_used_ms >= policy.idle_timeout_ms)
        })
    }

    /// The session of `client`, if it has one.
    pub fn get(&self, client: ClientId) -> Option<&Session> {
        self.by_client.get(&client)
    }

    /// How many clients have a session.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Whether no client has a session.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// The log time (milliseconds) of the latest clock entry applied; 0 before any.
    pub fn log_time_ms(&self) -> u64 {
        self.log_time_ms
    }

    /// The policy of the latest clock entry applied (none before any: no expiry, no bound).
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// How many sessions clock entries and the bound have dropped, in all.
    pub fn expired_total(&self) -> u64 {
        self.expired_total
    }
}

/// A store snapshot of format 1 (before expiry): its data and its sessions, each taken
/// as used since the latest clock entry (the first clock entry stamps them all).
pub(crate) fn decode_format_1(
    bytes: &[u8],
) -> Result<(BTreeMap<crate::Bytes, crate::Bytes>, Sessions), crate::DecodeError> {
    #[derive(Deserialize)]
    struct SessionV1 {
        last_sequence: Sequence,
        last_response: Response,
    }
    #[derive(Deserialize)]
    struct SessionsV1 {
        by_client: BTreeMap<ClientId, SessionV1>,
    }
    #[derive(Deserialize)]
    struct StoreV1 {
        data: BTreeMap<crate::Bytes, crate::Bytes>,
        sessions: SessionsV1,
    }
    let store: StoreV1 = crate::codec::decode(bytes)?;
    let by_client = store
        .sessions
        .by_client
        .into_iter()
        .map(|(client, old)| {
            let session = Session {
                last_sequence: old.last_sequence,
                last_response: old.last_response,
                last_used_ms: USED_SINCE_LAST_CLOCK,
            };
            (client, session)
        })
        .collect();
    Ok((store.data, Sessions { by_client, ..Sessions::default() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_number_is_a_retry_a_lower_one_is_stale_a_higher_one_is_new() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.admit(1, 1), Admission::Stale(KvError::SessionExpired { client: 1 }), "not open");
        sessions.open(1);
        assert_eq!(sessions.admit(1, 1), Admission::Apply);
        sessions.record(1, 1, &Response::Done);
        assert_eq!(sessions.admit(1, 1), Admission::Duplicate(Response::Done));
        assert_eq!(sessions.admit(1, 2), Admission::Apply);
        sessions.record(1, 2, &Response::Deleted { existed: true });
        assert_eq!(sessions.admit(1, 1), Admission::Stale(KvError::StaleSequence { last: 2 }));
        assert_eq!(sessions.admit(1, 2), Admission::Duplicate(Response::Deleted { existed: true }));
        // Other clients are independent.
        sessions.open(2);
        assert_eq!(sessions.admit(2, 1), Admission::Apply);
    }

    #[test]
    fn sequence_zero_is_sessionless() {
        let mut sessions = Sessions::default();
        sessions.record(1, 0, &Response::Done);
        assert!(sessions.is_empty());
        assert_eq!(sessions.admit(1, 0), Admission::Apply);
    }

    #[test]
    fn idle_sessions_expire_by_log_time_and_a_late_command_is_refused() {
        let policy = SessionPolicy { idle_timeout_ms: 1_000, max_sessions: 0 };
        let mut sessions = Sessions::default();
        sessions.open(1);
        sessions.open(2);
        assert!(sessions.clock_due(100, policy));
        assert_eq!(sessions.advance_clock(100, policy), 0, "both used: stamped 100");
        assert_eq!(sessions.get(1).map(|session| session.last_used_ms), Some(100));
        sessions.record(2, 2, &Response::Done);
        assert!(!sessions.clock_due(100, policy), "log time does not move backwards or stand still");
        assert_eq!(sessions.advance_clock(1_050, policy), 0, "client 2 used since: stamped 1050");
        assert!(!sessions.clock_due(1_099, policy), "nothing due before 1100");
        assert!(sessions.clock_due(1_100, policy));
        // A slower clock (a new leader's) cannot take log time back.
        assert_eq!(sessions.advance_clock(500, policy), 0);
        assert_eq!(sessions.log_time_ms(), 1_050);
        assert_eq!(sessions.advance_clock(1_100, policy), 1, "client 1 idle 1000 ms");
        assert_eq!(sessions.admit(1, 2), Admission::Stale(KvError::SessionExpired { client: 1 }));
        assert_eq!(sessions.admit(2, 3), Admission::Apply);
        assert_eq!(sessions.expired_total(), 1);
    }

    #[test]
    fn past_the_bound_the_least_recently_used_session_goes() {
        let policy = SessionPolicy { idle_timeout_ms: 0, max_sessions: 2 };
        let mut sessions = Sessions::default();
        sessions.advance_clock(10, policy);
        sessions.open(1);
        sessions.advance_clock(20, policy);
        sessions.open(2);
        sessions.advance_clock(30, policy);
        sessions.open(3);
        assert_eq!(sessions.len(), 2);
        assert!(sessions.get(1).is_none(), "client 1 was used longest ago");
        // A lowered bound takes effect at the next clock entry.
        let tighter = SessionPolicy { max_sessions: 1, ..policy };
        assert!(sessions.clock_due(30, tighter));
        assert_eq!(sessions.advance_clock(40, tighter), 1);
        assert!(sessions.get(3).is_some());
    }
}
