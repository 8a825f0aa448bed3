//! Claimants: who holds a slot mid-insert, so a claim whose holder is gone can be undone.
//!
//! A new key's insertion claims an empty slot (busy), writes the key's two words, then marks
//! the slot inserting. A participant that stops forever between the claim and the mark leaves
//! the slot busy; nobody else may empty it while its holder could still write the key words
//! (they would land in a slot that is no longer its holder's). A table told its [`Claimants`]
//! records the claimant in each busy word and empties a busy slot whose claimant
//! [`is_gone`](Claimants::is_gone): a claimant that is gone never writes again. The shared
//! regions (feature `shared`) use the process id and ask the kernel whether the process exists.
//!
//! A busy word's 52-bit claim version then holds the claimant's id (22 bits) above the low 30
//! bits of the table's claim counter, instead of the whole counter. Versions stay distinct
//! between claimants; one claimant's versions repeat only after 2³⁰ (about a billion) claims in
//! the table, which a participant would have to sleep through between reading a control word
//! and swapping it for the swap to succeed on the wrong claim.

/// The largest claimant id a busy word holds (22 bits: every Linux process id).
pub const MAX_CLAIMANT: u32 = (1 << CLAIMANT_BITS) - 1;

/// Bits of the claimant id at the top of a claim version.
const CLAIMANT_BITS: u32 = 22;
/// Bits of the claim counter below it, when claimants are recorded.
pub(super) const SEQUENCE_BITS: u32 = 30;

/// The participants that claim a table's slots.
///
/// # Contract
///
/// [`is_gone`](Claimants::is_gone) may answer `true` for an id only if no participant that
/// claimed with that id can ever write to the table again (its process has exited): the table
/// then empties that participant's busy slots. Answering `false` is always safe (the slot stays
/// busy). An id of 0 is never gone.
pub trait Claimants: Sync {
    /// The calling participant's id, at most [`MAX_CLAIMANT`]; 0 for one whose claims must
    /// never be undone.
    fn current(&self) -> u32;

    /// `true` only if participant `id` will never write to the table again.
    fn is_gone(&self, id: u32) -> bool;
}

/// The claim version of a claim by `claimant` with claim counter value `count`.
pub(super) fn version(claimant: u32, count: u64) -> u64 {
    let id = if claimant > MAX_CLAIMANT { 0 } else { claimant };
    (u64::from(id) << SEQUENCE_BITS) | (count & ((1 << SEQUENCE_BITS) - 1))
}

/// The claimant id in a claim version made by [`version`].
#[allow(clippy::cast_possible_truncation)] // 22 bits
pub(super) const fn claimant(version: u64) -> u32 {
    (version >> SEQUENCE_BITS) as u32 & MAX_CLAIMANT
}
