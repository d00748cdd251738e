//! What the simulator's queue holds: the events of a run, due at virtual times. A leaf
//! of the module graph: the cluster, the workload parts and the run loop all name
//! events, and none of them is imported by it.

use raft_core::RequestId;
use raft_host::WriteId;

/// Something due at a virtual time. (Node clock ticks are not events in the queue:
/// they are periodic, so the simulator keeps each node's next tick beside it.)
#[derive(Debug)]
pub enum Event {
    /// A node's round of client requests ends: the requests that reached it since the
    /// round began go to its driver together.
    RequestRound {
        /// The node's position.
        node: usize,
        /// The run of its process the requests reached.
        incarnation: u64,
    },
    /// A message arrives.
    Deliver {
        /// The message.
        message: raft_core::Message,
    },
    /// A sync a node's driver asked for completes.
    SyncDone {
        /// The node's position.
        node: usize,
        /// The run of its process that asked.
        incarnation: u64,
        /// The last write it covers.
        through: WriteId,
        /// The group of file-system syncs it completes.
        group: u64,
    },
    /// The next scheduled fault fires.
    Fault {
        /// Its place in the plan's schedule.
        index: usize,
    },
    /// A network cut heals.
    HealCut {
        /// Which cut.
        generation: u64,
    },
    /// A crashed node restarts.
    Restart {
        /// The node's position.
        node: usize,
        /// The run of its process that crashed.
        incarnation: u64,
    },
    /// A paused node resumes.
    Resume {
        /// The node's position.
        node: usize,
        /// The run of its process that paused.
        incarnation: u64,
    },
    /// A pipelining connection sends its next batch.
    ConnectionSend {
        /// The connection (0-based).
        connection: usize,
    },
    /// A pipelining connection's batch may have timed out.
    ConnectionTimer {
        /// The connection (0-based).
        connection: usize,
        /// The link the batch went over.
        generation: u64,
    },
    /// A client invokes its next operation.
    ClientInvoke {
        /// The client (0-based).
        client: usize,
    },
    /// A client's timer: its current attempt may have timed out.
    ClientTimer {
        /// The client (0-based).
        client: usize,
    },
    /// A client retries after a refusal.
    ClientRetry {
        /// The client (0-based).
        client: usize,
        /// The attempt refused.
        attempt: RequestId,
    },
    /// An operator asks for a leadership transfer.
    Transfer,
    /// An operator removes a voter or adds one back.
    ChangeMembership,
    /// The safety phase ends.
    StartLiveness,
    /// The liveness phase checks for recovery.
    LivenessProbe,
    /// The liveness bound is reached.
    LivenessDeadline,
    /// The quiet tail after recovery ends (see [`crate::availability`]).
    QuietEnd {
        /// When the tail began: a tail given up on and begun again ends later.
        began: crate::event_queue::Micros,
    },
}
