//! Booting through Open Firmware, as SLOF, VOF and a PowerVM LPAR enter the
//! kernel: no device tree blob, the client interface entry in r5.
//!
//! [`boot`] talks to the firmware in this order, then never calls it again:
//!
//! 1. `ibm,client-architecture-support` announces what the OS supports, CMO
//!    included; the firmware may rewrite parts of the tree.
//! 2. `/chosen/ibm,architecture-vec-5` is read back and logged: what was granted.
//! 3. RTAS is instantiated right after the kernel image; its area is reserved in
//!    the blob.
//! 4. The whole tree is flattened into an FDT blob by the host-tested walk in
//!    `kernel::devtree::flatten`, over the [`ClientInterface`] of [`call::Prom`].
//! 5. `quiesce`, so the firmware stops whatever it runs (and QEMU learns the
//!    final tree).
//!
//! The firmware lives in low memory (VOF at 0..0x10000, SLOF's vectors), so the
//! caller must not install the kernel's exception vectors before [`boot`]
//! returns. What each step decides (the CAS checks, where RTAS goes and when it
//! failed, the boot CPU) is host-tested in `kernel::devtree::firmware`, over the
//! [`Services`] of [`call::Prom`]; this module holds the calls and the order.
//!
//! [`Services`]: kernel::devtree::firmware::Services
//!
//! [`ClientInterface`]: kernel::devtree::flatten::ClientInterface

#[allow(unsafe_code)] // the client interface entry, called in real mode
mod call;
mod client;

use alloc::vec::Vec;

use kernel::devtree::firmware;
use kernel::devtree::flatten::{self, CiError, Limits, Options};

pub use call::Prom;

pub use kernel::devtree::firmware::OfError;

/// Negotiates with the firmware behind `prom` (made at entry from r5),
/// flattens its device tree and leaves it. Returns the blob.
pub fn boot(mut prom: Prom) -> Result<Vec<u8>, OfError> {
    let start = crate::clock::now_us();
    log::info!("Open Firmware client interface at {:#x}", prom.entry());
    if let Some(model) = firmware::firmware_model(&mut prom) {
        log::info!("firmware: {model}");
    }

    let pvr = crate::arch::cpu::pvr();
    log::info!(
        "CAS: asking for {} bytes: PVR {:#010x}, ISA 2.07..3.1, LPAR, SPLPAR, CMO (vector 5 byte {} = {:#04x})",
        kernel::cas::architecture_vector(pvr).len(),
        pvr & 0xffff_0000,
        kernel::cas::OV5_CMO_BYTE,
        kernel::cas::OV5_CMO_BIT
    );
    let granted = firmware::negotiate_cas(&mut prom, pvr)?;
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
    match firmware::instantiate_rtas(&mut prom, image_end) {
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
    let boot_cpu = firmware::boot_cpu(&mut prom).unwrap_or(0);
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

    if let Some(v) = firmware::cpu_version(&blob) {
        log::info!(
            "CAS: the processor runs as PVR {v:#010x}{}",
            firmware::isa_level(v)
        );
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
