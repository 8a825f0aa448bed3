//! A slot's state word: a member's bucket state, or a control word (see the protocol table in
//! the module docs).
//!
//! | bits | member (bit 63 set) | control (bit 63 clear) |
//! |---|---|---|
//! | 63 | 1 | 0 |
//! | `s .. 63` | tier index (`63 − s` bits) | version (bits 11..63, 52 bits) |
//! | `0 .. s` | bucket state (`s` = [`state bits`](super::Table::state_bits)) | tier (bits 3..11), tag (bits 0..3) |
//!
//! All-zero memory is an empty slot.

/// Set in every member word, clear in every control word.
pub(super) const MEMBER: u64 = 1 << 63;

const TAG_MASK: u64 = 0b111;
/// No holder. Claimed by a compare-and-swap.
pub(super) const EMPTY: u64 = 0;
/// Claimed by one participant, which is writing its key.
pub(super) const BUSY: u64 = 1;
/// The key is written; waiting to be promoted to member (or killed) by any participant.
pub(super) const INSERTING: u64 = 2;
/// An inserting copy that lost to another copy of the same key; any participant empties it.
pub(super) const KILLED: u64 = 3;

const TIER_SHIFT: u32 = 3;
const VERSION_SHIFT: u32 = 11;
/// Versions are 52 bits.
pub(super) const VERSION_MASK: u64 = (1 << 52) - 1;

pub(super) const fn is_member(w: u64) -> bool {
    w & MEMBER != 0
}

/// An empty slot: a control word tagged [`EMPTY`].
pub(super) const fn is_empty(w: u64) -> bool {
    w & (MEMBER | TAG_MASK) == 0
}

pub(super) const fn tag(w: u64) -> u64 {
    w & TAG_MASK
}

/// The tier of a control word (meaningful for busy and inserting).
#[allow(clippy::cast_possible_truncation)] // 8 bits
pub(super) const fn control_tier(w: u64) -> usize {
    ((w >> TIER_SHIFT) & 0xff) as usize
}

pub(super) const fn control(tag: u64, tier: usize, version: u64) -> u64 {
    ((version & VERSION_MASK) << VERSION_SHIFT) | ((tier as u64 & 0xff) << TIER_SHIFT) | tag
}

/// The claim version of a control word.
pub(super) const fn version(w: u64) -> u64 {
    (w >> VERSION_SHIFT) & VERSION_MASK
}

/// The same control word with another tag.
pub(super) const fn with_tag(w: u64, tag: u64) -> u64 {
    (w & !TAG_MASK) | tag
}

/// A member word: `state` must fit `bits` bits, `tier` the bits above.
pub(super) const fn member(tier: usize, state: u64, bits: u32) -> u64 {
    MEMBER | ((tier as u64) << bits) | state
}

/// The tier of a member word.
#[allow(clippy::cast_possible_truncation)] // at most 8 bits
pub(super) const fn member_tier(w: u64, bits: u32) -> usize {
    ((w & !MEMBER) >> bits) as usize
}

/// The bucket state of a member word.
pub(super) const fn member_state(w: u64, bits: u32) -> u64 {
    w & ((1 << bits) - 1)
}

/// `true` if `state` fits `bits` bits.
pub(super) const fn fits(state: u64, bits: u32) -> bool {
    state >> bits == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_and_control_words_round_trip_and_never_meet() {
        for bits in [55, 60, 63] {
            let w = member(0, (1 << bits) - 1, bits);
            assert!(is_member(w));
            assert_eq!(member_state(w, bits), (1 << bits) - 1);
            assert_eq!(member_tier(w, bits), 0);
            if bits < 63 {
                let max_tier = (1usize << (63 - bits)) - 1;
                let w = member(max_tier, 5, bits);
                assert_eq!((member_tier(w, bits), member_state(w, bits)), (max_tier, 5));
            }
        }
        let c = control(INSERTING, 255, VERSION_MASK);
        assert!(!is_member(c));
        assert_eq!((tag(c), control_tier(c)), (INSERTING, 255));
        assert_eq!(tag(with_tag(c, KILLED)), KILLED);
        assert_eq!(control(EMPTY, 0, 0), 0);
    }
}
