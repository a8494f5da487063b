//! The device tree: a checked blob reader and the platform facts taken from it.

pub mod fdt;
pub mod platform;

pub use fdt::{Fdt, FdtError};
pub use platform::{gather, DmaWindow, MemRange, Platform, VDevice};
