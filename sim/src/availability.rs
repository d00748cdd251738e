//! Availability, checked like safety: three rules about progress that hold in every
//! run, each a liveness failure (exit 3) naming its rule when it breaks.
//!
//! - **A healthy majority commits** ([`Invariant::Availability`]). In the safety phase,
//!   while the same set of nodes has been running, unpaused and connected both ways
//!   (no cut, no flapping link, on a network that loses at most 10% of messages) and
//!   holds a majority of every voter set its members know, its leader must commit what
//!   it held halfway through each window of a window (`availability_window_micros`) (a few
//!   election timeouts plus the plan's longest delays and syncs), at the latest by the
//!   end of a second window. The window starts over whenever the healthy set changes.
//! - **CheckQuorum** ([`Invariant::CheckQuorum`], Raft thesis §6.2). A leader cut off
//!   from a quorum of its voters (by cuts, crashes and pauses; a flapping link counts as
//!   connected) for longer than twice its election timeout plus the longest message
//!   delay must have stepped down.
//! - **No unprovoked elections** ([`Invariant::UnprovokedElection`]). Once the liveness
//!   phase has a leader every voter follows, a voter of its own configuration, and its
//!   probe is applied everywhere, the
//!   network is calmed (every delay under [`QUIET_DELAY_MAX_MICROS`], far inside an
//!   election timeout), syncs stop failing, and the run goes on for [`QUIET_MICROS`]. Nobody asks for a
//!   transfer or a membership change then, so no voter's term may change and the leader
//!   must stay in office: a term change now is a disruptive server (a removed node
//!   campaigning, a pre-vote granted to a stale log, a timer that ignores heartbeats).
//!   A removed node's own term is not watched: it may adopt the term of a refusal it
//!   gets, which disturbs nobody. A TimeoutNow that arrives in the tail (a transfer
//!   asked for before it, delayed) ends the watch: the election it starts was asked for.
//!
//! The rules only watch; they draw nothing random and change nothing, so a run that
//! keeps them is the same run as before they existed, only with a quiet tail.

use crate::checkers::{Invariant, Violation};
use crate::event::Event;
use crate::event_queue::Micros;
use crate::faults::BASE_TICK_MICROS;
use crate::options::Verdict;
use crate::world::World;
use raft_core::{LogIndex, NodeId, Role, Term};

/// How long the quiet tail of the liveness phase lasts: 200 base ticks, seven to
/// thirteen election timeouts.
pub const QUIET_MICROS: Micros = 2_000_000;
/// The longest delay of the calmed network in the quiet tail (three base ticks).
pub const QUIET_DELAY_MAX_MICROS: Micros = 30_000;
/// How often the healthy-majority rule looks at the cluster.
const SAMPLE_MICROS: Micros = 50_000;
/// The healthy-majority rule holds only on networks that lose at most this much.
const LOSS_PPM_MAX: u32 = 100_000;

/// What the availability rules remember between looks.
#[derive(Debug, Default)]
pub(crate) struct Availability {
    /// Per node: the term it led and when it was first seen cut off from a quorum.
    cut_off_since: Vec<Option<(Term, Micros)>>,
    /// The healthy majority being watched.
    window: Option<Window>,
    next_sample: Micros,
    /// The quiet tail, once it has begun.
    pub(crate) quiet: Option<Quiet>,
}

/// A set of nodes that has stayed healthy since `since`.
#[derive(Debug)]
struct Window {
    /// Positions, ascending.
    members: Vec<usize>,
    since: Micros,
    /// Each member's last log index halfway through the window.
    halfway: Option<Vec<(usize, LogIndex)>>,
}

/// The liveness phase's quiet tail.
#[derive(Debug)]
pub(crate) struct Quiet {
    /// Each node's term when the tail began.
    terms: Vec<Option<Term>>,
    /// The leader in office then (position).
    leader: usize,
    /// Its voters, by position: only their terms are watched. A removed node may still
    /// move to a higher term it hears of in a refusal, which disturbs nobody.
    watched: Vec<bool>,
    pub(crate) began: Micros,
    /// A TimeoutNow arrived: a transfer asked for in the safety phase, delayed into the
    /// tail, may start an election now, which somebody did ask for. The rule stands
    /// down for the rest of the tail.
    pub(crate) transfer_arrived: bool,
}

impl Availability {
    /// A node crashed or paused: whatever majority was healthy may not be now. (With
    /// every node down nothing ticks, so the next look could come only after they are
    /// back, as if nothing had happened.)
    pub(crate) fn member_lost(&mut self) {
        self.window = None;
    }
}

impl Availability {
    /// How long a healthy majority may take to commit: four election timeouts at the
    /// slowest clock, four of the plan's longest delays of a first copy and syncs, and
    /// once the longest delay of a duplicate. (Late duplicates of acknowledgements sent
    /// before a cut keep a cut-off leader believing it hears from a quorum, and its
    /// heartbeats keep the others from campaigning, until the last of them arrives.)
    fn window_micros(world: &World<'_>) -> Micros {
        let slowest_tick = world.plan.tick_micros.iter().copied().max().unwrap_or(BASE_TICK_MICROS);
        let timeout_ticks = world.cluster.hosts[0].config_election_timeout_max_ticks();
        4 * timeout_ticks * slowest_tick
            + 4 * world.cluster.network.max_first_delay_micros()
            + world.cluster.network.max_delay_micros()
            + 4 * world.plan.storage.sync_max_micros
    }

    /// Called at every node's tick: looks at the rules this tick concerns.
    /// Returns whether a quiet tail was given up on (see [`Availability::watch_quiet`]):
    /// the liveness probe must look for recovery again.
    pub(crate) fn watch(&mut self, world: &mut World<'_>, position: usize) -> bool {
        if self.quiet.is_some() {
            return self.watch_quiet(world, position);
        }
        self.watch_check_quorum(world, position);
        let now = world.queue.now();
        if now >= self.next_sample && now < world.safety_phase_micros() {
            self.next_sample = now + SAMPLE_MICROS;
            self.watch_healthy_majority(world);
        }
        false
    }

    fn watch_check_quorum(&mut self, world: &mut World<'_>, position: usize) {
        let now = world.queue.now();
        let cluster = &world.cluster;
        let host = &cluster.hosts[position];
        let leading = host.core().filter(|core| core.role() == Role::Leader && !host.paused);
        let Some(core) = leading else {
            if let Some(slot) = self.cut_off_since.get_mut(position) {
                *slot = None;
            }
            return;
        };
        let term = core.term();
        let configuration = core.configuration();
        let is_reachable = |voter: NodeId| {
            let Some(other) = cluster.position_of(voter) else { return false };
            other == position
                || (cluster.hosts[other].is_responsive()
                    && !cluster.network.is_hard_cut(position, other)
                    && !cluster.network.is_hard_cut(other, position))
        };
        let has_quorum = configuration.has_quorum(is_reachable);
        if self.cut_off_since.len() < cluster.hosts.len() {
            self.cut_off_since.resize(cluster.hosts.len(), None);
        }
        let slot = &mut self.cut_off_since[position];
        if has_quorum {
            *slot = None;
            return;
        }
        let since = match *slot {
            Some((cut_term, since)) if cut_term == term => since,
            _ => {
                *slot = Some((term, now));
                now
            }
        };
        let timeout_ticks = host.config_election_timeout_max_ticks();
        let bound = 2 * timeout_ticks * host.tick_micros + cluster.network.max_delay_micros();
        if now - since > bound {
            let reachable: Vec<NodeId> = configuration
                .members()
                .iter()
                .copied()
                .filter(|&voter| configuration.is_voter(voter) && is_reachable(voter))
                .collect();
            let detail = format!(
                "node {} still leads term {term} after {:.3} s cut off from a quorum of its {configuration} (voters reachable: {reachable:?}; bound {:.3} s: twice its election timeout plus the longest message delay)",
                position + 1,
                (now - since) as f64 / 1e6,
                bound as f64 / 1e6
            );
            let node = position as NodeId + 1;
            world.fail(Verdict::Liveness, Violation::new(Invariant::CheckQuorum, vec![node], detail));
        }
    }

    /// The nodes that are running, unpaused and connected both ways to each other, if
    /// they hold a majority of every voter set they know; else `None`.
    fn healthy_majority(world: &World<'_>) -> Option<Vec<usize>> {
        let cluster = &world.cluster;
        if cluster.network.loss_ppm() > LOSS_PPM_MAX {
            return None;
        }
        let now = world.queue.now();
        let nodes = cluster.hosts.len();
        let connected = |a: usize, b: usize| {
            !cluster.network.is_hard_cut(a, b)
                && !cluster.network.is_hard_cut(b, a)
                && !cluster.network.is_flapping(a, b, now)
        };
        let responsive: Vec<usize> = (0..nodes).filter(|&at| cluster.hosts[at].is_responsive()).collect();
        // The connected groups of responsive nodes; a group counts only if every two
        // of its members are connected (a cut that is not a partition proves nothing).
        let mut seen = vec![false; nodes];
        for &start in &responsive {
            if seen[start] {
                continue;
            }
            let mut group = vec![start];
            seen[start] = true;
            let mut next = 0;
            while next < group.len() {
                let at = group[next];
                next += 1;
                for &other in &responsive {
                    if !seen[other] && connected(at, other) {
                        seen[other] = true;
                        group.push(other);
                    }
                }
            }
            group.sort_unstable();
            let clique = group.iter().all(|&a| group.iter().all(|&b| a == b || connected(a, b)));
            let ids: Vec<NodeId> = group.iter().map(|&at| at as NodeId + 1).collect();
            let majority_of_every_config = group.iter().all(|&at| {
                cluster.hosts[at].core().is_some_and(|core| {
                    core.configuration().is_valid()
                        && core.configuration().has_quorum(|node| ids.contains(&node))
                })
            });
            if clique && majority_of_every_config {
                return Some(group);
            }
        }
        None
    }

    fn watch_healthy_majority(&mut self, world: &mut World<'_>) {
        let now = world.queue.now();
        let Some(members) = Self::healthy_majority(world) else {
            self.window = None;
            return;
        };
        let window_micros = Self::window_micros(world);
        let window = match &mut self.window {
            Some(window) if window.members == members => window,
            slot => slot.insert(Window { members, since: now, halfway: None }),
        };
        let cluster = &world.cluster;
        if window.halfway.is_none() && now >= window.since + window_micros / 2 {
            window.halfway = Some(
                window
                    .members
                    .iter()
                    .filter_map(|&at| cluster.hosts[at].core().map(|core| (at, core.last_index())))
                    .collect(),
            );
        }
        if now < window.since + window_micros {
            return;
        }
        let halfway = window.halfway.as_deref().unwrap_or(&[]);
        let committed = halfway.iter().any(|&(at, held)| {
            cluster.hosts[at].core().is_some_and(|core| {
                core.role() == Role::Leader && core.commit_index() >= held.min(core.last_index())
            })
        }) || (!halfway.is_empty()
            // Or every member has seen entries past what it held halfway committed: a
            // leader outside the majority, reaching it over a flapping link, may lead it
            // (its heartbeats keep the members from electing one of their own) as long as
            // it makes progress there.
            && halfway.iter().all(|&(at, held)| {
                cluster.hosts[at].core().is_some_and(|core| core.commit_index() > held)
            }));
        if committed {
            // Start over: the same majority must keep making progress.
            window.since = now;
            window.halfway = None;
            return;
        }
        if now < window.since + 2 * window_micros {
            return;
        }
        let ids: Vec<NodeId> = window.members.iter().map(|&at| at as NodeId + 1).collect();
        let states: Vec<String> = window
            .members
            .iter()
            .filter_map(|&at| {
                let core = cluster.hosts[at].core()?;
                let held = halfway.iter().find(|(member, _)| *member == at).map_or(0, |(_, held)| *held);
                Some(format!(
                    "node {} {:?} term {} commit {} (held {held} halfway)",
                    at + 1,
                    core.role(),
                    core.term(),
                    core.commit_index()
                ))
            })
            .collect();
        let leaderless = !window
            .members
            .iter()
            .any(|&at| cluster.hosts[at].core().is_some_and(|core| core.role() == Role::Leader));
        let detail = format!(
            "nodes {ids:?} were running, unpaused and connected for {:.3} s (since {:.6} s) and {}: {}",
            (now - window.since) as f64 / 1e6,
            window.since as f64 / 1e6,
            if leaderless { "have no leader" } else { "their leader did not commit what it held halfway" },
            states.join("; ")
        );
        world.fail(Verdict::Liveness, Violation::new(Invariant::Availability, ids, detail));
    }

    /// The cluster has recovered: calm the network and watch a quiet tail before the run
    /// ends. `leader` is the agreed leader's position.
    pub(crate) fn begin_quiet(&mut self, world: &mut World<'_>, leader: usize) {
        let now = world.queue.now();
        world.cluster.network.calm(QUIET_DELAY_MAX_MICROS);
        world.cluster.calm_disks();
        let terms = world.cluster.hosts.iter().map(|host| host.core().map(|core| core.term())).collect();
        let leader_core = world.cluster.hosts[leader].core();
        let watched = world
            .cluster
            .hosts
            .iter()
            .map(|host| leader_core.is_some_and(|core| core.configuration().is_voter(host.id)))
            .collect();
        self.quiet = Some(Quiet { terms, leader, watched, began: now, transfer_arrived: false });
        world.queue.schedule_in(QUIET_MICROS, Event::QuietEnd { began: now });
    }

    /// Watches a term or a leader change in the quiet tail. A leader stepping down in
    /// its own term within the tail's first check-quorum window (twice the slowest
    /// election timeout) may be answering the network from before the calm (it heard
    /// from no quorum over a stretch of the old delays, and CheckQuorum deposes it by
    /// design): the tail is given up on, and `true` says the cluster must be seen to
    /// recover again. Any other change (a new term anywhere, or a step-down later)
    /// fails the run.
    fn watch_quiet(&mut self, world: &mut World<'_>, position: usize) -> bool {
        let Some(quiet) = &self.quiet else { return false };
        if quiet.transfer_arrived || (!quiet.watched[position] && position != quiet.leader) {
            return false;
        }
        let host = &world.cluster.hosts[position];
        let Some(core) = host.core() else { return false };
        let was = quiet.terms.get(position).copied().flatten();
        let deposed = position == quiet.leader && core.role() != Role::Leader;
        if was == Some(core.term()) && !deposed {
            return false;
        }
        let slowest_tick = world.plan.tick_micros.iter().copied().max().unwrap_or(BASE_TICK_MICROS);
        let settle = 2 * host.config_election_timeout_max_ticks() * slowest_tick;
        let same_term_step_down = deposed && was == Some(core.term());
        if same_term_step_down && world.queue.now() < quiet.began + settle {
            self.quiet = None;
            return true;
        }
        let leader = quiet.leader + 1;
        let detail = format!(
            "node {} went from term {} to term {} as {:?}, {:.3} s into the quiet tail, with node {leader} leading a healed cluster every voter followed; nobody asked for a transfer or a membership change",
            position + 1,
            was.map_or("?".to_string(), |term| term.to_string()),
            core.term(),
            core.role(),
            (world.queue.now() - quiet.began) as f64 / 1e6
        );
        let nodes = vec![position as NodeId + 1, leader as NodeId];
        world.fail(Verdict::Liveness, Violation::new(Invariant::UnprovokedElection, nodes, detail));
        false
    }
}
