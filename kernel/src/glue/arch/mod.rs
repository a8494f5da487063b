//! CPU-specific code: entry, vectors, interrupts that return (`trap`), builtins,
//! special registers.

#[macro_use]
mod abi;

pub mod builtins;
pub mod cpu;
pub mod entry;
pub mod exceptions;
pub mod fault;
pub mod trap;
