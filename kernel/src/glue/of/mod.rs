//! Booting through Open Firmware, as SLOF, VOF and a PowerVM LPAR enter the
//! kernel: no device tree blob, the client interface entry in r5.
//!
//! [`boot`] talks to the firmware in this order, then never calls it again:
//!
//! 1. `ibm,client-architecture-support` announces what the OS supports, CMO
//!    included ([`cas`]); the firmware may rewrite parts of the tree.
//! 2. `/chosen/ibm,architecture-vec-5` is read back and logged: what was granted.
//! 3. RTAS is instantiated right after the kernel image ([`rtas`]); its area
//!    is reserved in the blob.
//! 4. The whole tree is flattened into an FDT blob by the host-tested walk in
//!    `kernel::devtree::flatten`, over the [`ClientInterface`] of [`call::Prom`].
//! 5. `quiesce`, so the firmware stops whatever it runs (and QEMU learns the
//!    final tree).
//!
//! The firmware lives in low memory (VOF at 0..0x10000, SLOF's vectors), so the
//! caller must not install the kernel's exception vectors before [`boot`]
//! returns. This module is target-only; it holds the assembly trampoline and
//! the calls, not the walk.
//!
//! [`ClientInterface`]: kernel::devtree::flatten::ClientInterface

#[allow(unsafe_code)] // the client interface entry, called in real mode
mod call;
mod cas;
mod client;
mod rtas;

use alloc::vec::Vec;
use core::fmt;

use kernel::devtree::flatten::{self, CiError, ClientInterface, FlattenError, Limits, Options};

pub use call::Prom;

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
    fn call(what: &'static str, error: CiError) -> Self {
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

/// Negotiates with the firmware behind `prom` (made at entry from r5),
/// flattens its device tree and leaves it. Returns the blob.
pub fn boot(mut prom: Prom) -> Result<Vec<u8>, OfError> {
    let start = crate::clock::now_us();
    log::info!("Open Firmware client interface at {:#x}", prom.entry());
    if let Some(model) = firmware_model(&mut prom) {
        log::info!("firmware: {model}");
    }

    let granted = cas::negotiate(&mut prom, crate::arch::cpu::pvr())?;
    log::info!("CAS: firmware granted {granted}");

    // The kernel image, BSS included, is the one range the blob reserves: the
    // firmware's own memory is free once it has been left.
    let (image_start, image_end) = (
        crate::glue::image::kernel_start(),
        crate::glue::image::kernel_end(),
    );
    let mut reserved = alloc::vec![(image_start, image_end.saturating_sub(image_start))];
    // RTAS, instantiated in the RMA right after the image (docs/rtas.md): from
    // here on every RTAS call goes to it.
    match rtas::instantiate(&mut prom, image_end) {
        Ok(Some(i)) => {
            log::info!(
                "RTAS instantiated at {:#x} ({:#x} bytes), entry {:#x}",
                i.base,
                i.size,
                i.entry
            );
            reserved.push((u64::from(i.base), u64::from(i.size)));
            crate::rtas::use_instance(i);
        }
        Ok(None) => log::warn!("the firmware has no /rtas rtas-size: RTAS through the hcall"),
        Err(e) => log::error!("{e}: RTAS through the hcall (absent on PowerVM)"),
    }
    let boot_cpu = boot_cpu(&mut prom).unwrap_or(0);
    let options = Options {
        limits: Limits::default(),
        reserved: &reserved,
        boot_cpu,
        add_phandles: true,
    };
    let (blob, stats) = flatten::flatten(&mut prom, &options).map_err(OfError::Flatten)?;
    log::info!(
        "flattened the firmware's tree: {} nodes, {} properties ({} phandles added), {} bytes, {} calls",
        stats.nodes,
        stats.properties,
        stats.phandles_added,
        blob.len(),
        stats.calls
    );

    if let Some(v) = cpu_version(&blob) {
        log::info!("CAS: the processor runs as PVR {v:#010x}{}", isa_level(v));
    }

    match prom.call(c"quiesce", &[], &mut []) {
        Ok(()) => log::info!("left the firmware (quiesce)"),
        Err(CiError::Call { status, .. }) => {
            log::info!("the firmware offers no quiesce (status {status}); leaving it as it is")
        }
        Err(e) => return Err(OfError::call("quiesce", e)),
    }
    log::info!(
        "Open Firmware phase took {} us, {} client interface calls",
        crate::clock::now_us().saturating_sub(start),
        prom.calls()
    );
    Ok(blob)
}

/// The first processor's `cpu-version` in the flattened tree: after CAS, the
/// logical PVR of the compatibility mode the firmware chose, if it chose one.
fn cpu_version(blob: &[u8]) -> Option<u32> {
    let fdt = kernel::devtree::Fdt::new(blob).ok()?;
    let cpus = fdt.find("/cpus")?;
    let cpu = cpus
        .children()
        .find(|c| c.property("device_type").and_then(|d| d.as_str()) == Some("cpu"))?;
    cpu.property("cpu-version")?.as_u32()
}

/// Names the ISA level of a logical PVR.
fn isa_level(pvr: u32) -> &'static str {
    match pvr {
        0x0f00_0004 => " (ISA 2.07 compatibility mode)",
        0x0f00_0005 => " (ISA 3.00 compatibility mode)",
        0x0f00_0006 => " (ISA 3.1 compatibility mode)",
        _ => " (raw mode)",
    }
}

/// `/openprom`'s `model` (SLOF names itself there), if any.
fn firmware_model(prom: &mut Prom) -> Option<alloc::string::String> {
    let node = cas::finddevice(prom, c"/openprom").ok()?;
    let mut buf = [0u8; 64];
    let len = prom.getprop(node, c"model", &mut buf).ok()??;
    let text = buf.get(..len.min(buf.len()))?;
    let text = text.split(|&b| b == 0).next()?;
    core::str::from_utf8(text)
        .ok()
        .map(alloc::string::ToString::to_string)
}

/// The boot processor's `reg`, from the `/chosen` `cpu` instance.
fn boot_cpu(prom: &mut Prom) -> Option<u32> {
    let chosen = cas::finddevice(prom, c"/chosen").ok()?;
    let mut cell = [0u8; 4];
    if prom.getprop(chosen, c"cpu", &mut cell).ok()?? != 4 {
        return None;
    }
    let ihandle = u32::from_be_bytes(cell);
    let mut rets = [0u32; 1];
    prom.call(c"instance-to-package", &[ihandle], &mut rets)
        .ok()?;
    if rets[0] == 0 || call::signed(rets[0]) == -1 {
        return None;
    }
    if prom.getprop(rets[0], c"reg", &mut cell).ok()?? != 4 {
        return None;
    }
    Some(u32::from_be_bytes(cell))
}
