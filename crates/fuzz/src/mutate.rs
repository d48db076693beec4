//! Inputs made by mutating corpus entries, as a proptest strategy: a value
//! is a corpus entry and a list of mutations, so shrinking a failure drops
//! mutations and moves their positions towards the start.

use std::cell::Cell;
use std::sync::{Arc, Once};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// Integers that sit on the edges parsers check.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    u64::MAX,
    u64::MAX - 1,
    i64::MAX as u64,
];

/// One edit of an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    AddByte(Index, i8),
    /// Writes an interesting integer of 1, 2, 4 or 8 bytes, either order.
    Integer {
        at: Index,
        value: Index,
        width: u8,
        big_endian: bool,
    },
    Insert(Index, Vec<u8>),
    Delete(Index, u16),
    /// Copies a range of the input to another position.
    Duplicate {
        from: Index,
        len: u16,
        to: Index,
    },
    /// Inserts a range of another corpus entry.
    Splice {
        entry: Index,
        from: Index,
        len: u16,
        to: Index,
    },
    /// Inserts (or overwrites with) one of the target's tokens.
    Token {
        token: Index,
        at: Index,
        overwrite: bool,
    },
    Truncate(Index),
    /// Replaces the input with random bytes.
    Replace(Vec<u8>),
    /// Edits one value of an input that is JSON ([`crate::json`]).
    Json {
        node: u16,
        action: u8,
        pick: u16,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => (any::<Index>(), -16i8..=16).prop_map(|(i, d)| Mutation::AddByte(i, d)),
        2 => (any::<Index>(), any::<Index>(), prop_oneof![Just(1u8), Just(2), Just(4), Just(8)], any::<bool>())
            .prop_map(|(at, value, width, big_endian)| Mutation::Integer { at, value, width, big_endian }),
        2 => (any::<Index>(), vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<Index>(), 1u16..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), 1u16..256, any::<Index>())
            .prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
        2 => (any::<Index>(), any::<Index>(), 1u16..512, any::<Index>())
            .prop_map(|(entry, from, len, to)| Mutation::Splice { entry, from, len, to }),
        3 => (any::<Index>(), any::<Index>(), any::<bool>())
            .prop_map(|(token, at, overwrite)| Mutation::Token { token, at, overwrite }),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => vec(any::<u8>(), 0..256).prop_map(Mutation::Replace),
        4 => (any::<u16>(), any::<u8>(), any::<u16>())
            .prop_map(|(node, action, pick)| Mutation::Json { node, action, pick }),
    ]
}

/// Inputs from `entries` (at least one) mutated 1 to 8 times.
pub(crate) fn inputs(
    entries: Arc<Vec<Vec<u8>>>,
    tokens: Arc<Vec<Vec<u8>>>,
    max_len: usize,
) -> impl Strategy<Value = Vec<u8>> {
    (any::<Index>(), vec(mutation(), 1..=8)).prop_map(move |(entry, mutations)| {
        let mut input = entries[entry.index(entries.len())].clone();
        input.truncate(max_len);
        for m in &mutations {
            apply(m, &mut input, &entries, &tokens);
            input.truncate(max_len);
        }
        input
    })
}

/// A position in `0..=len` (inserting at the end is allowed).
fn pos(i: &Index, len: usize) -> usize {
    i.index(len + 1)
}

fn apply(m: &Mutation, input: &mut Vec<u8>, entries: &[Vec<u8>], tokens: &[Vec<u8>]) {
    let len = input.len();
    match m {
        Mutation::FlipBit(i, bit) if len > 0 => input[i.index(len)] ^= 1 << bit,
        Mutation::SetByte(i, b) if len > 0 => input[i.index(len)] = *b,
        Mutation::AddByte(i, d) if len > 0 => {
            let at = i.index(len);
            input[at] = input[at].wrapping_add_signed(*d);
        }
        Mutation::Integer {
            at,
            value,
            width,
            big_endian,
        } => {
            let v = INTERESTING[value.index(INTERESTING.len())];
            let w = usize::from(*width);
            let bytes = if *big_endian {
                v.to_be_bytes()[8 - w..].to_vec()
            } else {
                v.to_le_bytes()[..w].to_vec()
            };
            overwrite(input, pos(at, len), &bytes);
        }
        Mutation::Insert(i, bytes) => {
            let at = pos(i, len);
            input.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete(i, n) if len > 0 => {
            let at = i.index(len);
            let end = (at + usize::from(*n)).min(len);
            input.drain(at..end);
        }
        Mutation::Duplicate { from, len: n, to } if len > 0 => {
            let start = from.index(len);
            let end = (start + usize::from(*n)).min(len);
            let chunk = input[start..end].to_vec();
            let at = pos(to, len);
            input.splice(at..at, chunk);
        }
        Mutation::Splice {
            entry,
            from,
            len: n,
            to,
        } => {
            let other = &entries[entry.index(entries.len())];
            if !other.is_empty() {
                let start = from.index(other.len());
                let end = (start + usize::from(*n)).min(other.len());
                let at = pos(to, len);
                input.splice(at..at, other[start..end].iter().copied());
            }
        }
        Mutation::Token {
            token,
            at,
            overwrite: over,
        } if !tokens.is_empty() => {
            let t = &tokens[token.index(tokens.len())];
            let at = pos(at, len);
            if *over {
                overwrite(input, at, t);
            } else {
                input.splice(at..at, t.iter().copied());
            }
        }
        Mutation::Truncate(i) => input.truncate(pos(i, len)),
        Mutation::Replace(bytes) => *input = bytes.clone(),
        Mutation::Json { node, action, pick } => crate::json::edit(
            input,
            usize::from(*node),
            *action,
            usize::from(*pick),
            entries,
            tokens,
        ),
        _ => {}
    }
}

fn overwrite(input: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let end = at + bytes.len();
    if end > input.len() {
        input.resize(end, 0);
    }
    input[at..end].copy_from_slice(bytes);
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// While alive, panics on this thread print nothing (the harness reports
/// the one that matters; shrinking would otherwise print thousands).
pub(crate) struct QuietPanics(());

impl QuietPanics {
    pub(crate) fn enter() -> Self {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !QUIET.with(Cell::get) {
                    previous(info);
                }
            }));
        });
        QUIET.with(|q| q.set(true));
        Self(())
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_in_bounds_of_empty_and_short_inputs() {
        let entries = vec![Vec::new(), b"x".to_vec()];
        let tokens = vec![b"tok".to_vec()];
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        runner
            .run(&(any::<Index>(), vec(mutation(), 1..=8)), |(e, ms)| {
                let mut input = entries[e.index(entries.len())].clone();
                for m in &ms {
                    apply(m, &mut input, &entries, &tokens);
                }
                Ok(())
            })
            .unwrap();
    }
}
