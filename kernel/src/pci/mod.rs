//! PCI on the pseries host bridge, without the hardware: the bridge's windows
//! from the device tree ([`window`]), configuration space behind the
//! [`ConfigSpace`] trait ([`config`]), BAR arithmetic ([`bar`]), and the scan,
//! BAR sizing and assignment generic over the configuration space ([`setup`]).
//! The glue's `drivers/rtas_pci.rs` implements [`ConfigSpace`] with RTAS.

pub mod bar;
pub mod config;
pub mod setup;
pub mod window;

pub use bar::{bar_address, bar_size, BarAllocator, BarKind};
pub use config::{
    buid_cells, config_address, devfn, reg, ConfigSpace, Width, COMMAND_IO_MEM_MASTER,
};
pub use setup::{Bar, Bridge, Function, Origin, IO_SKIP};
pub use window::{buid_from_reg, cpu_address, decode_ranges, PciError, Space, Window};
