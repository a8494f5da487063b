//! Flattening a live Open Firmware device tree into an FDT blob.
//!
//! Under Open Firmware (SLOF, VOF, a PowerVM LPAR) the kernel gets no blob: it
//! asks the firmware's client interface about the tree node by node. This module
//! holds the walk, written against the [`ClientInterface`] trait so that it runs
//! on the host against a fake firmware as well as on the target against the real
//! one (`src/of/`, target only):
//!
//! - the root is `peer(0)`; children are `child(node)` then `peer(child)`;
//! - a node's FDT name is the last component of `package-to-path`;
//! - its properties are listed with `nextprop` and read with `getproplen` and
//!   `getprop`, in the firmware's order, values copied unchanged, except the
//!   Open Firmware `name` property: in an FDT (version 16 and later) the node
//!   name carries it, and `dtc` rejects a root whose `name` is not empty (SLOF's
//!   is `/`), so it is left out, as Linux's flattener does;
//! - with [`Options::add_phandles`], a node without a `phandle` property gets
//!   one holding its Open Firmware phandle. Properties such as
//!   `interrupt-parent` and `interrupt-map` refer to nodes by those phandles,
//!   and SLOF strips the `phandle` properties QEMU gave it (its phandles are
//!   node addresses), so without this the references would dangle.
//!
//! The walk is bounded: the blob size (which also ends a firmware that loops
//! forever through `peer` or `nextprop`), one property's length, the nesting
//! depth and a path's length. Anything the firmware gets wrong is a
//! [`FlattenError`] naming the node and property; nothing here panics.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt;

use super::writer::{FdtWriter, WriteError};

/// An Open Firmware package handle; 0 means "none".
pub type Phandle = u32;

/// The size of the buffer `nextprop` fills. IEEE 1275 allows 31-byte names, but
/// LoPAR defines longer ones (`ibm,query-interrupt-source-number` in `/rtas` is
/// 33 bytes) and firmware writes them whole, so the buffer has room for 63.
pub const PROP_NAME_BUF: usize = 64;

/// Properties the flattener leaves out (see the module documentation).
pub const OMITTED_PROPERTIES: [&str; 1] = ["name"];

/// A failed client interface call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiError {
    /// The call itself failed: the firmware does not offer the service, or
    /// refused the argument array. `status` is what the entry returned.
    Call {
        /// The service name.
        service: &'static str,
        /// The entry's return value (non-zero).
        status: i64,
    },
    /// The service ran and returned its failure value (-1), for example for an
    /// invalid phandle.
    Failed {
        /// The service name.
        service: &'static str,
    },
    /// A buffer or string lies above 4 GiB, where 32-bit cells cannot reach it.
    Address {
        /// The service name.
        service: &'static str,
    },
    /// More argument and result cells than one call can carry.
    TooManyCells {
        /// The service name.
        service: &'static str,
    },
}

impl fmt::Display for CiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CiError::Call { service, status } => {
                write!(
                    f,
                    "client interface call `{service}` failed (status {status})"
                )
            }
            CiError::Failed { service } => {
                write!(f, "firmware service `{service}` returned an error")
            }
            CiError::Address { service } => {
                write!(f, "`{service}` needs a buffer below 4 GiB")
            }
            CiError::TooManyCells { service } => {
                write!(f, "`{service}` has more arguments than one call can carry")
            }
        }
    }
}

/// The client interface services the flattener needs, with IEEE 1275 meanings.
pub trait ClientInterface {
    /// `peer`: the next sibling of `node`, or 0 after the last; `peer(0)` is the root.
    fn peer(&mut self, node: Phandle) -> Result<Phandle, CiError>;
    /// `child`: the first child of `node`, or 0 if it has none.
    fn child(&mut self, node: Phandle) -> Result<Phandle, CiError>;
    /// `nextprop`: writes the NUL-terminated name of the property after
    /// `previous` (the empty string for the first) into `buf` and returns true,
    /// or returns false after the last property.
    fn nextprop(
        &mut self,
        node: Phandle,
        previous: &CStr,
        buf: &mut [u8; PROP_NAME_BUF],
    ) -> Result<bool, CiError>;
    /// `getproplen`: the length of the property's value, or `None` if the node
    /// has no such property.
    fn getproplen(&mut self, node: Phandle, name: &CStr) -> Result<Option<usize>, CiError>;
    /// `getprop`: copies up to `buf.len()` bytes of the value into `buf` and
    /// returns the value's full length, or `None` if there is no such property.
    fn getprop(
        &mut self,
        node: Phandle,
        name: &CStr,
        buf: &mut [u8],
    ) -> Result<Option<usize>, CiError>;
    /// `package-to-path`: writes the node's full path into `buf` (perhaps
    /// truncated, perhaps NUL-terminated) and returns the path's full length.
    fn package_to_path(&mut self, node: Phandle, buf: &mut [u8]) -> Result<usize, CiError>;
}

/// Bounds on the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest blob produced, in bytes.
    pub max_blob: usize,
    /// The longest property value accepted, in bytes.
    pub max_property: usize,
    /// The deepest node nesting accepted (the root is depth 1).
    pub max_depth: usize,
    /// The longest node path accepted, in bytes.
    pub max_path: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blob: 1 << 20,
            max_property: 64 << 10,
            max_depth: 32,
            max_path: 512,
        }
    }
}

/// How to flatten.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options<'a> {
    /// Bounds on the walk.
    pub limits: Limits,
    /// The memory reservation map: (address, size) pairs.
    pub reserved: &'a [(u64, u64)],
    /// `boot_cpuid_phys` in the header.
    pub boot_cpu: u32,
    /// Give every node without a `phandle` property one with its Open Firmware
    /// phandle.
    pub add_phandles: bool,
}

/// Why the tree could not be flattened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlattenError {
    /// A client interface call failed while visiting `path`.
    Firmware {
        /// The node being visited (its phandle when the path is not known yet).
        path: String,
        /// What failed.
        error: CiError,
    },
    /// `peer(0)` returned no root node.
    NoRoot,
    /// `package-to-path` gave an empty path, one that does not start with `/`,
    /// one with a NUL or non-UTF-8 byte, or a last component that is empty.
    BadPath {
        /// The node's phandle.
        phandle: Phandle,
        /// What was returned (lossy).
        path: String,
    },
    /// A path is longer than [`Limits::max_path`].
    PathTooLong {
        /// The node's phandle.
        phandle: Phandle,
        /// The path's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nodes nest deeper than [`Limits::max_depth`].
    TooDeep {
        /// The node that is too deep.
        path: String,
        /// The limit.
        max: usize,
    },
    /// `nextprop` returned a name that is not NUL-terminated within
    /// [`PROP_NAME_BUF`] bytes,
    /// or is not UTF-8.
    BadPropertyName {
        /// The node.
        path: String,
    },
    /// `nextprop` returned the same name twice in a row (a firmware loop).
    RepeatedProperty {
        /// The node.
        path: String,
        /// The property.
        name: String,
    },
    /// A property's value is longer than [`Limits::max_property`].
    PropertyTooLong {
        /// The node.
        path: String,
        /// The property.
        name: String,
        /// Its length according to `getproplen`.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `nextprop` listed a property that `getproplen` or `getprop` then denied,
    /// or `getprop` returned a different length than `getproplen`.
    PropertyChanged {
        /// The node.
        path: String,
        /// The property.
        name: String,
    },
    /// The blob would exceed [`Limits::max_blob`].
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The builder refused a name or value (see [`WriteError`]).
    Writer(WriteError),
}

impl fmt::Display for FlattenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlattenError::Firmware { path, error } => write!(f, "{path}: {error}"),
            FlattenError::NoRoot => write!(f, "the firmware reports no root node"),
            FlattenError::BadPath { phandle, path } => {
                write!(
                    f,
                    "node {phandle:#x}: package-to-path gave an unusable path `{path}`"
                )
            }
            FlattenError::PathTooLong { phandle, len, max } => {
                write!(f, "node {phandle:#x}: path is {len} bytes, more than {max}")
            }
            FlattenError::TooDeep { path, max } => {
                write!(f, "{path}: nodes nest deeper than {max} levels")
            }
            FlattenError::BadPropertyName { path } => {
                write!(f, "{path}: nextprop returned a malformed property name")
            }
            FlattenError::RepeatedProperty { path, name } => {
                write!(f, "{path}: nextprop returned `{name}` twice in a row")
            }
            FlattenError::PropertyTooLong {
                path,
                name,
                len,
                max,
            } => {
                write!(
                    f,
                    "{path}: property `{name}` is {len} bytes, more than {max}"
                )
            }
            FlattenError::PropertyChanged { path, name } => {
                write!(
                    f,
                    "{path}: property `{name}` changed or vanished while being read"
                )
            }
            FlattenError::TooLarge { limit } => {
                write!(f, "the device tree does not fit in {limit} bytes")
            }
            FlattenError::Writer(e) => write!(f, "{e}"),
        }
    }
}

impl From<WriteError> for FlattenError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::TooLarge { limit } => FlattenError::TooLarge { limit },
            other => FlattenError::Writer(other),
        }
    }
}

/// What the walk saw, besides the blob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Nodes written.
    pub nodes: usize,
    /// Properties written (omitted ones not counted).
    pub properties: usize,
    /// Client interface calls made.
    pub calls: usize,
    /// `phandle` properties added (see [`Options::add_phandles`]).
    pub phandles_added: usize,
}

/// Counts calls and attaches the node being visited to errors.
struct Walker<'a, C: ClientInterface> {
    ci: &'a mut C,
    limits: Limits,
    add_phandles: bool,
    stats: Stats,
}

impl<C: ClientInterface> Walker<'_, C> {
    fn fw<T>(&mut self, path: &str, r: Result<T, CiError>) -> Result<T, FlattenError> {
        self.stats.calls = self.stats.calls.saturating_add(1);
        r.map_err(|error| FlattenError::Firmware {
            path: path.to_string(),
            error,
        })
    }

    /// The node's full path, checked.
    fn path_of(&mut self, node: Phandle) -> Result<String, FlattenError> {
        let mut buf = vec![0u8; self.limits.max_path.saturating_add(1)];
        let r = self.ci.package_to_path(node, &mut buf);
        let len = self.fw(&alloc::format!("node {node:#x}"), r)?;
        if len > self.limits.max_path {
            return Err(FlattenError::PathTooLong {
                phandle: node,
                len,
                max: self.limits.max_path,
            });
        }
        let bytes = buf.get(..len).unwrap_or(&buf);
        // Some firmware counts the terminating NUL in the length.
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        let bad = || FlattenError::BadPath {
            phandle: node,
            path: String::from_utf8_lossy(bytes).into_owned(),
        };
        if bytes.contains(&0) {
            return Err(bad());
        }
        let path = core::str::from_utf8(bytes).map_err(|_| bad())?;
        if !path.starts_with('/') {
            return Err(bad());
        }
        Ok(path.to_string())
    }

    /// Writes one node's BEGIN_NODE and properties; returns its path.
    fn open_node(
        &mut self,
        w: &mut FdtWriter,
        node: Phandle,
        depth: usize,
    ) -> Result<String, FlattenError> {
        let path = self.path_of(node)?;
        if depth > self.limits.max_depth {
            return Err(FlattenError::TooDeep {
                path,
                max: self.limits.max_depth,
            });
        }
        let name = if depth == 1 {
            ""
        } else {
            let last = path.rsplit('/').next().unwrap_or("");
            if last.is_empty() {
                return Err(FlattenError::BadPath {
                    phandle: node,
                    path,
                });
            }
            last
        };
        w.begin_node(name.as_bytes())?;
        self.stats.nodes = self.stats.nodes.saturating_add(1);
        self.properties(w, node, &path)?;
        Ok(path)
    }

    fn properties(
        &mut self,
        w: &mut FdtWriter,
        node: Phandle,
        path: &str,
    ) -> Result<(), FlattenError> {
        let mut prev = [0u8; PROP_NAME_BUF];
        let mut has_phandle = false;
        loop {
            let mut buf = [0u8; PROP_NAME_BUF];
            let previous =
                CStr::from_bytes_until_nul(&prev).map_err(|_| FlattenError::BadPropertyName {
                    path: path.to_string(),
                })?;
            let r = self.ci.nextprop(node, previous, &mut buf);
            if !self.fw(path, r)? {
                break;
            }
            let name =
                CStr::from_bytes_until_nul(&buf).map_err(|_| FlattenError::BadPropertyName {
                    path: path.to_string(),
                })?;
            if name.is_empty() {
                // Some firmware reports the end with an empty name.
                break;
            }
            let name_str = name.to_str().map_err(|_| FlattenError::BadPropertyName {
                path: path.to_string(),
            })?;
            if name.to_bytes() == previous.to_bytes() {
                return Err(FlattenError::RepeatedProperty {
                    path: path.to_string(),
                    name: name_str.to_string(),
                });
            }
            let changed = || FlattenError::PropertyChanged {
                path: path.to_string(),
                name: name_str.to_string(),
            };
            let r = self.ci.getproplen(node, name);
            let len = self.fw(path, r)?.ok_or_else(changed)?;
            if len > self.limits.max_property {
                return Err(FlattenError::PropertyTooLong {
                    path: path.to_string(),
                    name: name_str.to_string(),
                    len,
                    max: self.limits.max_property,
                });
            }
            let mut value = vec![0u8; len];
            let r = self.ci.getprop(node, name, &mut value);
            let got = self.fw(path, r)?.ok_or_else(changed)?;
            if got != len {
                return Err(changed());
            }
            if !OMITTED_PROPERTIES.contains(&name_str) {
                w.property(name.to_bytes(), &value)?;
                self.stats.properties = self.stats.properties.saturating_add(1);
                has_phandle |= name_str == "phandle";
            }
            prev = buf;
        }
        if self.add_phandles && !has_phandle {
            w.property(b"phandle", &node.to_be_bytes())?;
            self.stats.properties = self.stats.properties.saturating_add(1);
            self.stats.phandles_added = self.stats.phandles_added.saturating_add(1);
        }
        Ok(())
    }
}

/// Walks the whole tree behind `ci` and returns it as an FDT blob (version 17),
/// and what the walk saw.
pub fn flatten<C: ClientInterface>(
    ci: &mut C,
    options: &Options<'_>,
) -> Result<(Vec<u8>, Stats), FlattenError> {
    let mut w = FdtWriter::new(options.limits.max_blob);
    w.set_boot_cpu(options.boot_cpu);
    for &(address, size) in options.reserved {
        w.add_reservation(address, size)?;
    }
    let mut walker = Walker {
        ci,
        limits: options.limits,
        add_phandles: options.add_phandles,
        stats: Stats::default(),
    };
    let r = walker.ci.peer(0);
    let root = walker.fw("/", r)?;
    if root == 0 {
        return Err(FlattenError::NoRoot);
    }
    // The open nodes, innermost last, with their paths for error messages.
    let root_path = walker.open_node(&mut w, root, 1)?;
    let mut stack: Vec<(Phandle, String)> = vec![(root, root_path)];
    'walk: loop {
        let (top, top_path) = stack
            .last()
            .ok_or(FlattenError::Writer(WriteError::Unbalanced))?;
        let (top, top_path) = (*top, top_path.clone());
        let r = walker.ci.child(top);
        let child = walker.fw(&top_path, r)?;
        if child != 0 {
            let path = walker.open_node(&mut w, child, stack.len().saturating_add(1))?;
            stack.push((child, path));
            continue;
        }
        // No (more) children: close nodes until one has a next sibling.
        loop {
            let (done, done_path) = stack
                .pop()
                .ok_or(FlattenError::Writer(WriteError::Unbalanced))?;
            w.end_node()?;
            if stack.is_empty() {
                break 'walk;
            }
            let r = walker.ci.peer(done);
            let next = walker.fw(&done_path, r)?;
            if next != 0 {
                let path = walker.open_node(&mut w, next, stack.len().saturating_add(1))?;
                stack.push((next, path));
                continue 'walk;
            }
        }
    }
    let stats = walker.stats;
    Ok((w.finish()?, stats))
}
