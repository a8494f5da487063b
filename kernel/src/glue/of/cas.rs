//! `ibm,client-architecture-support` (CAS): telling the firmware what this OS
//! supports, CMO included, and reading back what it granted.
//!
//! The argument, `ibm,architecture.vec` (LoPAR B.6.2.3), is:
//!
//! - a list of (mask, value) pairs of 32-bit PVRs the OS runs on, real ones
//!   (`PVR & mask == value & mask`) and logical ones (0x0f00000x, an ISA level);
//!   the list ends with a pair whose value has a bit set outside its mask;
//! - one byte, the number of option vectors minus one;
//! - the option vectors, each a length byte (its payload length minus one)
//!   followed by the payload, whose first byte LoPAR calls "byte 1".
//!
//! What the firmware granted from option vector 5 appears afterwards as
//! `/chosen/ibm,architecture-vec-5`, whose first byte is again a length, so its
//! byte N is at index N.

use alloc::vec::Vec;

use kernel::devtree::flatten::{ClientInterface, Phandle};

use super::call::{cell_addr, signed, Prom};
use super::OfError;

/// Option vector 5, byte 4, bit 0 (0x80): Cooperative Memory Over-commitment.
pub const OV5_CMO_BYTE: usize = 4;
/// See [`OV5_CMO_BYTE`].
pub const OV5_CMO_BIT: u8 = 0x80;

/// Logical PVRs: ISA 3.1, 3.0 and 2.07 compatibility modes.
const LOGICAL_PVRS: [u32; 3] = [0x0f00_0006, 0x0f00_0005, 0x0f00_0004];
/// The end of the PVR list: the value has bit 31 set, which its mask excludes.
/// (As a pair it also names the ISA 2.04-and-older logical PVRs.)
const PVR_LIST_END: (u32, u32) = (0xffff_fffe, 0x0f00_0001);

/// The largest `ibm,architecture-vec-5` read back.
const MAX_VEC5: usize = 256;

/// Builds `ibm,architecture.vec` for a processor whose PVR is `pvr`.
pub fn architecture_vector(pvr: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(160);
    let pair = |v: &mut Vec<u8>, mask: u32, value: u32| {
        v.extend_from_slice(&mask.to_be_bytes());
        v.extend_from_slice(&value.to_be_bytes());
    };
    // This processor's family (raw mode), then the compatibility levels.
    pair(&mut v, 0xffff_0000, pvr & 0xffff_0000);
    for l in LOGICAL_PVRS {
        pair(&mut v, 0xffff_ffff, l);
    }
    pair(&mut v, PVR_LIST_END.0, PVR_LIST_END.1);

    let vectors: [&[u8]; 5] = [&OV1, &OV2, &OV3, &OV4, &OV5];
    v.push(4); // five vectors
    for payload in vectors {
        // Every payload is 1..=256 bytes long (constants below).
        v.push(u8::try_from(payload.len() - 1).unwrap_or(0));
        v.extend_from_slice(payload);
    }
    v
}

/// Option vector 1: byte 1 none ignored; byte 2 ISA 2.06 (0x02) and 2.07 (0x01);
/// byte 3 ISA 3.00 (0x80) and 3.1 (0x40).
const OV1: [u8; 3] = [0x00, 0x03, 0xc0];

/// Option vector 2 (memory): no preferences ("don't care" is all ones) except a
/// minimum real-mode area of 64 MiB, where the kernel image lives.
const OV2: [u8; 33] = {
    let mut v = [0u8; 33];
    // byte 1 flags, bytes 2-3 reserved, then 32-bit fields: real base, real
    // size, virtual base, virtual size, load base, min RMA (MiB), min load.
    let fields: [u32; 7] = [
        u32::MAX,
        u32::MAX,
        u32::MAX,
        u32::MAX,
        u32::MAX,
        64,
        u32::MAX,
    ];
    let mut i = 0;
    while i < fields.len() {
        let b = fields[i].to_be_bytes();
        let at = 3 + 4 * i;
        v[at] = b[0];
        v[at + 1] = b[1];
        v[at + 2] = b[2];
        v[at + 3] = b[3];
        i += 1;
    }
    // min RMA percent of memory: none; max log2 of the hash table size: 48.
    v[31] = 0;
    v[32] = 48;
    v
};

/// Option vector 3: byte 2 floating point (0x80) and VMX (0x40): the kernel's
/// `core` uses both.
const OV3: [u8; 2] = [0x00, 0xc0];

/// Option vector 4: no processor entitlement requirements.
const OV4: [u8; 1] = [0x00];

/// Option vector 5: byte 2 LPAR (0x80) and shared-processor LPAR (0x40); byte 4
/// CMO (0x80); bytes 9-12 the most processors used (1); byte 23 zero (XICS
/// interrupts); byte 24 zero (hash page table MMU).
const OV5: [u8; 24] = {
    let mut v = [0u8; 24];
    v[1] = 0xc0;
    v[OV5_CMO_BYTE - 1] = OV5_CMO_BIT;
    v[11] = 1;
    v
};

/// What CAS granted.
#[derive(Clone, Debug, Default)]
pub struct Granted {
    /// `/chosen/ibm,architecture-vec-5` after CAS (empty if absent).
    pub vec5: Vec<u8>,
}

impl Granted {
    /// Whether the firmware granted CMO.
    pub fn cmo(&self) -> bool {
        self.vec5
            .get(OV5_CMO_BYTE)
            .is_some_and(|b| b & OV5_CMO_BIT != 0)
    }
}

/// Calls CAS on the root node's instance and reads back option vector 5.
pub fn negotiate(prom: &mut Prom, pvr: u32) -> Result<Granted, OfError> {
    let vector = architecture_vector(pvr);
    log::info!(
        "CAS: asking for {} bytes: PVR {:#010x}, ISA 2.07..3.1, LPAR, SPLPAR, CMO (vector 5 byte {OV5_CMO_BYTE} = {OV5_CMO_BIT:#04x})",
        vector.len(),
        pvr & 0xffff_0000
    );
    let root = open(prom, c"/")?;
    let mut rets = [0u32; 2];
    let method = c"ibm,client-architecture-support";
    let what = "ibm,client-architecture-support";
    let args = [
        cell_addr(what, method.as_ptr()).map_err(|e| OfError::call(what, e))?,
        root,
        cell_addr(what, vector.as_ptr()).map_err(|e| OfError::call(what, e))?,
    ];
    let r = prom.call(c"call-method", &args, &mut rets);
    let _ = prom.call(c"close", &[root], &mut []);
    r.map_err(|e| OfError::call(what, e))?;
    if rets != [0, 0] {
        return Err(OfError::CasRefused {
            catch: signed(rets[0]),
            result: signed(rets[1]),
        });
    }
    let chosen = finddevice(prom, c"/chosen")?;
    let mut vec5 = Vec::new();
    let name = c"ibm,architecture-vec-5";
    let len = prom
        .getproplen(chosen, name)
        .map_err(|e| OfError::call("getproplen /chosen", e))?;
    if let Some(len) = len {
        vec5.resize(len.min(MAX_VEC5), 0);
        prom.getprop(chosen, name, &mut vec5)
            .map_err(|e| OfError::call("getprop /chosen", e))?;
    }
    Ok(Granted { vec5 })
}

/// `open`: an instance of the node at `path`.
pub fn open(prom: &mut Prom, path: &'static core::ffi::CStr) -> Result<u32, OfError> {
    let what = "open";
    let mut rets = [0u32; 1];
    let addr = cell_addr(what, path.as_ptr()).map_err(|e| OfError::call(what, e))?;
    prom.call(c"open", &[addr], &mut rets)
        .map_err(|e| OfError::call(what, e))?;
    match signed(rets[0]) {
        0 | -1 => Err(OfError::Missing(path.to_str().unwrap_or("?"))),
        _ => Ok(rets[0]),
    }
}

/// `finddevice`: the node at `path`.
pub fn finddevice(prom: &mut Prom, path: &'static core::ffi::CStr) -> Result<Phandle, OfError> {
    let what = "finddevice";
    let mut rets = [0u32; 1];
    let addr = cell_addr(what, path.as_ptr()).map_err(|e| OfError::call(what, e))?;
    prom.call(c"finddevice", &[addr], &mut rets)
        .map_err(|e| OfError::call(what, e))?;
    match signed(rets[0]) {
        0 | -1 => Err(OfError::Missing(path.to_str().unwrap_or("?"))),
        _ => Ok(rets[0]),
    }
}
