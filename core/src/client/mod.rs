//! Client toolkit (SPEC §11). Being written; see issue 9.
