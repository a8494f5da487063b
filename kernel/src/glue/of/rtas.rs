//! Instantiating RTAS through the client interface, as a PowerVM LPAR must
//! (`docs/rtas.md`): read `/rtas` `rtas-size`, claim that much page-aligned
//! memory right after the kernel image (inside the RMA), `open` `/rtas` and
//! `call-method` `instantiate-rtas` with the base; the method returns the entry.

use kernel::devtree::flatten::ClientInterface;

use super::call::{cell_addr, signed, Prom};
use super::cas::{finddevice, open};
use super::OfError;
use crate::rtas::Instance;

/// The largest RTAS area accepted (PowerVM's is about 20 MB).
const MAX_RTAS_SIZE: u32 = 64 << 20;

/// Instantiates RTAS on the first page after `image_end`, or where the firmware
/// finds room if that is taken. `Ok(None)` when the firmware has no `/rtas` or
/// no `rtas-size` (then the hcall transport stays).
pub fn instantiate(prom: &mut Prom, image_end: u64) -> Result<Option<Instance>, OfError> {
    let Ok(node) = finddevice(prom, c"/rtas") else {
        return Ok(None);
    };
    let mut cell = [0u8; 4];
    let len = prom
        .getprop(node, c"rtas-size", &mut cell)
        .map_err(|e| OfError::call("getprop /rtas rtas-size", e))?;
    if len != Some(4) {
        return Ok(None);
    }
    let size = u32::from_be_bytes(cell);
    if size == 0 || size > MAX_RTAS_SIZE {
        return Err(OfError::BadRtas("rtas-size out of range"));
    }
    let want = kernel::rma::rtas_base(image_end)
        .and_then(|b| u32::try_from(b).ok())
        .ok_or(OfError::BadRtas("no room below 4 GiB"))?;
    let base = match claim(prom, want, size, 0) {
        Some(b) => b,
        None => claim(prom, 0, size, 4096).ok_or(OfError::BadRtas("claim refused"))?,
    };
    let rtas = open(prom, c"/rtas")?;
    let what = "instantiate-rtas";
    let method = c"instantiate-rtas";
    let args = [
        cell_addr(what, method.as_ptr()).map_err(|e| OfError::call(what, e))?,
        rtas,
        base,
    ];
    let mut rets = [0u32; 2];
    prom.call(c"call-method", &args, &mut rets)
        .map_err(|e| OfError::call(what, e))?;
    if rets[0] != 0 || rets[1] == 0 || signed(rets[1]) == -1 {
        return Err(OfError::BadRtas("instantiate-rtas failed"));
    }
    Ok(Some(Instance {
        base,
        size,
        entry: rets[1],
    }))
}

/// `claim`: `size` bytes at `virt` (`align` 0) or anywhere aligned to `align`.
fn claim(prom: &mut Prom, virt: u32, size: u32, align: u32) -> Option<u32> {
    let mut rets = [0u32; 1];
    prom.call(c"claim", &[virt, size, align], &mut rets).ok()?;
    match signed(rets[0]) {
        -1 => None,
        _ if align == 0 && rets[0] != virt => None,
        _ => Some(rets[0]),
    }
}
