//! Keyed table (SPEC §10). Being written; see issue 3.
