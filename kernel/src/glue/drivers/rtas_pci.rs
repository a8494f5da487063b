//! PCI configuration space through RTAS `ibm,read-pci-config` /
//! `ibm,write-pci-config` (docs/virtio-balloon.md): the [`ConfigSpace`] of one
//! pseries host bridge. The scan, sizing and assignment are in `kernel::pci`.

use kernel::devtree::platform::Phb;
use kernel::pci::{buid_cells, config_address, Bridge, ConfigSpace, Width};

use crate::rtas::{self, CallError};

/// Bus 0 of one host bridge, reached through RTAS.
pub struct RtasConfig {
    buid: u64,
    read_token: u32,
    write_token: u32,
}

impl ConfigSpace for RtasConfig {
    type Error = CallError;

    fn read(&mut self, devfn: u8, reg: u16, width: Width) -> Result<u32, CallError> {
        let (hi, lo) = buid_cells(self.buid);
        let mut rets = [0u32; 2];
        rtas::call_status(
            self.read_token,
            &[config_address(0, devfn, reg), hi, lo, width.bytes()],
            &mut rets,
        )?;
        Ok(rets[1])
    }

    fn write(&mut self, devfn: u8, reg: u16, width: Width, value: u32) -> Result<(), CallError> {
        let (hi, lo) = buid_cells(self.buid);
        let mut rets = [0u32; 1];
        rtas::call_status(
            self.write_token,
            &[config_address(0, devfn, reg), hi, lo, width.bytes(), value],
            &mut rets,
        )
    }
}

/// The bridge for `phb`, if RTAS has the config-space calls.
pub fn bridge(phb: &Phb) -> Result<Bridge<RtasConfig>, &'static str> {
    let (read_token, write_token) = rtas::tokens().pci_config()?;
    Ok(Bridge {
        name: phb.name.clone(),
        windows: phb.windows.clone(),
        config: RtasConfig {
            buid: phb.buid,
            read_token,
            write_token,
        },
    })
}
