//! `ibm,client-architecture-support` (CAS) through the client interface: hands
//! the firmware the architecture vector built by [`kernel::cas`] and reads back
//! `/chosen/ibm,architecture-vec-5`, what it granted.

use alloc::vec::Vec;

use kernel::cas::{architecture_vector, Granted, MAX_VEC5, OV5_CMO_BIT, OV5_CMO_BYTE};
use kernel::devtree::flatten::{ClientInterface, Phandle};

use super::call::{cell_addr, signed, Prom};
use super::OfError;

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
