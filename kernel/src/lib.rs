//! lpar-cmm kernel library.
#![cfg_attr(not(test), no_std)]
