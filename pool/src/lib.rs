//! `lpar-pool`: a host program that plays the PowerVM hypervisor's shared-memory
//! pool for several lpar-cmm guests under QEMU (docs/pool-manager.md).
//!
//! - [`policy`]: the division of the pool per tick (pure; the in-guest model's
//!   arithmetic), free before grant, uncooperative and dead guests.
//! - [`config`]: the TOML configuration, checked before anything starts.
//! - [`qmp`]: the QMP client (every failure an error, never a panic).
//! - [`guest`]: starting a guest's QEMU, or attaching to one by its QMP socket.
//! - [`link`]: one guest's QMP session in a thread of its own, so that no tick
//!   waits for a guest.
//! - [`stats`]: the guest's virtio-balloon statistics as QMP returns them.
//! - [`manager`]: one tick: observe, divide, set the balloon targets, record.
//! - [`table`], [`trace`]: the live table, the CSV trace and the SVG plot.
//! - [`proc`]: process facts (RSS, CPU time, peer pid, dying with the manager).

pub mod config;
pub mod guest;
pub mod link;
pub mod manager;
pub mod policy;
pub mod proc;
pub mod qmp;
pub mod stats;
pub mod table;
pub mod trace;
