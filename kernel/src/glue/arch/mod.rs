//! CPU-specific code: entry, vectors, builtins, special registers.

pub mod builtins;
pub mod cpu;
pub mod entry;
pub mod exceptions;
