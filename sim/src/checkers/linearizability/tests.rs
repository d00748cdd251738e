//! The checker on hand-written histories, and against a brute-force checker on small
//! random ones.

use super::register::{KeyOp, RegisterOp, State};
use super::search::{search, Memory, SearchResult};
use super::*;
use proptest::prelude::*;

fn op(
    client: u64,
    operation: Operation,
    invoke_us: u64,
    return_us: Option<u64>,
    outcome: Outcome,
) -> ClientOp {
    ClientOp { client, operation, invoke_us, return_us, outcome }
}

fn set(client: u64, key: &str, value: &str, from: u64, to: u64) -> ClientOp {
    let operation = Operation::Set { key: key.into(), value: value.into() };
    op(client, operation, from, Some(to), Outcome::Ok(Response::Done))
}

fn get(client: u64, key: &str, seen: Option<&str>, from: u64, to: u64) -> ClientOp {
    let operation = Operation::Read(Query::Get { key: key.into() });
    op(client, operation, from, Some(to), Outcome::Ok(Response::Value(seen.map(Into::into))))
}

fn timed_out_set(client: u64, key: &str, value: &str, from: u64) -> ClientOp {
    let operation = Operation::Set { key: key.into(), value: value.into() };
    op(client, operation, from, None, Outcome::Indeterminate)
}

fn assert_linearizable(history: &[ClientOp]) {
    let verdict = check(history);
    assert!(matches!(verdict, Linearizability::Linearizable { .. }), "{verdict:?}");
}

/// The operations a violation keeps as recorded.
fn witness_of(history: &[ClientOp]) -> Vec<ClientOp> {
    weakened_witness_of(history).0
}

/// A violation's witness: the operations kept as recorded, the weakened writes that
/// overlap them, and the weakened sources of what they read.
fn weakened_witness_of(history: &[ClientOp]) -> (Vec<ClientOp>, Vec<ClientOp>, Vec<ClientOp>) {
    match check(history) {
        Linearizability::Violated { witness, overlapping, sources, .. } => (witness, overlapping, sources),
        other => panic!("expected a violation, got {other:?}"),
    }
}

fn set_with_ttl(client: u64, key: &str, value: &str, ttl_ms: i64, from: u64, to: u64) -> ClientOp {
    let operation = Operation::set_with_ttl(key.into(), value.into(), ttl_ms);
    op(client, operation, from, Some(to), Outcome::Ok(Response::Stored { applied: true, previous: None }))
}

#[test]
fn a_key_may_vanish_once_its_time_to_live_can_have_run_out_and_not_before() {
    // 1 s to live, set at 0: the default model lets it run out from about 0.71 s on
    // (clocks up to 10 % fast, a fifth set aside, two 10 ms ticks).
    let time = TimeModel::default();
    let earliest = time.earliest_expiry(0, 1_000);
    assert!((700_000..=730_000).contains(&earliest), "{earliest}");
    let key_vanishes_at = |read_at: u64| {
        vec![
            set_with_ttl(1, "x", "a", 1_000, 0, 10),
            get(2, "x", Some("a"), 20, 30),
            get(2, "x", None, read_at, read_at + 10),
        ]
    };
    assert_linearizable(&key_vanishes_at(earliest + 1));
    assert_linearizable(&key_vanishes_at(50_000_000));
    // Gone too early: the read returned before the log can have reached the deadline.
    let too_early = key_vanishes_at(earliest - 100);
    assert_eq!(witness_of(&too_early).len(), 2, "the write and the early read");
    // Gone, then back without a write: expiry is for good.
    let mut back = key_vanishes_at(900_000);
    back.push(get(3, "x", Some("a"), 950_000, 960_000));
    assert!(check(&back).violation().is_some());
    // A plain set clears the time to live: its value never runs out.
    let cleared = vec![
        set_with_ttl(1, "x", "a", 100, 0, 10),
        set(1, "x", "b", 20, 30),
        get(2, "x", None, 5_000_000, 5_000_010),
    ];
    assert!(check(&cleared).violation().is_some());
    // Without expiry it is a delete nobody made.
    let never = vec![set(1, "x", "a", 0, 10), get(2, "x", None, 5_000_000, 5_000_010)];
    assert!(check(&never).violation().is_some());
}

#[test]
fn sequential_and_concurrent_histories_that_have_a_linearization_pass() {
    assert_linearizable(&[]);
    assert_linearizable(&[get(1, "x", None, 0, 1), set(1, "x", "a", 2, 3), get(2, "x", Some("a"), 4, 5)]);
    // Two overlapping writes and reads that see them in either order.
    assert_linearizable(&[
        set(1, "x", "a", 0, 10),
        set(2, "x", "b", 1, 9),
        get(3, "x", Some("b"), 2, 3),
        get(3, "x", Some("a"), 4, 5),
    ]);
    // An operation returning at the instant another is invoked counts as concurrent.
    assert_linearizable(&[set(1, "x", "a", 0, 5), get(2, "x", None, 5, 6)]);
}

#[test]
fn a_stale_read_is_caught_and_shrunk_to_write_overwrite_read() {
    let mut history = vec![
        set(1, "x", "a", 0, 10),
        set(1, "x", "b", 20, 30),
        // Noise on the same key and on another one.
        get(3, "x", Some("a"), 5, 15),
        get(3, "y", None, 5, 15),
        set(3, "y", "q", 16, 17),
        get(3, "x", Some("b"), 35, 36),
    ];
    // Read "a" after "b" was written and acknowledged: stale.
    history.push(get(2, "x", Some("a"), 40, 50));
    // Two operations and the stale read among them, kept as recorded; the writes are
    // taken as indeterminate (they may never have happened) and named as where what
    // was read came from: even so, "a" after "b" is impossible.
    let (witness, overlapping, sources) = weakened_witness_of(&history);
    assert_eq!(witness.len(), 2, "{witness:?}");
    assert_eq!(witness.last(), Some(&history[6]), "the stale read");
    assert_eq!(overlapping, vec![]);
    for write in &history[..2] {
        assert!(witness.contains(write) || sources.contains(write), "{write:?} is shown");
    }
    let violation = check(&history).violation().expect("a violation");
    assert_eq!(violation.invariant, "linearizability");
    assert!(violation.detail.contains("key \"x\""), "{}", violation.detail);
}

#[test]
fn a_read_of_a_value_nobody_wrote_is_caught() {
    let witness = witness_of(&[get(1, "x", Some("ghost"), 0, 1)]);
    assert_eq!(witness.len(), 1);
    // Among other operations, the witness is that read alone.
    let history = [
        set(1, "x", "a", 0, 1),
        get(2, "x", Some("a"), 2, 3),
        get(2, "x", Some("ghost"), 4, 5),
        set(1, "x", "b", 6, 7),
    ];
    assert_eq!(witness_of(&history), vec![history[2].clone()]);
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    // The write was acknowledged, then a later read sees the key absent.
    let history = [set(1, "x", "a", 0, 1), get(2, "x", None, 2, 3)];
    assert_eq!(witness_of(&history).len(), 2);
}

#[test]
fn indeterminate_writes_may_or_may_not_take_effect() {
    // Took effect, late: seen long after the client gave up.
    assert_linearizable(&[timed_out_set(1, "x", "a", 0), get(2, "x", Some("a"), 100, 101)]);
    // Never took effect.
    assert_linearizable(&[timed_out_set(1, "x", "a", 0), get(2, "x", None, 100, 101)]);
    // But not before it was invoked: the read alone is the witness (the write, invoked
    // after it returned, cannot explain it).
    let history = [get(2, "x", Some("a"), 0, 1), timed_out_set(1, "x", "a", 5)];
    assert_eq!(witness_of(&history), vec![history[0].clone()]);
    // And at most once: "a" then "b" then "a" again needs two writes of "a".
    let history = [
        timed_out_set(1, "x", "a", 0),
        set(2, "x", "b", 10, 11),
        get(3, "x", Some("a"), 5, 6),
        get(3, "x", Some("b"), 12, 13),
        get(3, "x", Some("a"), 14, 15),
    ];
    assert!(matches!(check(&history), Linearizability::Violated { .. }));
}

#[test]
fn a_write_given_up_on_takes_effect_by_the_return_of_its_clients_next_acknowledged_write() {
    // Client 1 gives up on x = "a", then writes y (acknowledged at 20). The session
    // refuses "a" once that later write is applied, so "a" took effect by 20 or never:
    // it cannot be what x holds after client 2 overwrote it at 25..26.
    let gave_up = timed_out_set(1, "x", "a", 0);
    let history =
        [gave_up.clone(), set(1, "y", "q", 10, 20), set(2, "x", "b", 25, 26), get(3, "x", Some("a"), 30, 40)];
    let (witness, _, sources) = weakened_witness_of(&history);
    assert_eq!(witness, vec![history[2].clone(), history[3].clone()], "the write of y is on another key");
    assert_eq!(sources, vec![gave_up.clone()], "the write given up on is where \"a\" came from");
    // Before its deadline it may still land after another client's write.
    assert_linearizable(&[
        gave_up.clone(),
        set(1, "y", "q", 10, 20),
        set(2, "x", "b", 12, 13),
        get(3, "x", Some("a"), 30, 40),
    ]);
    // Another client's write sets no deadline.
    assert_linearizable(&[
        gave_up,
        set(4, "y", "q", 10, 20),
        set(2, "x", "b", 25, 26),
        get(3, "x", Some("a"), 30, 40),
    ]);
}

#[test]
fn failed_operations_and_unanswered_reads_are_ignored() {
    let failed = op(1, Operation::Set { key: "x".into(), value: "a".into() }, 0, Some(1), Outcome::Fail);
    let unanswered = op(2, Operation::Read(Query::Get { key: "x".into() }), 0, None, Outcome::Indeterminate);
    assert_linearizable(&[failed, unanswered, get(3, "x", None, 5, 6)]);
}

#[test]
fn compare_and_set_and_delete_results_are_checked() {
    let cas = |expected: Option<&str>, new: &str, swapped: bool, previous: Option<&str>, from, to| {
        let operation = Operation::CompareAndSet {
            key: "x".into(),
            expected: expected.map(Into::into),
            new: Some(new.into()),
        };
        let response = Response::Swapped { swapped, previous: previous.map(Into::into) };
        op(1, operation, from, Some(to), Outcome::Ok(response))
    };
    let delete = |existed, from, to| {
        op(
            2,
            Operation::Delete { key: "x".into() },
            from,
            Some(to),
            Outcome::Ok(Response::Deleted { existed }),
        )
    };
    assert_linearizable(&[
        cas(None, "a", true, None, 0, 1),
        cas(None, "b", false, Some("a"), 2, 3),
        delete(true, 4, 5),
        delete(false, 6, 7),
    ]);
    // Two creates-if-absent both succeeding, one after the other: impossible.
    let history = [cas(None, "a", true, None, 0, 1), cas(None, "b", true, None, 2, 3)];
    assert!(matches!(check(&history), Linearizability::Violated { .. }));
    // A delete that found nothing after an acknowledged write.
    let history = [set(1, "x", "a", 0, 1), delete(false, 2, 3)];
    assert!(matches!(check(&history), Linearizability::Violated { .. }));
}

#[test]
fn a_list_is_a_read_of_every_key_in_its_range() {
    let list = |entries: &[(&str, &str)], from, to| {
        let entries = entries.iter().map(|(key, value)| (Bytes::from(*key), Bytes::from(*value))).collect();
        let operation = Operation::Read(Query::List { from: "".into(), to: None, limit: 0 });
        op(9, operation, from, Some(to), Outcome::Ok(Response::Entries(entries)))
    };
    assert_linearizable(&[
        set(1, "x", "a", 0, 1),
        set(1, "y", "b", 2, 3),
        list(&[("x", "a"), ("y", "b")], 4, 5),
    ]);
    // The list misses an acknowledged write to y.
    let history = [set(1, "x", "a", 0, 1), set(1, "y", "b", 2, 3), list(&[("x", "a")], 4, 5)];
    match check(&history) {
        Linearizability::Violated { key, witness, .. } => {
            assert_eq!(key, "y");
            assert_eq!(witness, vec![history[1].clone(), history[2].clone()]);
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn a_response_that_does_not_fit_its_request_is_a_violation() {
    let history = [op(
        1,
        Operation::Set { key: "x".into(), value: "a".into() },
        0,
        Some(1),
        Outcome::Ok(Response::Value(None)),
    )];
    assert!(matches!(check(&history), Linearizability::Violated { .. }));
}

#[test]
fn running_out_of_steps_is_unknown_never_a_pass() {
    let history: Vec<ClientOp> = (0..50).map(|i| set(1, "x", &i.to_string(), i * 10, i * 10 + 5)).collect();
    assert!(matches!(check_with_budget(&history, 10), Linearizability::Unknown { .. }));
    let unknown = check_with_budget(&history, 10).violation().expect("unknown is not a pass");
    assert_eq!(unknown.invariant, "linearizability unknown");
    assert!(matches!(check(&history), Linearizability::Linearizable { .. }));
}

#[test]
fn ten_thousand_operations_over_a_hundred_keys_check() {
    // Twenty clients, each key written and read by overlapping clients, all correct.
    let mut history = Vec::new();
    let mut values = vec![None::<String>; 100];
    for step in 0..10_000u64 {
        let key = (step * 37 % 100) as usize;
        let (from, to) = (step * 10, step * 10 + 25);
        if step % 3 == 0 {
            let value = format!("v{step}");
            history.push(set(step % 20, &format!("k{key}"), &value, from, to));
            values[key] = Some(value);
        } else {
            history.push(get(step % 20, &format!("k{key}"), values[key].as_deref(), from, to));
        }
    }
    assert!(matches!(check(&history), Linearizability::Linearizable { keys: 100, .. }));
}

// --- Brute force, for the property test ---------------------------------------------

/// Whether some order of the operations, respecting real time, with each indeterminate
/// operation either placed or left out, is accepted by the register from `state`.
fn brute_force(ops: &[KeyOp]) -> bool {
    fn place(ops: &[KeyOp], remaining: &mut Vec<usize>, state: State) -> bool {
        if remaining.iter().all(|&i| ops[i].return_us.is_none()) {
            return true;
        }
        for position in 0..remaining.len() {
            let candidate = remaining[position];
            // It may go next unless something still to place returned before it began.
            // (An indeterminate operation still to place must go before anything
            // invoked after its deadline, unless it is left out, which is tried below.)
            let blocked = remaining.iter().any(|&other| {
                ops[other]
                    .return_us
                    .or(ops[other].deadline_us)
                    .is_some_and(|returned| returned < ops[candidate].invoke_us)
            });
            if blocked {
                continue;
            }
            remaining.remove(position);
            let fits = ops[candidate].op.step(state).is_some_and(|after| place(ops, remaining, after));
            // Or leave an indeterminate operation out for good.
            let skipped = ops[candidate].return_us.is_none() && place(ops, remaining, state);
            remaining.insert(position, candidate);
            if fits || skipped {
                return true;
            }
        }
        false
    }
    place(ops, &mut (0..ops.len()).collect(), None)
}

fn register_op() -> impl Strategy<Value = RegisterOp> {
    let state = || prop::option::of(0u32..3);
    prop_oneof![
        state().prop_map(RegisterOp::Read),
        state().prop_map(RegisterOp::Write),
        state().prop_map(RegisterOp::Expire),
        prop::option::of(any::<bool>()).prop_map(|existed| RegisterOp::Delete { existed }),
        (state(), state(), prop::option::of((any::<bool>(), state())))
            .prop_map(|(expected, new, observed)| RegisterOp::CompareAndSet { expected, new, observed }),
    ]
}

/// Operations of up to 6 µs over 12 µs; an indeterminate one (no return) may have a
/// deadline up to 8 µs after its invocation.
fn key_ops() -> impl Strategy<Value = Vec<KeyOp>> {
    let op = (register_op(), 0u64..12, prop::option::of(0u64..6), prop::option::of(0u64..8));
    prop::collection::vec(op, 0..8).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(source, (op, invoke_us, length, deadline))| KeyOp {
                op,
                invoke_us,
                return_us: length.map(|length| invoke_us + length),
                deadline_us: deadline.filter(|_| length.is_none()).map(|deadline| invoke_us + deadline),
                source,
            })
            .collect()
    })
}

/// A witness-shaped history: up to 6 weakened writes (indeterminate, with or without
/// a deadline) over 0..8 µs, some of which end before the rest begins, and up to 4
/// determinate operations from 6 µs on, over few values, so the front cut has early
/// writes to drop, ties at its boundary, and chains of compare-and-sets to follow.
fn front_heavy_witness() -> impl Strategy<Value = shrink::Witness> {
    let state = || prop::option::of(0u32..4);
    let write = prop_oneof![
        state().prop_map(RegisterOp::Write),
        Just(RegisterOp::Delete { existed: None }),
        (state(), state()).prop_map(|(expected, new)| RegisterOp::CompareAndSet {
            expected,
            new,
            observed: None
        }),
    ];
    let weakened = prop::collection::vec((write, 0u64..8, prop::option::of(0u64..5)), 0..6);
    let core = prop::collection::vec((register_op(), 6u64..12, 0u64..4), 1..4);
    (weakened, core).prop_map(|(weakened, core)| {
        let weakened: Vec<KeyOp> = weakened
            .into_iter()
            .enumerate()
            .map(|(source, (op, invoke_us, length))| KeyOp {
                op,
                invoke_us,
                return_us: None,
                deadline_us: length.map(|length| invoke_us + length),
                source,
            })
            .collect();
        let core = core
            .into_iter()
            .enumerate()
            .map(|(index, (op, invoke_us, length))| KeyOp {
                op,
                invoke_us,
                return_us: Some(invoke_us + length),
                deadline_us: None,
                source: 100 + index,
            })
            .collect();
        shrink::Witness { core, weakened }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn the_search_agrees_with_brute_force(ops in key_ops()) {
        let expected = if brute_force(&ops) { SearchResult::Linearizable } else { SearchResult::NotLinearizable };
        for memory in [Memory::Exact, Memory::Fingerprint] {
            let mut budget = u64::MAX;
            prop_assert_eq!(search(&ops, &mut budget, memory), expected);
        }
    }

    #[test]
    fn shrunk_witnesses_are_not_linearizable(ops in key_ops()) {
        if !brute_force(&ops) {
            let mut budget = SHRINK_STEPS;
            let witness = shrink::shrink(&ops, &mut budget);
            prop_assert!(!witness.core.is_empty() && witness.ops().len() <= ops.len());
            prop_assert!(!brute_force(&witness.ops()));
        }
    }

    /// The front cut only weakens: a linearizable witness stays linearizable.
    #[test]
    fn the_front_cut_is_a_weakening(witness in front_heavy_witness()) {
        if brute_force(&witness.ops()) {
            let cut = shrink::cut_front(witness.clone());
            prop_assert!(brute_force(&cut.ops()), "{:?} cut to {:?}", witness, cut);
        }
    }

    /// The shrinker's steps only weaken: whatever operations it keeps as recorded, a
    /// linearizable history stays linearizable. So a witness without a linearization
    /// proves the history has none (and its anomaly is the history's).
    #[test]
    fn every_shrinking_step_is_a_weakening(ops in key_ops(), keep in prop::collection::vec(any::<bool>(), 8)) {
        if brute_force(&ops) {
            let core: Vec<usize> = (0..ops.len()).filter(|&position| keep[position] && ops[position].return_us.is_some()).collect();
            let weakened = shrink::weakening(&ops, &core);
            prop_assert!(brute_force(&weakened.ops()), "{:?}", weakened);
        }
    }
}

#[test]
fn a_witness_never_drops_a_write_the_history_relied_on() {
    // Seed 190 of `sim run --nodes 5 --faults heavy --reads local`, in small: client 1
    // sets, deletes by compare-and-set, and creates again; client 2 then reads absent
    // from a stale replica. Dropping the middle compare-and-set gives a made-up
    // anomaly (a create-if-absent over a present value) and hides the stale read.
    let cas = |expected: Option<&str>, new: Option<&str>, previous: Option<&str>, from, to| {
        let operation = Operation::CompareAndSet {
            key: "k0".into(),
            expected: expected.map(Into::into),
            new: new.map(Into::into),
        };
        op(
            1,
            operation,
            from,
            Some(to),
            Outcome::Ok(Response::Swapped { swapped: true, previous: previous.map(Into::into) }),
        )
    };
    let history = [
        set(1, "k0", "1.379", 0, 10),
        cas(Some("1.379"), None, Some("1.379"), 20, 30),
        cas(None, Some("1.382"), None, 40, 50),
        get(2, "k0", None, 60, 70),
    ];
    let (witness, overlapping, _) = weakened_witness_of(&history);
    assert_eq!(
        witness,
        vec![history[2].clone(), history[3].clone()],
        "the create, then the stale read of absent"
    );
    assert_eq!(overlapping, vec![]);
    let violation = check(&history).violation().expect("a violation");
    assert!(
        violation.detail.contains("even if every other write on the key took effect at any time"),
        "{}",
        violation.detail
    );
}

#[test]
fn the_front_cut_keeps_the_writes_a_kept_compare_and_set_needs() {
    // Before the read, two writes of values it never names, and a compare-and-set from
    // one of them to what it reads: that one must stay, or "b" has no source.
    let weakened = |op, invoke_us, deadline_us, source| KeyOp {
        op,
        invoke_us,
        return_us: None,
        deadline_us: Some(deadline_us),
        source,
    };
    let (a, b, c) = (Some(0), Some(1), Some(2));
    let witness = shrink::Witness {
        core: vec![KeyOp {
            op: RegisterOp::Read(b),
            invoke_us: 10,
            return_us: Some(11),
            deadline_us: None,
            source: 3,
        }],
        weakened: vec![
            weakened(RegisterOp::Write(a), 0, 1, 0),
            weakened(RegisterOp::CompareAndSet { expected: a, new: b, observed: None }, 2, 3, 1),
            weakened(RegisterOp::Write(c), 0, 1, 2),
        ],
    };
    assert!(brute_force(&witness.ops()));
    let cut = shrink::cut_front(witness);
    assert!(brute_force(&cut.ops()), "{cut:?}");
}
