//! Configuration space: the registers used here, [`ConfigSpace`] (how a bridge
//! reads and writes them: RTAS in the glue, fakes in the tests), and the
//! arithmetic of the RTAS `ibm,read-pci-config` configuration address
//! (docs/virtio-balloon.md).

/// Width of one configuration access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// One byte.
    U8 = 1,
    /// Two bytes.
    U16 = 2,
    /// Four bytes.
    U32 = 4,
}

impl Width {
    /// The size argument RTAS takes (1, 2 or 4).
    pub fn bytes(self) -> u32 {
        self as u32
    }
}

/// Configuration space of bus 0 behind one host bridge.
pub trait ConfigSpace {
    /// Why an access failed.
    type Error: core::fmt::Display;
    /// Reads register `reg` of function `devfn`.
    fn read(&mut self, devfn: u8, reg: u16, width: Width) -> Result<u32, Self::Error>;
    /// Writes register `reg` of function `devfn`.
    fn write(&mut self, devfn: u8, reg: u16, width: Width, value: u32) -> Result<(), Self::Error>;
}

/// The BUID as the two RTAS argument cells (high, low).
pub fn buid_cells(buid: u64) -> (u32, u32) {
    let hi = u32::try_from(buid >> 32).unwrap_or(0);
    let lo = u32::try_from(buid & 0xffff_ffff).unwrap_or(0);
    (hi, lo)
}

/// Device and function packed as `devfn` (device 0-31, function 0-7).
pub fn devfn(device: u8, function: u8) -> u8 {
    ((device & 0x1f) << 3) | (function & 7)
}

/// The configuration address RTAS takes: extended register bits 8-11 in bits
/// 24-27, bus in 16-23, devfn in 8-15, register bits 0-7 in 0-7.
pub fn config_address(bus: u8, devfn: u8, reg: u16) -> u32 {
    let reg = u32::from(reg);
    ((reg & 0xf00) << 16) | (u32::from(bus) << 16) | (u32::from(devfn) << 8) | (reg & 0xff)
}

/// Configuration registers used here.
pub mod reg {
    /// Vendor ID (u16).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device ID (u16).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command (u16).
    pub const COMMAND: u16 = 0x04;
    /// BAR 0 (u32); BARs 1-5 follow.
    pub const BAR0: u16 = 0x10;
    /// Subsystem ID (u16).
    pub const SUBSYSTEM_ID: u16 = 0x2e;
}

/// Command register: decode I/O, decode memory, bus master.
pub const COMMAND_IO_MEM_MASTER: u16 = 0x7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buid_and_config_addresses() {
        assert_eq!(
            buid_cells(0x0800_0000_2000_0000),
            (0x0800_0000, 0x2000_0000)
        );
        assert_eq!(config_address(0, 0, 0), 0);
        assert_eq!(config_address(0, devfn(0, 0), reg::COMMAND), 4);
        assert_eq!(devfn(3, 1), 0x19);
        assert_eq!(config_address(1, devfn(3, 1), 0x10), 0x0001_1910);
        // Extended registers put bits 8-11 at 24-27.
        assert_eq!(config_address(2, 0xff, 0xabc), 0x0a02_ffbc);
        assert_eq!(Width::U16.bytes(), 2);
    }
}
