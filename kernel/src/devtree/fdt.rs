//! A bounds-checked reader of flattened device tree blobs (version 16/17).
//!
//! The `fdt` crate (0.1.5) indexes slices without checking and panics on truncated
//! or corrupted blobs, and a kernel must not panic on its input. So the blob is
//! validated once, completely, in [`Fdt::new`]: header, block bounds, every token,
//! every name and property, node nesting. Walking the tree afterwards cannot fail,
//! and the accessors still return `None` rather than index out of range.

use hcall::endian::FIRMWARE;

use core::fmt;

/// The blob's magic number.
pub const MAGIC: u32 = 0xd00d_feed;
/// Structure-block tokens.
pub(crate) const TOKEN_BEGIN_NODE: u32 = 1;
pub(crate) const TOKEN_END_NODE: u32 = 2;
pub(crate) const TOKEN_PROP: u32 = 3;
const TOKEN_NOP: u32 = 4;
pub(crate) const TOKEN_END: u32 = 9;
/// Bytes in the header (version 17).
pub const HEADER_LEN: usize = 40;
const MAX_DEPTH: usize = 64;

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// Shorter than the header, or than its own `totalsize`.
    Truncated,
    /// The magic number is not 0xd00dfeed.
    BadMagic(u32),
    /// `last_comp_version` is newer than 17, or `version` older than 16.
    BadVersion(u32),
    /// A block (structure, strings, reserve map) lies outside the blob.
    BadLayout,
    /// A token, name or property is malformed at this offset of the structure block.
    BadStructure(usize),
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdtError::Truncated => write!(f, "device tree blob is truncated"),
            FdtError::BadMagic(m) => write!(f, "device tree magic is {m:#x}, not 0xd00dfeed"),
            FdtError::BadVersion(v) => write!(f, "device tree version {v} is not supported"),
            FdtError::BadLayout => write!(f, "device tree blocks lie outside the blob"),
            FdtError::BadStructure(o) => {
                write!(f, "device tree structure is malformed at offset {o:#x}")
            }
        }
    }
}

/// One big-endian cell of the blob (the FDT is big-endian in both images).
pub fn be32(b: &[u8], off: usize) -> Option<u32> {
    FIRMWARE.get_at(b, off)
}

fn align4(v: usize) -> Option<usize> {
    v.checked_add(3).map(|x| x & !3)
}

/// Reads `totalsize` from a blob header, for a caller that only has a pointer.
pub fn total_size(header: &[u8]) -> Result<usize, FdtError> {
    let magic = be32(header, 0).ok_or(FdtError::Truncated)?;
    if magic != MAGIC {
        return Err(FdtError::BadMagic(magic));
    }
    let size = be32(header, 4).ok_or(FdtError::Truncated)?;
    usize::try_from(size).map_err(|_| FdtError::BadLayout)
}

/// Whether `addr`, as a boot ROM leaves it in r3, may point at a blob: non-zero,
/// 4-byte aligned and below 1 TiB (so reading a word there is harmless).
pub fn plausible_blob_address(addr: u64) -> bool {
    addr != 0 && addr.is_multiple_of(4) && addr <= 1 << 40
}

/// Whether a blob's first word, as the CPU loaded it from memory (in the
/// firmware's byte order, big-endian), is the magic.
pub fn is_magic_word(loaded: u32) -> bool {
    hcall::endian::FIRMWARE.loaded(loaded) == MAGIC
}

/// The size of the blob whose header is `header`: at least a header and at most
/// `max` bytes, or why it is not a blob to copy.
pub fn blob_size(header: &[u8], max: usize) -> Result<usize, &'static str> {
    let size = total_size(header).map_err(|_| "r3 does not point at a device tree")?;
    if !(HEADER_LEN..=max).contains(&size) {
        return Err("device tree size out of range");
    }
    Ok(size)
}

/// A validated device tree blob.
#[derive(Clone, Copy)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
    reserved: &'a [u8],
    total: usize,
    version: u32,
    boot_cpu: u32,
}

/// A node of the tree: its name and where its contents start.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    /// The node name including the unit address (`vty@71000000`); empty for the root.
    pub name: &'a str,
    /// Offset of the first token after the node's BEGIN_NODE and name.
    body: usize,
}

/// A property: its name and raw value.
#[derive(Clone, Copy, Debug)]
pub struct Property<'a> {
    /// The property name.
    pub name: &'a str,
    /// The raw (big-endian) value.
    pub value: &'a [u8],
}

impl<'a> Fdt<'a> {
    /// Validates `blob` completely and returns a reader for it.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtError> {
        if blob.len() < HEADER_LEN {
            return Err(FdtError::Truncated);
        }
        let total = total_size(blob)?;
        if total < HEADER_LEN || total > blob.len() {
            return Err(FdtError::Truncated);
        }
        let blob = &blob[..total];
        let h = |i: usize| be32(blob, i * 4).ok_or(FdtError::Truncated);
        let (off_struct, off_strings, off_rsv) = (h(2)?, h(3)?, h(4)?);
        let (version, last_comp, boot_cpu) = (h(5)?, h(6)?, h(7)?);
        let size_strings = h(8)?;
        if version < 16 || last_comp > 17 {
            return Err(FdtError::BadVersion(version));
        }
        let size_struct = if version >= 17 {
            h(9)?
        } else {
            u32::try_from(total)
                .unwrap_or(u32::MAX)
                .saturating_sub(off_struct)
        };
        let block = |off: u32, len: u32| -> Result<&'a [u8], FdtError> {
            let start = usize::try_from(off).map_err(|_| FdtError::BadLayout)?;
            let len = usize::try_from(len).map_err(|_| FdtError::BadLayout)?;
            let end = start.checked_add(len).ok_or(FdtError::BadLayout)?;
            if start < HEADER_LEN {
                return Err(FdtError::BadLayout);
            }
            blob.get(start..end).ok_or(FdtError::BadLayout)
        };
        let structs = block(off_struct, size_struct)?;
        let strings = block(off_strings, size_strings)?;
        let rsv_start = usize::try_from(off_rsv).map_err(|_| FdtError::BadLayout)?;
        if rsv_start < HEADER_LEN || rsv_start % 8 != 0 {
            return Err(FdtError::BadLayout);
        }
        let reserved = blob.get(rsv_start..).ok_or(FdtError::BadLayout)?;
        let fdt = Fdt {
            structs,
            strings,
            reserved,
            total,
            version,
            boot_cpu,
        };
        fdt.validate()?;
        fdt.validate_reserved()?;
        Ok(fdt)
    }

    fn validate_reserved(&self) -> Result<(), FdtError> {
        let mut off = 0;
        loop {
            let e = self
                .reserved
                .get(off..off + 16)
                .ok_or(FdtError::BadLayout)?;
            if e.iter().all(|&b| b == 0) {
                return Ok(());
            }
            off += 16;
        }
    }

    /// Walks the whole structure block once, checking every token.
    fn validate(&self) -> Result<(), FdtError> {
        let mut off = 0usize;
        let mut depth = 0usize;
        let mut seen_root = false;
        loop {
            let tok = be32(self.structs, off).ok_or(FdtError::BadStructure(off))?;
            let at = off;
            off += 4;
            match tok {
                TOKEN_BEGIN_NODE => {
                    if depth == 0 && seen_root {
                        return Err(FdtError::BadStructure(at));
                    }
                    seen_root = true;
                    let (_, next) = self.name_at(off).ok_or(FdtError::BadStructure(at))?;
                    off = next;
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(FdtError::BadStructure(at));
                    }
                }
                TOKEN_END_NODE => {
                    depth = depth.checked_sub(1).ok_or(FdtError::BadStructure(at))?;
                }
                TOKEN_PROP => {
                    if depth == 0 {
                        return Err(FdtError::BadStructure(at));
                    }
                    let (_, next) = self.prop_at(off).ok_or(FdtError::BadStructure(at))?;
                    off = next;
                }
                TOKEN_NOP => {}
                TOKEN_END => {
                    return if depth == 0 && seen_root {
                        Ok(())
                    } else {
                        Err(FdtError::BadStructure(at))
                    };
                }
                _ => return Err(FdtError::BadStructure(at)),
            }
        }
    }

    /// The NUL-terminated node name at `off`, and the aligned offset after it.
    fn name_at(&self, off: usize) -> Option<(&'a str, usize)> {
        let rest = self.structs.get(off..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        let name = core::str::from_utf8(&rest[..len]).ok()?;
        let next = align4(off.checked_add(len)?.checked_add(1)?)?;
        if next > self.structs.len() {
            return None;
        }
        Some((name, next))
    }

    /// The property whose header (len, nameoff) is at `off`, and the offset after it.
    fn prop_at(&self, off: usize) -> Option<(Property<'a>, usize)> {
        let len = usize::try_from(be32(self.structs, off)?).ok()?;
        let nameoff = usize::try_from(be32(self.structs, off.checked_add(4)?)?).ok()?;
        let start = off.checked_add(8)?;
        let end = start.checked_add(len)?;
        let value = self.structs.get(start..end)?;
        let names = self.strings.get(nameoff..)?;
        let nlen = names.iter().position(|&b| b == 0)?;
        let name = core::str::from_utf8(&names[..nlen]).ok()?;
        Some((Property { name, value }, align4(end)?))
    }

    /// The root node.
    pub fn root(&self) -> Node<'a> {
        // validate() proved the first non-NOP token is BEGIN_NODE.
        let mut off = 0;
        while be32(self.structs, off) == Some(TOKEN_NOP) {
            off += 4;
        }
        let (name, body) = self.name_at(off + 4).unwrap_or(("", off + 4));
        Node {
            fdt: *self,
            name,
            body,
        }
    }

    /// The node at an absolute path like `/vdevice/vty@71000000`. A component
    /// without a unit address matches a node whose name has one (`/cpus/PowerPC,POWER9`).
    pub fn find(&self, path: &str) -> Option<Node<'a>> {
        let mut node = self.root();
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            node = node.children().find(|c| {
                c.name == comp || (!comp.contains('@') && c.name.split('@').next() == Some(comp))
            })?;
        }
        Some(node)
    }

    /// Every node, depth first, the root first.
    pub fn all_nodes(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        AllNodes {
            pending: Some(self.root()),
            stack: alloc::vec::Vec::new(),
        }
    }

    /// The memory reservation map entries (address, size).
    pub fn reserved_memory(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let r = self.reserved;
        (0..)
            .map(move |i: usize| {
                let e = r.get(i * 16..i * 16 + 16)?;
                let a = FIRMWARE.get_at(e, 0)?;
                let s = FIRMWARE.get_at(e, 8)?;
                Some((a, s))
            })
            .take_while(|e| matches!(e, Some((a, s)) if *a != 0 || *s != 0))
            .flatten()
    }

    /// `totalsize` from the header.
    pub fn total_size(&self) -> usize {
        self.total
    }

    /// The blob's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// `boot_cpuid_phys` from the header.
    pub fn boot_cpu(&self) -> u32 {
        self.boot_cpu
    }
}

struct AllNodes<'a> {
    pending: Option<Node<'a>>,
    stack: alloc::vec::Vec<Children<'a>>,
}

impl<'a> Iterator for AllNodes<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        if let Some(n) = self.pending.take() {
            self.stack.push(n.children());
            return Some(n);
        }
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                Some(n) => {
                    self.stack.push(n.children());
                    return Some(n);
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

/// Iterator over the direct children of a node.
pub struct Children<'a> {
    fdt: Fdt<'a>,
    off: usize,
    done: bool,
}

impl<'a> Iterator for Children<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        if self.done {
            return None;
        }
        // Skip properties and NOPs; stop at our END_NODE.
        loop {
            let tok = be32(self.fdt.structs, self.off)?;
            match tok {
                TOKEN_PROP => {
                    let (_, next) = self.fdt.prop_at(self.off + 4)?;
                    self.off = next;
                }
                TOKEN_NOP => self.off += 4,
                TOKEN_BEGIN_NODE => {
                    let (name, body) = self.fdt.name_at(self.off + 4)?;
                    let node = Node {
                        fdt: self.fdt,
                        name,
                        body,
                    };
                    self.off = skip_node(&self.fdt, body)?;
                    return Some(node);
                }
                _ => {
                    self.done = true;
                    return None;
                }
            }
        }
    }
}

/// Returns the offset just past the END_NODE that closes the node whose body starts at `off`.
fn skip_node(fdt: &Fdt<'_>, mut off: usize) -> Option<usize> {
    let mut depth = 1usize;
    while depth > 0 {
        match be32(fdt.structs, off)? {
            TOKEN_BEGIN_NODE => {
                let (_, next) = fdt.name_at(off + 4)?;
                off = next;
                depth += 1;
            }
            TOKEN_END_NODE => {
                off += 4;
                depth -= 1;
            }
            TOKEN_PROP => {
                let (_, next) = fdt.prop_at(off + 4)?;
                off = next;
            }
            TOKEN_NOP => off += 4,
            _ => return None,
        }
    }
    Some(off)
}

/// Iterator over the properties of one node.
pub struct Properties<'a> {
    fdt: Fdt<'a>,
    off: usize,
}

impl<'a> Iterator for Properties<'a> {
    type Item = Property<'a>;
    fn next(&mut self) -> Option<Property<'a>> {
        loop {
            match be32(self.fdt.structs, self.off)? {
                TOKEN_PROP => {
                    let (p, next) = self.fdt.prop_at(self.off + 4)?;
                    self.off = next;
                    return Some(p);
                }
                TOKEN_NOP => self.off += 4,
                _ => return None,
            }
        }
    }
}

impl<'a> Node<'a> {
    /// The direct children.
    pub fn children(&self) -> Children<'a> {
        Children {
            fdt: self.fdt,
            off: self.body,
            done: false,
        }
    }

    /// The properties.
    pub fn properties(&self) -> Properties<'a> {
        Properties {
            fdt: self.fdt,
            off: self.body,
        }
    }

    /// The property called `name`.
    pub fn property(&self, name: &str) -> Option<Property<'a>> {
        self.properties().find(|p| p.name == name)
    }

    /// The unit address part of the name (after `@`), if any.
    pub fn unit_address(&self) -> Option<&'a str> {
        self.name.split_once('@').map(|(_, a)| a)
    }
}

impl<'a> Property<'a> {
    /// The value as one big-endian u32.
    pub fn as_u32(&self) -> Option<u32> {
        if self.value.len() == 4 {
            be32(self.value, 0)
        } else {
            None
        }
    }

    /// The value as big-endian u32 cells (None if the length is not a multiple of 4).
    pub fn cells(&self) -> Option<impl Iterator<Item = u32> + 'a> {
        if !self.value.len().is_multiple_of(4) {
            return None;
        }
        let v = self.value;
        Some((0..v.len() / 4).filter_map(move |i| be32(v, i * 4)))
    }

    /// The value as a NUL-terminated string.
    pub fn as_str(&self) -> Option<&'a str> {
        let (last, body) = self.value.split_last()?;
        if *last != 0 || body.contains(&0) {
            return None;
        }
        core::str::from_utf8(body).ok()
    }

    /// The value as a list of NUL-terminated strings.
    pub fn as_str_list(&self) -> Option<impl Iterator<Item = &'a str> + 'a> {
        if self.value.last() != Some(&0) {
            return None;
        }
        let body = &self.value[..self.value.len() - 1];
        if core::str::from_utf8(body).is_err() {
            return None;
        }
        Some(
            body.split(|&b| b == 0)
                .map(|s| core::str::from_utf8(s).unwrap_or("")),
        )
    }
}
