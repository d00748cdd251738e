//! The simulated network: per-message delay, loss, duplication and reordering, and
//! cuts (partitions of every shape, flapping links) that heal.
//!
//! Reordering is not a separate fault: every message draws its own delay, so two
//! messages on the same link overtake each other whenever the jitter says so.

use crate::event_queue::Micros;
use crate::faults::NetworkParams;
use crate::random::{Purpose, Random};

/// What happens to one message handed to the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The message is lost (or the link is cut).
    Dropped,
    /// The message arrives after `delay`, and a duplicate after `duplicate_delay`.
    Deliver {
        /// The delay of the first copy.
        delay: Micros,
        /// The delay of a duplicate copy, if the network duplicates this message.
        duplicate_delay: Option<Micros>,
    },
}

/// Counts of what the network did, for the run report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages dropped by a cut or a flapping link.
    pub cut: u64,
    /// Messages lost at random.
    pub lost: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
}

#[derive(Clone, Copy, Debug)]
struct FlappingLink {
    a: usize,
    b: usize,
    start: Micros,
    period: Micros,
    until: Micros,
}

impl FlappingLink {
    fn is_down(&self, now: Micros) -> bool {
        // Down in the even phases, up in the odd ones.
        now < self.until && ((now - self.start) / self.period) % 2 == 0
    }

    fn joins(&self, from: usize, to: usize) -> bool {
        (self.a == from && self.b == to) || (self.a == to && self.b == from)
    }
}

/// The network between `nodes` nodes, identified by position (0-based).
#[derive(Debug)]
pub struct Network {
    params: NetworkParams,
    nodes: usize,
    random: Random,
    /// `blocked[from * nodes + to]`: messages from `from` to `to` are cut.
    blocked: Vec<bool>,
    /// Identifies the cut in force, so a heal scheduled for an older cut does nothing.
    cut_generation: u64,
    flapping: Vec<FlappingLink>,
    stats: NetworkStats,
}

impl Network {
    /// A fully connected network.
    pub fn new(seed: u64, params: NetworkParams, nodes: usize) -> Network {
        let bounded = |micros: Micros| micros < Micros::MAX / 8;
        assert!(
            bounded(params.delay_min_micros)
                && bounded(params.delay_jitter_micros)
                && bounded(params.delay_tail_micros)
                && bounded(params.duplicate_late_micros)
        );
        Network {
            params,
            nodes,
            random: Random::new(seed, Purpose::Network),
            blocked: vec![false; nodes * nodes],
            cut_generation: 0,
            flapping: Vec::new(),
            stats: NetworkStats::default(),
        }
    }

    /// Decides the fate of a message from `from` to `to` sent at `now`.
    pub fn route(&mut self, from: usize, to: usize, now: Micros) -> Route {
        self.stats.sent += 1;
        if self.is_cut(from, to, now) {
            self.stats.cut += 1;
            return Route::Dropped;
        }
        if self.random.chance(self.params.loss_ppm) {
            self.stats.lost += 1;
            return Route::Dropped;
        }
        let delay = self.draw_delay();
        let duplicate_delay = if self.random.chance(self.params.duplicate_ppm) {
            self.stats.duplicated += 1;
            let late = self.random.between(0, self.params.duplicate_late_micros);
            Some(self.draw_delay() + late)
        } else {
            None
        };
        Route::Deliver { delay, duplicate_delay }
    }

    fn draw_delay(&mut self) -> Micros {
        let params = &self.params;
        let mut delay = params.delay_min_micros + self.random.between(0, params.delay_jitter_micros);
        if self.random.chance(params.delay_tail_ppm) {
            delay += self.random.between(0, params.delay_tail_micros);
        }
        delay
    }

    /// Whether a message from `from` to `to` would be cut at `now`.
    pub fn is_cut(&self, from: usize, to: usize, now: Micros) -> bool {
        self.blocked[from * self.nodes + to]
            || self.flapping.iter().any(|link| link.joins(from, to) && link.is_down(now))
    }

    /// Whether a cut in force blocks messages from `from` to `to` (flapping links aside).
    pub fn is_hard_cut(&self, from: usize, to: usize) -> bool {
        self.blocked[from * self.nodes + to]
    }

    /// Whether the link between `a` and `b` is flapping at `now`.
    pub fn is_flapping(&self, a: usize, b: usize, now: Micros) -> bool {
        self.flapping.iter().any(|link| link.joins(a, b) && now < link.until)
    }

    /// The longest a message can take (a duplicate included).
    pub fn max_delay_micros(&self) -> Micros {
        self.max_first_delay_micros() + self.params.duplicate_late_micros
    }

    /// The longest a first copy can take (late duplicates aside: they carry nothing new).
    pub fn max_first_delay_micros(&self) -> Micros {
        let params = &self.params;
        params.delay_min_micros + params.delay_jitter_micros + params.delay_tail_micros
    }

    /// The chance that a message is lost, in parts per million.
    pub fn loss_ppm(&self) -> u32 {
        self.params.loss_ppm
    }

    /// Caps every delay at `most` (no congested tail): a calm network, whose heartbeats
    /// always arrive well within an election timeout.
    pub fn calm(&mut self, most: Micros) {
        let params = &mut self.params;
        params.delay_min_micros = params.delay_min_micros.min(most / 2);
        params.delay_jitter_micros = params.delay_jitter_micros.min(most - params.delay_min_micros);
        params.delay_tail_ppm = 0;
        params.duplicate_ppm = 0;
    }

    /// Replaces the cut in force: messages between `side` and the rest are lost in
    /// the directions asked for. Returns the cut's generation, for [`Network::heal_cut`].
    pub fn cut(&mut self, from_side: &[usize], to_side: &[usize], both_directions: bool) -> u64 {
        self.blocked.fill(false);
        for &from in from_side {
            for &to in to_side {
                self.blocked[from * self.nodes + to] = true;
                if both_directions {
                    self.blocked[to * self.nodes + from] = true;
                }
            }
        }
        self.cut_generation += 1;
        self.cut_generation
    }

    /// Heals the cut of `generation`, unless a newer cut replaced it.
    pub fn heal_cut(&mut self, generation: u64) {
        if generation == self.cut_generation {
            self.blocked.fill(false);
        }
    }

    /// Makes the link between `a` and `b` go down and up every `period` until `until`.
    pub fn flap(&mut self, a: usize, b: usize, now: Micros, period: Micros, until: Micros) {
        assert!(period > 0 && a != b);
        self.flapping.retain(|link| link.until > now);
        self.flapping.push(FlappingLink { a, b, start: now, period, until });
    }

    /// Heals everything and stops random loss and duplication (the liveness phase).
    /// Delays stay: a healthy network is still not instantaneous.
    pub fn heal_all(&mut self) {
        self.blocked.fill(false);
        self.cut_generation += 1;
        self.flapping.clear();
        self.params.loss_ppm = 0;
        self.params.duplicate_ppm = 0;
    }

    /// What the network has done so far.
    pub fn stats(&self) -> NetworkStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(loss_ppm: u32, duplicate_ppm: u32) -> NetworkParams {
        NetworkParams {
            delay_min_micros: 100,
            delay_jitter_micros: 1_000,
            delay_tail_ppm: 0,
            delay_tail_micros: 0,
            loss_ppm,
            duplicate_ppm,
            duplicate_late_micros: 0,
        }
    }

    #[test]
    fn delays_stay_within_bounds_and_reorder() {
        let mut network = Network::new(1, params(0, 0), 2);
        let delays: Vec<Micros> = (0..100)
            .map(|_| match network.route(0, 1, 0) {
                Route::Deliver { delay, duplicate_delay: None } => delay,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert!(delays.iter().all(|delay| (100..=1_100).contains(delay)));
        assert!(delays.windows(2).any(|pair| pair[0] > pair[1]), "jitter should reorder some messages");
    }

    #[test]
    fn loss_and_duplication_happen_at_about_their_rates() {
        let mut network = Network::new(2, params(100_000, 100_000), 2);
        for _ in 0..10_000 {
            network.route(0, 1, 0);
        }
        let stats = network.stats();
        assert!((800..1_200).contains(&stats.lost), "lost {}", stats.lost);
        assert!((700..1_100).contains(&stats.duplicated), "duplicated {}", stats.duplicated);
    }

    #[test]
    fn duplicates_can_arrive_long_after_the_original() {
        let mut network =
            Network::new(6, NetworkParams { duplicate_late_micros: 1_000_000, ..params(0, 1_000_000) }, 2);
        let late = (0..100)
            .filter(|_| match network.route(0, 1, 0) {
                Route::Deliver { duplicate_delay: Some(duplicate), .. } => duplicate > 100_000,
                other => panic!("every message is duplicated here: {other:?}"),
            })
            .count();
        assert!(late > 50, "most copies come much later: {late}");
    }

    #[test]
    fn a_one_way_cut_drops_one_direction_and_heals() {
        let mut network = Network::new(3, params(0, 0), 3);
        let generation = network.cut(&[0], &[1, 2], false);
        assert_eq!(network.route(0, 1, 0), Route::Dropped);
        assert!(matches!(network.route(1, 0, 0), Route::Deliver { .. }));
        assert!(matches!(network.route(1, 2, 0), Route::Deliver { .. }));
        network.heal_cut(generation + 1);
        assert!(network.is_cut(0, 2, 0), "a heal for another cut leaves this one alone");
        network.heal_cut(generation);
        assert!(!network.is_cut(0, 2, 0));
    }

    #[test]
    fn a_symmetric_cut_drops_both_directions_and_a_newer_cut_replaces_it() {
        let mut network = Network::new(4, params(0, 0), 3);
        network.cut(&[0, 1], &[2], true);
        assert!(network.is_cut(2, 0, 0) && network.is_cut(1, 2, 0) && !network.is_cut(0, 1, 0));
        network.cut(&[2], &[0], true);
        assert!(!network.is_cut(1, 2, 0) && network.is_cut(0, 2, 0));
    }

    #[test]
    fn a_flapping_link_alternates_then_stays_up() {
        let mut network = Network::new(5, params(0, 0), 2);
        network.flap(0, 1, 1_000, 100, 1_400);
        assert!(network.is_cut(0, 1, 1_000) && network.is_cut(1, 0, 1_099));
        assert!(!network.is_cut(0, 1, 1_100));
        assert!(network.is_cut(0, 1, 1_200));
        assert!(!network.is_cut(0, 1, 1_400), "flapping ends at `until`");
        network.heal_all();
        assert!(!network.is_cut(0, 1, 1_000));
    }
}
