//! `lpar-pool`: a host program that plays the PowerVM hypervisor's shared-memory
//! pool for several lpar-cmm guests under QEMU (docs/pool-manager.md).
//!
//! - [`policy`]: the division of the pool per tick (pure; the in-guest model's
//!   arithmetic), free before grant, uncooperative and dead guests.
//! - [`config`]: the TOML configuration, checked before anything starts.

pub mod config;
pub mod policy;
