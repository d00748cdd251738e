//! The store as the state machine a `raft-host` driver replicates.

use crate::command::{Query, Response};
use crate::store::KvStore;

impl raft_host::StateMachine for KvStore {
    type Query = Query;
    type Response = Response;

    fn apply(&mut self, index: raft_core::LogIndex, command: &[u8]) -> Response {
        self.apply_bytes_at(index, command)
    }

    fn log_time_ms(&self) -> u64 {
        KvStore::log_time_ms(self)
    }

    fn stamp(&self, command: &mut [u8], now_ms: u64) {
        crate::stamp(command, now_ms)
    }

    fn query(&self, query: &Query) -> Response {
        KvStore::query(self, query)
    }

    fn snapshot(&self) -> Vec<u8> {
        KvStore::snapshot(self)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        *self = KvStore::restore(snapshot).map_err(|error| error.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, KvStore, Operation, Query, Response};
    use raft_host::StateMachine;

    #[test]
    fn the_store_replicates_through_the_trait() {
        let mut store = KvStore::default();
        let open = Command { client: 0, sequence: 0, operation: Operation::OpenSession };
        assert_eq!(StateMachine::apply(&mut store, 1, &open.encode()), Response::SessionOpened { client: 1 });
        let set = Command {
            client: 1,
            sequence: 1,
            operation: Operation::Set { key: "k".into(), value: "v".into() },
        };
        assert_eq!(StateMachine::apply(&mut store, 2, &set.encode()), Response::Done);
        assert!(matches!(StateMachine::apply(&mut store, 3, b"junk"), Response::Error(_)));
        let get = Query::Get { key: "k".into() };
        assert_eq!(StateMachine::query(&store, &get), Response::Value(Some("v".into())));
        let mut restored = KvStore::default();
        StateMachine::restore(&mut restored, &StateMachine::snapshot(&store)).unwrap();
        assert_eq!(restored, store);
        assert!(StateMachine::restore(&mut restored, b"\x09garbage").is_err());
    }
}
