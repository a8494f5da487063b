//! [`VioBus`]: the VIO bus as the kernel drives it. It ties the device
//! descriptions, the entitlement [`Accounting`], the DMA windows and the live
//! mappings together, and is the only type the kernel needs to hold.
//!
//! This file has construction, device lookup, probe/remove/hot-plug and the
//! entitlement change around H_SET_MPP. Mapping is in `mapping.rs`, output in
//! `render.rs`.

use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::vec::Vec;

use hcall::{Hypervisor, SetMppOutcome};

use super::accounting::{Accounting, BusCmo, DeviceCmo};
use super::device::VioDevice;
use super::error::VioError;
use super::ioba::IobaSpace;
use super::mapping::Mapping;

/// The VIO bus: devices, their entitlement accounting, DMA windows and mappings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VioBus {
    pub(super) devices: Vec<VioDevice>,
    pub(super) acct: Accounting,
    pub(super) windows: BTreeMap<u32, IobaSpace>,
    pub(super) mappings: BTreeMap<u64, Mapping>,
    pub(super) next_id: u64,
}

impl VioBus {
    /// Bus init with CMO: `entitled` is H_GET_MPP's entitled memory (r4), `devices`
    /// every `/vdevice` child. No device is probed yet. Refused if the entitlement
    /// cannot hold the spare plus one MIN_ENT per DMA-capable device.
    pub fn new(entitled: u64, devices: Vec<VioDevice>) -> Result<Self, VioError> {
        let acct = Accounting::new(entitled, &Self::summary(&devices))?;
        Ok(Self::assemble(devices, acct))
    }

    /// The bus of a partition without CMO: devices map memory uncharged, every
    /// counter reads 0 (as Linux's sysfs does then).
    pub fn without_cmo(devices: Vec<VioDevice>) -> Result<Self, VioError> {
        let acct = Accounting::without_cmo(&Self::summary(&devices))?;
        Ok(Self::assemble(devices, acct))
    }

    fn summary(devices: &[VioDevice]) -> Vec<(u32, bool)> {
        devices
            .iter()
            .map(|d| (d.unit_address, d.dma_window.is_some()))
            .collect()
    }

    fn assemble(devices: Vec<VioDevice>, acct: Accounting) -> Self {
        let windows = devices
            .iter()
            .filter_map(|d| Some((d.unit_address, IobaSpace::new(d.dma_window.as_ref()?))))
            .collect();
        VioBus {
            devices,
            acct,
            windows,
            mappings: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// The devices, in device-tree order.
    pub fn devices(&self) -> &[VioDevice] {
        &self.devices
    }

    /// One device's description.
    pub fn device(&self, unit: u32) -> Result<&VioDevice, VioError> {
        self.devices
            .iter()
            .find(|d| d.unit_address == unit)
            .ok_or(VioError::NoSuchDevice(unit))
    }

    /// The unit address named by a console argument: a node name
    /// (`v-scsi@71000002`) or a hex unit address (`71000002`, `0x71000002`).
    pub fn resolve(&self, arg: &str) -> Result<u32, VioError> {
        if let Some(d) = self.devices.iter().find(|d| d.name == arg) {
            return Ok(d.unit_address);
        }
        let hex = arg
            .strip_prefix("0x")
            .or_else(|| arg.strip_prefix("0X"))
            .unwrap_or(arg);
        u32::from_str_radix(hex, 16)
            .ok()
            .filter(|&u| self.device(u).is_ok())
            .ok_or_else(|| VioError::UnknownUnit(arg.to_string()))
    }

    /// The entitlement accounting (read only).
    pub fn accounting(&self) -> &Accounting {
        &self.acct
    }

    /// The bus counters.
    pub fn stats(&self) -> &BusCmo {
        self.acct.bus()
    }

    /// One device's counters.
    pub fn device_stats(&self, unit: u32) -> Result<&DeviceCmo, VioError> {
        self.acct.device(unit)
    }

    /// Probes a device with the desired entitlement of its type
    /// ([`VioDevice::default_desired`]) or `desired` bytes if given.
    pub fn probe(&mut self, unit: u32, desired: Option<u64>) -> Result<(), VioError> {
        let d = match desired {
            Some(d) => d,
            None => self.device(unit)?.default_desired(),
        };
        self.acct.probe(unit, d)
    }

    /// Probes every device not yet probed with its default desired; returns the
    /// devices that could not be probed and why.
    pub fn probe_all(&mut self) -> Vec<(u32, VioError)> {
        let units: Vec<u32> = self
            .devices
            .iter()
            .map(|d| d.unit_address)
            .filter(|&u| !self.acct.is_bound(u).unwrap_or(true))
            .collect();
        units
            .into_iter()
            .filter_map(|u| self.probe(u, None).err().map(|e| (u, e)))
            .collect()
    }

    /// Removes (unbinds) a device: refused while it has mappings.
    pub fn remove(&mut self, unit: u32) -> Result<(), VioError> {
        let mapped = self
            .mappings
            .values()
            .filter(|m| m.unit == unit)
            .fold(0u64, |s, m| s.saturating_add(m.size));
        if mapped != 0 {
            return Err(VioError::DeviceBusy {
                unit,
                allocated: mapped,
            });
        }
        self.acct.remove(unit)
    }

    /// A device node appeared (hot-plug): reserves its minimum if it has a DMA
    /// window; refused if the spare and free excess cannot cover it.
    pub fn add_device(&mut self, device: VioDevice) -> Result<(), VioError> {
        self.acct
            .add_device(device.unit_address, device.dma_window.is_some())?;
        if let Some(w) = &device.dma_window {
            self.windows.insert(device.unit_address, IobaSpace::new(w));
        }
        self.devices.push(device);
        Ok(())
    }

    /// A device node left the tree: it must be removed (unbound) first.
    pub fn remove_device(&mut self, unit: u32) -> Result<VioDevice, VioError> {
        let i = self
            .devices
            .iter()
            .position(|d| d.unit_address == unit)
            .ok_or(VioError::NoSuchDevice(unit))?;
        self.acct.remove_device(unit)?;
        self.windows.remove(&unit);
        Ok(self.devices.remove(i))
    }

    /// Sets a probed device's desired entitlement (`vio desired`, sysfs
    /// `cmo_desired`) and rebalances.
    pub fn set_desired(&mut self, unit: u32, bytes: u64) -> Result<(), VioError> {
        self.acct.set_desired(unit, bytes)
    }

    /// Runs a balancing pass (every operation that needs one already ran it).
    pub fn balance(&mut self) {
        self.acct.balance();
    }

    /// Any write to `/sys/bus/vio/cmo_high`: the high-water mark becomes `curr`.
    pub fn reset_high(&mut self) {
        self.acct.reset_high();
    }

    /// Any write to a device's `cmo_allocs_failed`: back to 0.
    pub fn reset_allocs_failed(&mut self, unit: u32) -> Result<(), VioError> {
        self.acct.reset_allocs_failed(unit)
    }

    /// Follows an entitlement the hypervisor changed by itself (seen in H_GET_MPP).
    pub fn sync_entitlement(&mut self, granted: u64) -> Result<(), VioError> {
        self.acct.sync_entitlement(granted)
    }

    /// `mpp entitle`: checks `new` against the accounting and applies it, then asks
    /// the hypervisor with H_SET_MPP(new, weight) (pass the current weight from
    /// H_GET_MPP). If the hcall fails, the accounting is rolled back exactly. If it
    /// answers H_CONSTRAINED, H_GET_MPP tells what was granted and the accounting
    /// follows that value instead. A refused check changes nothing and makes no
    /// hcall.
    pub fn set_entitlement<H: Hypervisor + ?Sized>(
        &mut self,
        hv: &mut H,
        new: u64,
        weight: u8,
    ) -> Result<SetMppOutcome, VioError> {
        let before = self.acct.clone();
        self.acct.entitlement_update(new)?;
        match hv.set_mpp(new, weight) {
            Err(e) => {
                self.acct = before;
                Err(VioError::Hcall(e))
            }
            Ok(SetMppOutcome::Set) => Ok(SetMppOutcome::Set),
            Ok(SetMppOutcome::Constrained) => match hv.get_mpp() {
                Ok(mpp) => {
                    if mpp.entitled_mem != new {
                        self.acct = before;
                        self.acct.sync_entitlement(mpp.entitled_mem)?;
                    }
                    Ok(SetMppOutcome::Constrained)
                }
                Err(source) => {
                    // Unknown grant: keep the smaller of old and new, both valid.
                    let assumed = before.bus().entitled.min(new);
                    if assumed != new {
                        self.acct = before;
                    }
                    Err(VioError::EntitlementUnknown { assumed, source })
                }
            },
        }
    }
}
