//! CMM balloon and VIO entitlement accounting (pure logic).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod vio;
