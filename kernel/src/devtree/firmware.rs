//! What boot asks Open Firmware besides the tree walk, decided here and reached
//! through [`Services`] (the glue's client interface implements it; the host
//! tests use a fake): CAS ([`negotiate_cas`]), RTAS instantiation
//! ([`instantiate_rtas`]), the boot processor ([`boot_cpu`]) and the firmware's
//! name ([`firmware_model`]), and, once the tree is flattened, the processor's
//! compatibility mode ([`cpu_version`], [`isa_level`]). Facts: docs/rtas.md,
//! docs/cmo.md.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt;

use hcall::page::PAGE_SHIFT;

use crate::cas::{architecture_vector, Granted, MAX_VEC5};
use crate::devtree::flatten::{CiError, ClientInterface, FlattenError, Phandle};

/// The largest RTAS area accepted (PowerVM's is about 20 MB).
pub const MAX_RTAS_SIZE: u32 = 64 << 20;

/// One argument of a `call-method`: a cell, or a buffer the firmware reads (its
/// address goes into the cell).
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// A plain cell.
    Cell(u32),
    /// A buffer passed by address.
    Buffer(&'a [u8]),
}

/// The client interface services boot uses besides the tree walk. Results are
/// the raw cells: 0 and -1 (`0xffff_ffff`) are the firmware's failures.
pub trait Services: ClientInterface {
    /// `finddevice`: the node at `path`.
    fn finddevice(&mut self, path: &'static CStr) -> Result<u32, CiError>;
    /// `open`: an instance of the node at `path`.
    fn open(&mut self, path: &'static CStr) -> Result<u32, CiError>;
    /// `close` an instance (its failure does not matter).
    fn close(&mut self, ihandle: u32);
    /// `claim`: `size` bytes at `virt` (`align` 0) or anywhere aligned to `align`.
    fn claim(&mut self, virt: u32, size: u32, align: u32) -> Result<u32, CiError>;
    /// `call-method` `method` on `ihandle` with `args`; fills `rets` (the first
    /// is the catch result).
    fn call_method(
        &mut self,
        method: &'static CStr,
        ihandle: u32,
        args: &[Arg<'_>],
        rets: &mut [u32],
    ) -> Result<(), CiError>;
    /// `instance-to-package`.
    fn instance_to_package(&mut self, ihandle: u32) -> Result<u32, CiError>;
}

/// Why booting through the firmware failed.
#[derive(Debug)]
pub enum OfError {
    /// A firmware call outside the tree walk failed.
    Call {
        /// What was being done.
        what: &'static str,
        /// How it failed.
        error: CiError,
    },
    /// A node the boot needs does not exist (`finddevice` or `open` failed).
    Missing(&'static str),
    /// CAS ran and said no: `catch` is `call-method`'s catch result, `result`
    /// the method's own error flag.
    CasRefused {
        /// Non-zero if the method threw.
        catch: i32,
        /// Non-zero if the firmware rejected the architecture vector.
        result: i32,
    },
    /// Walking and flattening the tree failed.
    Flatten(FlattenError),
    /// RTAS could not be instantiated.
    BadRtas(&'static str),
}

impl OfError {
    /// A failed call while doing `what`.
    pub fn call(what: &'static str, error: CiError) -> Self {
        OfError::Call { what, error }
    }
}

impl fmt::Display for OfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfError::Call { what, error } => write!(f, "{what}: {error}"),
            OfError::Missing(path) => write!(f, "the firmware has no {path} node"),
            OfError::CasRefused { catch, result } => write!(
                f,
                "ibm,client-architecture-support refused the architecture vector (catch {catch}, result {result})"
            ),
            OfError::Flatten(e) => write!(f, "flattening the device tree: {e}"),
            OfError::BadRtas(why) => write!(f, "instantiating RTAS: {why}"),
        }
    }
}

/// A result cell as a signed number (the client interface's -1 is failure).
pub fn signed(cell: u32) -> i32 {
    i32::from_be_bytes(cell.to_be_bytes())
}

fn found(cell: u32, path: &'static CStr) -> Result<u32, OfError> {
    match signed(cell) {
        0 | -1 => Err(OfError::Missing(path.to_str().unwrap_or("?"))),
        _ => Ok(cell),
    }
}

fn finddevice<S: Services>(s: &mut S, path: &'static CStr) -> Result<Phandle, OfError> {
    let cell = s
        .finddevice(path)
        .map_err(|e| OfError::call("finddevice", e))?;
    found(cell, path)
}

fn open<S: Services>(s: &mut S, path: &'static CStr) -> Result<u32, OfError> {
    let cell = s.open(path).map_err(|e| OfError::call("open", e))?;
    found(cell, path)
}

/// CAS: calls `ibm,client-architecture-support` on the root node's instance
/// with the vector for `pvr` ([`architecture_vector`]) and reads back
/// `/chosen/ibm,architecture-vec-5`, what the firmware granted (at most
/// [`MAX_VEC5`] bytes; empty when absent). A throw or a rejected vector is
/// [`OfError::CasRefused`].
pub fn negotiate_cas<S: Services>(s: &mut S, pvr: u32) -> Result<Granted, OfError> {
    let vector = architecture_vector(pvr);
    let root = open(s, c"/")?;
    let what = "ibm,client-architecture-support";
    let mut rets = [0u32; 2];
    let r = s.call_method(
        c"ibm,client-architecture-support",
        root,
        &[Arg::Buffer(&vector)],
        &mut rets,
    );
    s.close(root);
    r.map_err(|e| OfError::call(what, e))?;
    if rets != [0, 0] {
        return Err(OfError::CasRefused {
            catch: signed(rets[0]),
            result: signed(rets[1]),
        });
    }
    let chosen = finddevice(s, c"/chosen")?;
    let name = c"ibm,architecture-vec-5";
    let len = s
        .getproplen(chosen, name)
        .map_err(|e| OfError::call("getproplen /chosen", e))?;
    let mut vec5 = Vec::new();
    if let Some(len) = len {
        vec5.resize(len.min(MAX_VEC5), 0);
        s.getprop(chosen, name, &mut vec5)
            .map_err(|e| OfError::call("getprop /chosen", e))?;
    }
    Ok(Granted { vec5 })
}

/// Where RTAS was instantiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtasArea {
    /// The area's real address (RTAS wants it in r4).
    pub base: u32,
    /// Its size in bytes (`rtas-size`).
    pub size: u32,
    /// The entry point `instantiate-rtas` returned.
    pub entry: u32,
}

/// RTAS instantiation (docs/rtas.md): reads `/rtas` `rtas-size` (1 to
/// [`MAX_RTAS_SIZE`] bytes), claims that much on the first page after
/// `image_end` (inside the RMA) or, if that is taken, wherever the firmware
/// finds a page-aligned room, opens `/rtas` and calls its `instantiate-rtas`
/// with the base; the method returns the entry. `Ok(None)` when the firmware
/// has no `/rtas` or no 4-byte `rtas-size` (the hcall transport stays).
pub fn instantiate_rtas<S: Services>(
    s: &mut S,
    image_end: u64,
) -> Result<Option<RtasArea>, OfError> {
    let Ok(node) = finddevice(s, c"/rtas") else {
        return Ok(None);
    };
    let mut cell = [0u8; 4];
    let len = s
        .getprop(node, c"rtas-size", &mut cell)
        .map_err(|e| OfError::call("getprop /rtas rtas-size", e))?;
    if len != Some(4) {
        return Ok(None);
    }
    let size = u32::from_be_bytes(cell);
    if size == 0 || size > MAX_RTAS_SIZE {
        return Err(OfError::BadRtas("rtas-size out of range"));
    }
    let want = crate::rma::rtas_base(image_end)
        .and_then(|b| u32::try_from(b).ok())
        .ok_or(OfError::BadRtas("no room below 4 GiB"))?;
    let base = match claim(s, want, size, 0) {
        Some(b) => b,
        None => claim(s, 0, size, PAGE_ALIGN).ok_or(OfError::BadRtas("claim refused"))?,
    };
    let rtas = open(s, c"/rtas")?;
    let what = "instantiate-rtas";
    let mut rets = [0u32; 2];
    s.call_method(c"instantiate-rtas", rtas, &[Arg::Cell(base)], &mut rets)
        .map_err(|e| OfError::call(what, e))?;
    if rets[0] != 0 || rets[1] == 0 || signed(rets[1]) == -1 {
        return Err(OfError::BadRtas("instantiate-rtas failed"));
    }
    Ok(Some(RtasArea {
        base,
        size,
        entry: rets[1],
    }))
}

/// Where the RTAS area goes when it cannot follow the image: any page.
const PAGE_ALIGN: u32 = 1 << PAGE_SHIFT;

/// `claim`: the base, or `None` when refused (or, at a fixed address, when the
/// firmware gave another).
fn claim<S: Services>(s: &mut S, virt: u32, size: u32, align: u32) -> Option<u32> {
    let got = s.claim(virt, size, align).ok()?;
    match signed(got) {
        -1 => None,
        _ if align == 0 && got != virt => None,
        _ => Some(got),
    }
}

/// `/openprom`'s `model` (SLOF names itself there), up to its first NUL and at
/// most 64 bytes, if it is text.
pub fn firmware_model<S: Services>(s: &mut S) -> Option<String> {
    let node = finddevice(s, c"/openprom").ok()?;
    let mut buf = [0u8; 64];
    let len = s.getprop(node, c"model", &mut buf).ok()??;
    let text = buf.get(..len.min(buf.len()))?;
    let text = text.split(|&b| b == 0).next()?;
    core::str::from_utf8(text).ok().map(ToString::to_string)
}

/// The boot processor's `reg`, through the `/chosen` `cpu` instance.
pub fn boot_cpu<S: Services>(s: &mut S) -> Option<u32> {
    let chosen = finddevice(s, c"/chosen").ok()?;
    let mut cell = [0u8; 4];
    if s.getprop(chosen, c"cpu", &mut cell).ok()?? != 4 {
        return None;
    }
    let package = s.instance_to_package(u32::from_be_bytes(cell)).ok()?;
    if package == 0 || signed(package) == -1 {
        return None;
    }
    if s.getprop(package, c"reg", &mut cell).ok()?? != 4 {
        return None;
    }
    Some(u32::from_be_bytes(cell))
}

/// The first processor's `cpu-version` in the flattened tree: after CAS, the
/// logical PVR of the compatibility mode the firmware chose, if it chose one.
pub fn cpu_version(blob: &[u8]) -> Option<u32> {
    let fdt = crate::devtree::Fdt::new(blob).ok()?;
    let cpus = fdt.find("/cpus")?;
    let cpu = cpus
        .children()
        .find(|c| c.property("device_type").and_then(|d| d.as_str()) == Some("cpu"))?;
    cpu.property("cpu-version")?.as_u32()
}

/// Names the ISA level of a logical PVR, for the boot log.
pub fn isa_level(pvr: u32) -> &'static str {
    match pvr {
        0x0f00_0004 => " (ISA 2.07 compatibility mode)",
        0x0f00_0005 => " (ISA 3.00 compatibility mode)",
        0x0f00_0006 => " (ISA 3.1 compatibility mode)",
        _ => " (raw mode)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const CHOSEN: u32 = 0x10;
    const RTAS: u32 = 0x20;
    const OPENPROM: u32 = 0x30;
    const CPU: u32 = 0x40;
    const ROOT_INSTANCE: u32 = 0x100;
    const RTAS_INSTANCE: u32 = 0x200;
    const CPU_INSTANCE: u32 = 0x300;

    /// A firmware with a few nodes, a memory map for `claim`, and recorded
    /// method calls.
    struct Fake {
        props: Vec<(u32, &'static str, Vec<u8>)>,
        nodes: Vec<(&'static str, u32)>,
        /// Ranges already claimed (base, size).
        taken: Vec<(u32, u32)>,
        /// Where `claim` with an alignment puts things.
        anywhere: u32,
        cas_rets: [u32; 2],
        rtas_rets: [u32; 2],
        methods: Vec<(&'static str, u32, Vec<u32>, Vec<u8>)>,
        closed: Vec<u32>,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                props: vec![
                    (RTAS, "rtas-size", 0x82cu32.to_be_bytes().to_vec()),
                    (CHOSEN, "ibm,architecture-vec-5", vec![0, 0, 0, 0x80]),
                    (CHOSEN, "cpu", CPU_INSTANCE.to_be_bytes().to_vec()),
                    (CPU, "reg", 8u32.to_be_bytes().to_vec()),
                    (OPENPROM, "model", b"SLOF\0junk".to_vec()),
                ],
                nodes: vec![
                    ("/chosen", CHOSEN),
                    ("/rtas", RTAS),
                    ("/openprom", OPENPROM),
                ],
                taken: Vec::new(),
                anywhere: 0x3000_0000,
                cas_rets: [0, 0],
                rtas_rets: [0, 0x0f00_0100],
                methods: Vec::new(),
                closed: Vec::new(),
            }
        }

        fn set(&mut self, node: u32, name: &'static str, v: Vec<u8>) {
            self.props.retain(|(n, p, _)| !(*n == node && *p == name));
            self.props.push((node, name, v));
        }

        fn prop(&self, node: u32, name: &CStr) -> Option<&Vec<u8>> {
            self.props
                .iter()
                .find(|(n, p, _)| *n == node && p.as_bytes() == name.to_bytes())
                .map(|(_, _, v)| v)
        }
    }

    impl ClientInterface for Fake {
        fn peer(&mut self, _: Phandle) -> Result<Phandle, CiError> {
            Err(CiError::Failed { service: "peer" })
        }
        fn child(&mut self, _: Phandle) -> Result<Phandle, CiError> {
            Err(CiError::Failed { service: "child" })
        }
        fn nextprop(
            &mut self,
            _: Phandle,
            _: &CStr,
            _: &mut [u8; crate::devtree::flatten::PROP_NAME_BUF],
        ) -> Result<bool, CiError> {
            Err(CiError::Failed {
                service: "nextprop",
            })
        }
        fn getproplen(&mut self, node: Phandle, name: &CStr) -> Result<Option<usize>, CiError> {
            Ok(self.prop(node, name).map(Vec::len))
        }
        fn getprop(
            &mut self,
            node: Phandle,
            name: &CStr,
            buf: &mut [u8],
        ) -> Result<Option<usize>, CiError> {
            Ok(self.prop(node, name).map(|v| {
                let n = v.len().min(buf.len());
                buf[..n].copy_from_slice(&v[..n]);
                v.len()
            }))
        }
        fn package_to_path(&mut self, _: Phandle, _: &mut [u8]) -> Result<usize, CiError> {
            Err(CiError::Failed {
                service: "package-to-path",
            })
        }
    }

    impl Services for Fake {
        fn finddevice(&mut self, path: &'static CStr) -> Result<u32, CiError> {
            Ok(self
                .nodes
                .iter()
                .find(|(p, _)| p.as_bytes() == path.to_bytes())
                .map_or(u32::MAX, |&(_, n)| n))
        }
        fn open(&mut self, path: &'static CStr) -> Result<u32, CiError> {
            Ok(match path.to_bytes() {
                b"/" => ROOT_INSTANCE,
                b"/rtas" if self.nodes.iter().any(|(p, _)| *p == "/rtas") => RTAS_INSTANCE,
                _ => 0,
            })
        }
        fn close(&mut self, ihandle: u32) {
            self.closed.push(ihandle);
        }
        fn claim(&mut self, virt: u32, size: u32, align: u32) -> Result<u32, CiError> {
            let at = if align == 0 { virt } else { self.anywhere };
            let end = at
                .checked_add(size)
                .ok_or(CiError::Failed { service: "claim" })?;
            if self.taken.iter().any(|&(b, s)| at < b + s && b < end) {
                return Ok(u32::MAX);
            }
            self.taken.push((at, size));
            Ok(at)
        }
        fn call_method(
            &mut self,
            method: &'static CStr,
            ihandle: u32,
            args: &[Arg<'_>],
            rets: &mut [u32],
        ) -> Result<(), CiError> {
            let mut cells = Vec::new();
            let mut bytes = Vec::new();
            for a in args {
                match a {
                    Arg::Cell(c) => cells.push(*c),
                    Arg::Buffer(b) => bytes.extend_from_slice(b),
                }
            }
            let name = method.to_str().unwrap_or("?");
            let name: &'static str = if name == "instantiate-rtas" {
                rets.copy_from_slice(&self.rtas_rets);
                "instantiate-rtas"
            } else {
                rets.copy_from_slice(&self.cas_rets);
                "cas"
            };
            self.methods.push((name, ihandle, cells, bytes));
            Ok(())
        }
        fn instance_to_package(&mut self, ihandle: u32) -> Result<u32, CiError> {
            Ok(if ihandle == CPU_INSTANCE {
                CPU
            } else {
                u32::MAX
            })
        }
    }

    #[test]
    fn rtas_goes_on_the_first_page_after_the_image() {
        let mut f = Fake::new();
        let area = instantiate_rtas(&mut f, 0x0123_4567).unwrap().unwrap();
        assert_eq!(
            area,
            RtasArea {
                base: 0x0123_5000,
                size: 0x82c,
                entry: 0x0f00_0100
            }
        );
        assert_eq!(
            f.methods,
            [("instantiate-rtas", RTAS_INSTANCE, vec![0x0123_5000], vec![])]
        );
    }

    #[test]
    fn rtas_goes_anywhere_when_the_page_after_the_image_is_taken() {
        let mut f = Fake::new();
        f.taken.push((0x0123_5000, 0x1000));
        let area = instantiate_rtas(&mut f, 0x0123_5000).unwrap().unwrap();
        assert_eq!(area.base, 0x3000_0000);
        // Nowhere at all: an error, and no method is called.
        let mut f = Fake::new();
        f.taken.push((0x0123_5000, 0x1000));
        f.taken.push((0x3000_0000, 0x1000));
        let e = instantiate_rtas(&mut f, 0x0123_5000).unwrap_err();
        assert_eq!(e.to_string(), "instantiating RTAS: claim refused");
        assert!(f.methods.is_empty());
    }

    #[test]
    fn rtas_without_a_node_or_a_size_stays_on_the_hcall() {
        let mut f = Fake::new();
        f.nodes.retain(|(p, _)| *p != "/rtas");
        assert!(instantiate_rtas(&mut f, 0x10_0000).unwrap().is_none());
        let mut f = Fake::new();
        f.set(RTAS, "rtas-size", vec![0, 0, 8]);
        assert!(instantiate_rtas(&mut f, 0x10_0000).unwrap().is_none());
        assert!(f.taken.is_empty(), "nothing claimed");
    }

    #[test]
    fn a_bad_rtas_size_or_answer_is_an_error() {
        for size in [0u32, MAX_RTAS_SIZE + 1, u32::MAX] {
            let mut f = Fake::new();
            f.set(RTAS, "rtas-size", size.to_be_bytes().to_vec());
            let e = instantiate_rtas(&mut f, 0x10_0000).unwrap_err();
            assert_eq!(e.to_string(), "instantiating RTAS: rtas-size out of range");
        }
        for rets in [[1, 0x100], [0, 0], [0, u32::MAX]] {
            let mut f = Fake::new();
            f.rtas_rets = rets;
            let e = instantiate_rtas(&mut f, 0x10_0000).unwrap_err();
            assert_eq!(e.to_string(), "instantiating RTAS: instantiate-rtas failed");
        }
        // An image ending past 4 GiB leaves no room for the 32-bit RTAS.
        let e = instantiate_rtas(&mut Fake::new(), 1 << 32).unwrap_err();
        assert_eq!(e.to_string(), "instantiating RTAS: no room below 4 GiB");
    }

    #[test]
    fn cas_hands_over_the_vector_and_reads_back_what_was_granted() {
        let mut f = Fake::new();
        let g = negotiate_cas(&mut f, 0x004e_1202).unwrap();
        assert_eq!(g.vec5, [0, 0, 0, 0x80]);
        let (name, ihandle, cells, bytes) = &f.methods[0];
        assert_eq!((*name, *ihandle), ("cas", ROOT_INSTANCE));
        assert!(cells.is_empty());
        assert_eq!(*bytes, architecture_vector(0x004e_1202));
        assert_eq!(f.closed, [ROOT_INSTANCE], "the root instance is closed");
        // No vector 5 read back: nothing granted. A long one is cut.
        f.props.retain(|(_, p, _)| *p != "ibm,architecture-vec-5");
        assert!(negotiate_cas(&mut f, 0).unwrap().vec5.is_empty());
        f.set(CHOSEN, "ibm,architecture-vec-5", vec![1; MAX_VEC5 + 9]);
        assert_eq!(negotiate_cas(&mut f, 0).unwrap().vec5.len(), MAX_VEC5);
    }

    #[test]
    fn a_refused_cas_says_how() {
        let mut f = Fake::new();
        f.cas_rets = [0, u32::MAX];
        let e = negotiate_cas(&mut f, 0).unwrap_err();
        assert!(
            matches!(
                e,
                OfError::CasRefused {
                    catch: 0,
                    result: -1
                }
            ),
            "{e:?}"
        );
        assert_eq!(f.closed, [ROOT_INSTANCE], "closed even when refused");
        let mut f = Fake::new();
        f.nodes.retain(|(p, _)| *p != "/chosen");
        let e = negotiate_cas(&mut f, 0).unwrap_err();
        assert_eq!(e.to_string(), "the firmware has no /chosen node");
    }

    #[test]
    fn boot_cpu_and_model_from_chosen_and_openprom() {
        let mut f = Fake::new();
        assert_eq!(boot_cpu(&mut f), Some(8));
        assert_eq!(firmware_model(&mut f).as_deref(), Some("SLOF"));
        f.set(CHOSEN, "cpu", 0x999u32.to_be_bytes().to_vec());
        assert_eq!(boot_cpu(&mut f), None, "an instance without a package");
        f.set(OPENPROM, "model", vec![0xff, 0xfe]);
        assert_eq!(firmware_model(&mut f), None, "not text");
        f.nodes.clear();
        assert_eq!(boot_cpu(&mut f), None);
        assert_eq!(firmware_model(&mut f), None);
    }

    #[test]
    fn isa_levels_and_cpu_version() {
        assert_eq!(isa_level(0x0f00_0005), " (ISA 3.00 compatibility mode)");
        assert_eq!(isa_level(0x004e_1202), " (raw mode)");
        assert_eq!(cpu_version(&[0u8; 8]), None, "not a tree");
        let tree = |version: Option<u32>| {
            let mut w = crate::devtree::writer::FdtWriter::new(4096);
            w.begin_node(b"").unwrap();
            w.begin_node(b"cpus").unwrap();
            w.begin_node(b"l2-cache@0").unwrap();
            w.property(b"device_type", b"cache\0").unwrap();
            w.property(b"cpu-version", &1u32.to_be_bytes()).unwrap();
            w.end_node().unwrap();
            w.begin_node(b"PowerPC,POWER9@0").unwrap();
            w.property(b"device_type", b"cpu\0").unwrap();
            if let Some(v) = version {
                w.property(b"cpu-version", &v.to_be_bytes()).unwrap();
            }
            w.end_node().unwrap();
            w.end_node().unwrap();
            w.end_node().unwrap();
            w.finish().unwrap()
        };
        assert_eq!(cpu_version(&tree(Some(0x0f00_0005))), Some(0x0f00_0005));
        assert_eq!(cpu_version(&tree(None)), None, "raw mode: no cpu-version");
    }
}
