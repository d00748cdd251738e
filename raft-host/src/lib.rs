//! # raft-host: the node driver, sans-IO
//!
//! A [`Driver`] runs one Raft node the way a correct host must: it owns the
//! [`raft_core::RaftNode`], the replicated [`StateMachine`], the client requests waiting
//! for their entry to be applied or their read to be confirmed, the compaction policy,
//! and the effects that must wait until the writes before them are durable. It does no
//! IO itself. Like the core it is deterministic: no clock, no files, no sockets, no
//! threads, no environment, no global RNG. The simulator and the real server both run
//! it, so the simulator tests the host code that runs in production.
//!
//! ## Inputs
//! - [`Driver::start`]: build the node from the durable image its storage read back
//!   (hard state, snapshot, entries) and an empty state machine, restored from the
//!   snapshot.
//! - [`Driver::tick`]: one unit of logical time (the IO layer ticks on a timer).
//! - [`Driver::receive`] / [`Driver::receive_bytes`]: a message from a peer; a frame that
//!   does not decode is counted and dropped.
//! - [`Driver::submit`]: a client [`Request`] with an id of the caller's choosing.
//!   Writes and reads are queued and stepped together (a run of writes as one step of
//!   the core: one append per follower, one entries write, one sync; a run of reads as
//!   one heartbeat round), when the outputs are next taken or before the next other
//!   input, whichever comes first; so an IO layer that submits the
//!   writes that arrived in one round and then takes the outputs batches them, and one
//!   that takes the outputs after each submit does not. Order is kept: every input
//!   reaches the core in the order it was given.
//! - [`Driver::durable`]: the IO layer's report that writes through an id are durable.
//!
//! ## Outputs
//! After every input, [`Driver::take_outputs`] hands over [`Output`]s, in order:
//! - `Write { id, write }`: perform the [`Write`] (hard state, entries, truncation,
//!   snapshot) after every earlier write. It is not durable until a sync covers it.
//! - `Sync { through }`: make every write through `through` durable, then call
//!   [`Driver::durable`]. At most one is outstanding; the next covers whatever was
//!   written meanwhile, so one fsync serves a whole batch (group commit).
//! - `Send(message)`: deliver best effort (`raft_core::encode_message` gives the bytes).
//! - `Answer { request, answer }`: tell the client. Every request gets exactly one
//!   [`Answer`]: applied, read, done, started, refused with the leader's id if known, or
//!   unknown (leadership lost, the entry overwritten, or waited too long: retry; a write
//!   retried with its session sequence applies once). Nothing waits forever.
//! - `Failed(reason)`: the node cannot go on (its state machine refused a snapshot).
//! - `Event(event)`: observations for checkers and metrics, with `observe` set.
//!
//! ## The IO layer's duties
//! 1. Perform writes in the order given, each after the ones before it.
//! 2. Call [`Driver::durable`] only once the writes are really durable (fsync returned):
//!    the driver releases votes, acknowledgements and client answers on that word.
//! 3. Deliver sends best effort; losing, delaying, duplicating or reordering is safe.
//! 4. After a crash, start a new driver from exactly what is durable.
//!
//! Everything else (what may leave before the disk, what must wait, when to snapshot,
//! which client to answer how, what the core hears of durability) is the driver's. A
//! leader's appends leave at once, in parallel with its own write (Raft thesis
//! §10.2.1); its votes, acknowledgements and answers wait for the disk. The core hears
//! that its log is durable (`Input::LogPersisted`) when that can change a commit: on a
//! leader, above its commit index.
//!
//! ## Example: a host loop for a one-node cluster
//! ```
//! use raft_host::{Answer, Driver, DriverConfig, MemorySnapshots, Output, Request, StateMachine};
//!
//! #[derive(Default)]
//! struct Counter(u64); // adds up the bytes of every command
//! impl StateMachine for Counter {
//!     type Query = ();
//!     type Response = u64;
//!     fn apply(&mut self, _index: u64, command: &[u8]) -> u64 { self.0 += command.len() as u64; self.0 }
//!     fn query(&self, _: &()) -> u64 { self.0 }
//!     fn snapshot(&self) -> Vec<u8> { self.0.to_le_bytes().to_vec() }
//!     fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
//!         self.0 = u64::from_le_bytes(bytes.try_into().map_err(|_| "not 8 bytes")?);
//!         Ok(())
//!     }
//! }
//!
//! let config = DriverConfig::new(raft_core::Config::new(1, vec![1]));
//! let mut driver =
//!     Driver::start(config, Default::default(), 7, Counter::default(), MemorySnapshots::default()).unwrap();
//! let (mut disk, mut answers, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
//! for tick in 0..300 {
//!     if tick == 250 { // the node has elected itself by now (timeouts of 100 to 200 ticks)
//!         driver.submit(1, Request::Write(b"hello".to_vec()));
//!     }
//!     driver.tick();
//!     driver.take_outputs(&mut outputs);
//!     while !outputs.is_empty() {
//!         for output in std::mem::take(&mut outputs) {
//!             match output {
//!                 Output::Write { write, .. } => disk.push(write), // append to the log
//!                 Output::Sync { through } => driver.durable(through), // fsync, then say so
//!                 Output::Send(_) | Output::Event(_) => {}          // no peers here
//!                 Output::Answer { request, answer } => answers.push((request, answer)),
//!                 Output::Failed(reason) => panic!("{reason}"),
//!             }
//!         }
//!         driver.take_outputs(&mut outputs); // what the durable report released
//!     }
//! }
//! assert_eq!(answers, vec![(1, Answer::Applied { index: 2, response: 5 })]);
//! assert!(!disk.is_empty());
//! ```

mod config;
mod driver;
pub mod durable_image;
mod gate;
mod io;
pub mod snapshots;
mod state_machine;
mod waiters;

pub use config::{DriverConfig, Misbehaviour};
pub use driver::{Driver, DriverCounters, StartError, HOUSEKEEPING_REQUEST};
pub use io::{ActionKinds, Answer, CommitDecision, Event, Output, Request, Write, WriteId};
pub use snapshots::{ByteSink, ByteSource, MemorySnapshots, SnapshotStore};
pub use state_machine::StateMachine;
