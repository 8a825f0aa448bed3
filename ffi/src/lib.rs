//! The C ABI of tollgate. See `include/tollgate.h`.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
