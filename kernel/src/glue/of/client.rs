//! The flattener's [`ClientInterface`] and boot's [`Services`] over the real
//! firmware: each method is one client interface call with the IEEE 1275
//! argument and result counts.

use core::ffi::CStr;

use kernel::devtree::firmware::{Arg, Services};
use kernel::devtree::flatten::{CiError, ClientInterface, Phandle, PROP_NAME_BUF};

use super::call::{cell_addr, cell_len, signed, Prom};

/// The client interface's failure value.
const PROM_ERROR: i32 = -1;

impl Prom {
    /// One call with one result cell.
    fn call1(&mut self, service: &'static CStr, args: &[u32]) -> Result<u32, CiError> {
        let mut rets = [0u32; 1];
        self.call(service, args, &mut rets)?;
        Ok(rets[0])
    }

    /// A call whose single result is a phandle (0 = none, -1 = failure).
    fn phandle_call(&mut self, service: &'static CStr, node: Phandle) -> Result<Phandle, CiError> {
        let r = self.call1(service, &[node])?;
        if signed(r) == PROM_ERROR {
            return Err(CiError::Failed {
                service: service.to_str().unwrap_or("?"),
            });
        }
        Ok(r)
    }
}

impl ClientInterface for Prom {
    fn peer(&mut self, node: Phandle) -> Result<Phandle, CiError> {
        self.phandle_call(c"peer", node)
    }

    fn child(&mut self, node: Phandle) -> Result<Phandle, CiError> {
        self.phandle_call(c"child", node)
    }

    fn nextprop(
        &mut self,
        node: Phandle,
        previous: &CStr,
        buf: &mut [u8; PROP_NAME_BUF],
    ) -> Result<bool, CiError> {
        const S: &str = "nextprop";
        let args = [
            node,
            cell_addr(S, previous.as_ptr())?,
            cell_addr(S, buf.as_mut_ptr())?,
        ];
        match signed(self.call1(c"nextprop", &args)?) {
            PROM_ERROR => Err(CiError::Failed { service: S }),
            0 => Ok(false),
            _ => Ok(true),
        }
    }

    fn getproplen(&mut self, node: Phandle, name: &CStr) -> Result<Option<usize>, CiError> {
        const S: &str = "getproplen";
        let r = signed(self.call1(c"getproplen", &[node, cell_addr(S, name.as_ptr())?])?);
        match r {
            PROM_ERROR => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| CiError::Failed { service: S }),
        }
    }

    fn getprop(
        &mut self,
        node: Phandle,
        name: &CStr,
        buf: &mut [u8],
    ) -> Result<Option<usize>, CiError> {
        const S: &str = "getprop";
        let args = [
            node,
            cell_addr(S, name.as_ptr())?,
            cell_addr(S, buf.as_mut_ptr())?,
            cell_len(S, buf.len())?,
        ];
        match signed(self.call1(c"getprop", &args)?) {
            PROM_ERROR => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| CiError::Failed { service: S }),
        }
    }

    fn package_to_path(&mut self, node: Phandle, buf: &mut [u8]) -> Result<usize, CiError> {
        const S: &str = "package-to-path";
        let args = [
            node,
            cell_addr(S, buf.as_mut_ptr())?,
            cell_len(S, buf.len())?,
        ];
        let r = signed(self.call1(c"package-to-path", &args)?);
        usize::try_from(r).map_err(|_| CiError::Failed { service: S })
    }
}

impl Services for Prom {
    fn finddevice(&mut self, path: &'static CStr) -> Result<u32, CiError> {
        let addr = cell_addr("finddevice", path.as_ptr())?;
        self.call1(c"finddevice", &[addr])
    }

    fn open(&mut self, path: &'static CStr) -> Result<u32, CiError> {
        let addr = cell_addr("open", path.as_ptr())?;
        self.call1(c"open", &[addr])
    }

    fn close(&mut self, ihandle: u32) {
        let _ = self.call(c"close", &[ihandle], &mut []);
    }

    fn claim(&mut self, virt: u32, size: u32, align: u32) -> Result<u32, CiError> {
        self.call1(c"claim", &[virt, size, align])
    }

    fn call_method(
        &mut self,
        method: &'static CStr,
        ihandle: u32,
        args: &[Arg<'_>],
        rets: &mut [u32],
    ) -> Result<(), CiError> {
        const S: &str = "call-method";
        let mut cells = [0u32; 8];
        let n = args.len().checked_add(2).filter(|&n| n <= cells.len());
        let n = n.ok_or(CiError::TooManyCells { service: S })?;
        cells[0] = cell_addr(S, method.as_ptr())?;
        cells[1] = ihandle;
        for (c, a) in cells[2..n].iter_mut().zip(args) {
            *c = match a {
                Arg::Cell(v) => *v,
                Arg::Buffer(b) => cell_addr(S, b.as_ptr())?,
            };
        }
        self.call(c"call-method", &cells[..n], rets)
    }

    fn instance_to_package(&mut self, ihandle: u32) -> Result<u32, CiError> {
        self.call1(c"instance-to-package", &[ihandle])
    }
}
