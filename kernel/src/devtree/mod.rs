//! The device tree: a checked blob reader, the platform facts taken from it, and
//! a blob builder with the walk that flattens an Open Firmware tree into one, and the
//! `devtree` command's text ([`report`]).

pub mod argblock;
pub mod fdt;
pub mod firmware;
pub mod flatten;
pub mod platform;
pub mod report;
pub mod writer;

pub use fdt::{Fdt, FdtError};
pub use platform::{gather, DmaWindow, MemRange, Platform, VDevice};
