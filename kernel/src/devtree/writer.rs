//! A builder of flattened device tree blobs (version 17, last compatible 16).
//!
//! The blob is laid out as the devicetree specification describes: the 40-byte
//! header, the memory reservation map (8-byte aligned, ended by a zero entry),
//! the structure block (`BEGIN_NODE`, `PROP`, `END_NODE`, `END` tokens, each
//! 4-byte aligned) and the strings block, in which every property name appears
//! once however many nodes use it.
//!
//! The builder never panics: a name with a NUL byte, unbalanced nodes, or a blob
//! that would grow past the size limit given to [`FdtWriter::new`] is an
//! [`WriteError`]. It only assembles bytes; walking a tree to feed it is the
//! caller's business (see [`super::flatten`]).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use super::fdt::{HEADER_LEN, MAGIC, TOKEN_BEGIN_NODE, TOKEN_END, TOKEN_END_NODE, TOKEN_PROP};

const VERSION: u32 = 17;
const LAST_COMPATIBLE: u32 = 16;
const RESERVE_ENTRY: usize = 16;

/// Why the builder refused an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The blob would grow past `limit` bytes.
    TooLarge {
        /// The size limit given to [`FdtWriter::new`].
        limit: usize,
    },
    /// A node or property name contains a NUL byte (or a property name is empty).
    BadName,
    /// A property or `END_NODE` outside any node, a second root node, or
    /// `finish` with nodes still open.
    Unbalanced,
    /// A value does not fit the 32-bit fields of the format.
    Overflow,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::TooLarge { limit } => {
                write!(f, "the flattened device tree would exceed {limit} bytes")
            }
            WriteError::BadName => write!(f, "a node or property name is empty or contains NUL"),
            WriteError::Unbalanced => write!(f, "device tree nodes are not properly nested"),
            WriteError::Overflow => write!(f, "a device tree field does not fit 32 bits"),
        }
    }
}

/// Builds one FDT blob, node by node.
#[derive(Debug)]
pub struct FdtWriter {
    limit: usize,
    reserved: Vec<(u64, u64)>,
    structs: Vec<u8>,
    strings: Vec<u8>,
    string_offsets: BTreeMap<Vec<u8>, u32>,
    depth: usize,
    root_done: bool,
    boot_cpu: u32,
}

fn pad4(len: usize) -> Option<usize> {
    len.checked_add(3).map(|v| v & !3)
}

impl FdtWriter {
    /// A builder whose finished blob may be at most `limit` bytes long.
    pub fn new(limit: usize) -> Self {
        FdtWriter {
            limit,
            reserved: Vec::new(),
            structs: Vec::new(),
            strings: Vec::new(),
            string_offsets: BTreeMap::new(),
            depth: 0,
            root_done: false,
            boot_cpu: 0,
        }
    }

    /// Sets `boot_cpuid_phys` in the header.
    pub fn set_boot_cpu(&mut self, cpu: u32) {
        self.boot_cpu = cpu;
    }

    /// The size the blob would have if finished now (header, reservations and
    /// their terminator, structure block with its `END` token, strings).
    pub fn size(&self) -> Option<usize> {
        let rsv = self
            .reserved
            .len()
            .checked_add(1)?
            .checked_mul(RESERVE_ENTRY)?;
        HEADER_LEN
            .checked_add(rsv)?
            .checked_add(self.structs.len())?
            .checked_add(4)?
            .checked_add(self.strings.len())
    }

    /// Fails unless `extra` more bytes keep the blob within the limit.
    fn ensure_room(&self, extra: usize) -> Result<(), WriteError> {
        let too_large = WriteError::TooLarge { limit: self.limit };
        let total = self
            .size()
            .and_then(|s| s.checked_add(extra))
            .ok_or(too_large)?;
        if total > self.limit {
            return Err(too_large);
        }
        Ok(())
    }

    /// Adds a memory reservation map entry.
    pub fn add_reservation(&mut self, address: u64, size: u64) -> Result<(), WriteError> {
        if address == 0 && size == 0 {
            // That entry would end the map early; it reserves nothing anyway.
            return Ok(());
        }
        self.ensure_room(RESERVE_ENTRY)?;
        self.reserved.push((address, size));
        Ok(())
    }

    /// Opens a node. `name` includes the unit address (`vty@71000000`) and is
    /// empty for the root, which must be the first node.
    pub fn begin_node(&mut self, name: &[u8]) -> Result<(), WriteError> {
        if name.contains(&0) {
            return Err(WriteError::BadName);
        }
        if self.depth == 0 && self.root_done {
            return Err(WriteError::Unbalanced);
        }
        let padded = name
            .len()
            .checked_add(1)
            .and_then(pad4)
            .ok_or(WriteError::Overflow)?;
        self.ensure_room(padded.checked_add(4).ok_or(WriteError::Overflow)?)?;
        self.structs
            .extend_from_slice(&TOKEN_BEGIN_NODE.to_be_bytes());
        let start = self.structs.len();
        self.structs.extend_from_slice(name);
        self.structs.resize(start + padded, 0);
        self.depth += 1;
        self.root_done = true;
        Ok(())
    }

    /// Adds a property to the open node.
    pub fn property(&mut self, name: &[u8], value: &[u8]) -> Result<(), WriteError> {
        if name.is_empty() || name.contains(&0) {
            return Err(WriteError::BadName);
        }
        if self.depth == 0 {
            return Err(WriteError::Unbalanced);
        }
        let len = u32::try_from(value.len()).map_err(|_| WriteError::Overflow)?;
        let padded = pad4(value.len()).ok_or(WriteError::Overflow)?;
        let existing = self.string_offsets.get(name).copied();
        let new_string = if existing.is_none() {
            name.len().checked_add(1).ok_or(WriteError::Overflow)?
        } else {
            0
        };
        let need = padded
            .checked_add(12)
            .and_then(|v| v.checked_add(new_string))
            .ok_or(WriteError::Overflow)?;
        self.ensure_room(need)?;
        let nameoff = match existing {
            Some(off) => off,
            None => {
                let off = u32::try_from(self.strings.len()).map_err(|_| WriteError::Overflow)?;
                self.strings.extend_from_slice(name);
                self.strings.push(0);
                self.string_offsets.insert(name.to_vec(), off);
                off
            }
        };
        self.structs.extend_from_slice(&TOKEN_PROP.to_be_bytes());
        self.structs.extend_from_slice(&len.to_be_bytes());
        self.structs.extend_from_slice(&nameoff.to_be_bytes());
        let start = self.structs.len();
        self.structs.extend_from_slice(value);
        self.structs.resize(start + padded, 0);
        Ok(())
    }

    /// Closes the open node.
    pub fn end_node(&mut self) -> Result<(), WriteError> {
        if self.depth == 0 {
            return Err(WriteError::Unbalanced);
        }
        self.ensure_room(4)?;
        self.structs
            .extend_from_slice(&TOKEN_END_NODE.to_be_bytes());
        self.depth -= 1;
        Ok(())
    }

    /// How many nodes are open.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Assembles the blob. Every node must be closed and a root must exist.
    pub fn finish(self) -> Result<Vec<u8>, WriteError> {
        if self.depth != 0 || !self.root_done {
            return Err(WriteError::Unbalanced);
        }
        let total = self
            .size()
            .ok_or(WriteError::TooLarge { limit: self.limit })?;
        if total > self.limit {
            return Err(WriteError::TooLarge { limit: self.limit });
        }
        let off_rsv = HEADER_LEN;
        let rsv_len = (self.reserved.len() + 1) * RESERVE_ENTRY;
        let off_struct = off_rsv + rsv_len;
        let size_struct = self.structs.len() + 4;
        let off_strings = off_struct + size_struct;
        let field = |v: usize| u32::try_from(v).map_err(|_| WriteError::Overflow);
        let header = [
            MAGIC,
            field(total)?,
            field(off_struct)?,
            field(off_strings)?,
            field(off_rsv)?,
            VERSION,
            LAST_COMPATIBLE,
            self.boot_cpu,
            field(self.strings.len())?,
            field(size_struct)?,
        ];
        let mut blob = Vec::new();
        blob.try_reserve_exact(total)
            .map_err(|_| WriteError::TooLarge { limit: self.limit })?;
        for word in header {
            blob.extend_from_slice(&word.to_be_bytes());
        }
        for (address, size) in &self.reserved {
            blob.extend_from_slice(&address.to_be_bytes());
            blob.extend_from_slice(&size.to_be_bytes());
        }
        blob.extend_from_slice(&[0u8; RESERVE_ENTRY]);
        blob.extend_from_slice(&self.structs);
        blob.extend_from_slice(&TOKEN_END.to_be_bytes());
        blob.extend_from_slice(&self.strings);
        Ok(blob)
    }
}
