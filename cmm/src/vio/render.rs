//! Text output of the VIO accounting, all values in bytes as Linux prints them:
//!
//! - [`VioBus::write_vio_rows`], the `vio` command: one line per device,
//!   `<node name>: desired=<d> entitled=<e> allocated=<a> allocs_failed=<n>`,
//!   in device-tree order (devices without DMA window show zeros).
//! - [`VioBus::write_amsstat_bus`] and [`VioBus::write_amsstat_devices`], amsstat's
//!   `VIO Bus Statistics:` and `VIO Device Statistics:` sections, rows formatted as
//!   amsstat's `printf "%-4s %-30s %-30s\n" " " "name:" value` (trailing blanks
//!   included).
//! - [`VioBus::write_sysfs`], the `sysfs` lines `/sys/bus/vio/cmo_<field>=<v>`,
//!   `/sys/bus/vio/devices/<unit hex>/devspec=/vdevice/<node name>` and
//!   `/sys/bus/vio/devices/<unit hex>/cmo_<field>=<v>`.

use core::fmt::{self, Write};

use super::accounting::{BusCmo, DeviceCmo};
use super::bus::VioBus;
use crate::render::write_amsstat_row;

/// The bus fields, in the order every output lists them.
fn bus_fields(b: &BusCmo) -> [(&'static str, u64); 9] {
    [
        ("cmo_entitled", b.entitled),
        ("cmo_reserve_size", b.reserve_size),
        ("cmo_excess_size", b.excess_size),
        ("cmo_excess_free", b.excess_free),
        ("cmo_spare", b.spare),
        ("cmo_min", b.min),
        ("cmo_desired", b.desired),
        ("cmo_curr", b.curr),
        ("cmo_high", b.high),
    ]
}

/// The device fields, in the order every output lists them.
fn device_fields(d: &DeviceCmo) -> [(&'static str, u64); 4] {
    [
        ("cmo_desired", d.desired),
        ("cmo_entitled", d.entitled),
        ("cmo_allocated", d.allocated),
        ("cmo_allocs_failed", d.allocs_failed),
    ]
}

impl VioBus {
    /// The `vio` command's rows.
    pub fn write_vio_rows(&self, w: &mut dyn Write) -> fmt::Result {
        for dev in &self.devices {
            let c = self
                .acct
                .device(dev.unit_address)
                .copied()
                .unwrap_or_default();
            writeln!(
                w,
                "{}: desired={} entitled={} allocated={} allocs_failed={}",
                dev.name, c.desired, c.entitled, c.allocated, c.allocs_failed
            )?;
        }
        Ok(())
    }

    /// amsstat's `VIO Bus Statistics:` section.
    pub fn write_amsstat_bus(&self, w: &mut dyn Write) -> fmt::Result {
        writeln!(w, "VIO Bus Statistics:")?;
        for (name, v) in bus_fields(self.acct.bus()) {
            write_amsstat_row(w, name, v)?;
        }
        Ok(())
    }

    /// amsstat's `VIO Device Statistics:` section: devices with a non-zero
    /// entitlement, each under a line `   <node name>:`.
    pub fn write_amsstat_devices(&self, w: &mut dyn Write) -> fmt::Result {
        writeln!(w, "VIO Device Statistics:")?;
        let mut found = false;
        for dev in &self.devices {
            let Ok(c) = self.acct.device(dev.unit_address) else {
                continue;
            };
            if c.entitled == 0 {
                continue;
            }
            found = true;
            writeln!(w, "   {}:", dev.name)?;
            for (name, v) in device_fields(c) {
                write_amsstat_row(w, name, v)?;
            }
        }
        if !found {
            writeln!(w, "     No AMS devices found.")?;
        }
        Ok(())
    }

    /// The `sysfs` lines of the VIO bus and its devices.
    pub fn write_sysfs(&self, w: &mut dyn Write) -> fmt::Result {
        for (name, v) in bus_fields(self.acct.bus()) {
            writeln!(w, "/sys/bus/vio/{name}={v}")?;
        }
        for dev in &self.devices {
            let unit = dev.unit_address;
            writeln!(
                w,
                "/sys/bus/vio/devices/{unit:x}/devspec=/vdevice/{}",
                dev.name
            )?;
            let c = self.acct.device(unit).copied().unwrap_or_default();
            for (name, v) in device_fields(&c) {
                writeln!(w, "/sys/bus/vio/devices/{unit:x}/{name}={v}")?;
            }
        }
        Ok(())
    }
}
