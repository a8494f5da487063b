//! What boot composes from what it found, besides the backend [`super::detect`]
//! chooses: the VIO bus and its entitlement accounting. With CMO the bus
//! accounts against H_GET_MPP's entitled memory; when H_GET_MPP fails, or the
//! entitlement cannot hold every DMA-capable device's minimum, the bus runs
//! without CMO (devices map memory uncharged), as Linux's does (docs/cmo.md §7).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Display;

use cmm::vio::{VioBus, VioDevice};

use crate::devtree::platform::VDevice;

/// The `/vdevice` children as the VIO bus knows them.
pub fn vio_devices(vdevices: &[VDevice]) -> Vec<VioDevice> {
    vdevices
        .iter()
        .map(|d| VioDevice {
            name: d.name.clone(),
            unit_address: d.unit,
            compatible: d.compatible.clone(),
            dma_window: d.dma_window,
        })
        .collect()
}

/// The VIO bus over `devices`, every device probed: with CMO against
/// `entitled` (H_GET_MPP's answer), else without. Returns the bus and one
/// warning line per fallback or device left unprobed; an error only when not
/// even the bus without CMO can be built.
pub fn vio_bus<E: Display>(
    entitled: Result<u64, E>,
    devices: Vec<VioDevice>,
) -> Result<(VioBus, Vec<String>), String> {
    let mut warnings = Vec::new();
    let with_cmo = match entitled {
        Ok(e) => VioBus::new(e, devices.clone())
            .map_err(|e| format!("VIO entitlement: {e}; accounting disabled")),
        Err(e) => Err(format!("VIO accounting without CMO: {e}")),
    };
    let mut bus = match with_cmo {
        Ok(b) => b,
        Err(why) => {
            warnings.push(why);
            VioBus::without_cmo(devices).map_err(|e| format!("VIO bus: {e}"))?
        }
    };
    for (unit, e) in bus.probe_all() {
        warnings.push(format!("VIO device {unit:x} not probed: {e}"));
    }
    Ok((bus, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmm::vio::{DmaWindow, MIN_ENT};

    fn devices(n: u32) -> Vec<VioDevice> {
        let mut v: Vec<VioDevice> = (0..n)
            .map(|i| VioDevice {
                name: format!("v-scsi@{:x}", 0x7100_0002 + i),
                unit_address: 0x7100_0002 + i,
                compatible: "IBM,v-scsi".into(),
                dma_window: Some(DmaWindow {
                    liobn: 0x1000_0000 + i,
                    offset: 0,
                    size: 0x1000_0000,
                }),
            })
            .collect();
        v.push(VioDevice {
            name: "vty@71000000".into(),
            unit_address: 0x7100_0000,
            compatible: "hvterm1".into(),
            dma_window: None,
        });
        v
    }

    #[test]
    fn with_cmo_every_device_is_probed_against_the_entitlement() {
        let (bus, warnings) = vio_bus::<&str>(Ok(64 << 20), devices(2)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(bus.accounting().enabled());
        assert_eq!(bus.stats().entitled, 64 << 20);
        assert_eq!(bus.devices().len(), 3);
    }

    #[test]
    fn without_h_get_mpp_the_bus_runs_without_cmo() {
        let (bus, warnings) = vio_bus(Err("H_GET_MPP: H_FUNCTION"), devices(1)).unwrap();
        assert!(!bus.accounting().enabled());
        assert_eq!(
            warnings,
            ["VIO accounting without CMO: H_GET_MPP: H_FUNCTION"]
        );
    }

    #[test]
    fn an_entitlement_too_small_for_the_devices_disables_accounting() {
        // The spare plus one MIN_ENT per DMA device does not fit in 2 MIN_ENT.
        let (bus, warnings) = vio_bus::<&str>(Ok(2 * MIN_ENT), devices(2)).unwrap();
        assert!(!bus.accounting().enabled());
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("VIO entitlement: ")
                && warnings[0].ends_with("; accounting disabled"),
            "{warnings:?}"
        );
        assert_eq!(bus.devices().len(), 3, "every device is still on the bus");
    }

    #[test]
    fn vdevices_become_vio_devices() {
        let v = VDevice {
            name: "v-scsi@71000002".into(),
            unit: 0x7100_0002,
            compatible: "IBM,v-scsi".into(),
            device_type: "vscsi".into(),
            dma_window: None,
        };
        let d = vio_devices(&[v]);
        assert_eq!(d[0].unit_address, 0x7100_0002);
        assert_eq!(d[0].name, "v-scsi@71000002");
        assert_eq!(d[0].compatible, "IBM,v-scsi");
    }
}
