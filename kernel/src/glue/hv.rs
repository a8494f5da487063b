//! The hypervisor backend on the machine: the detection probe (RTAS system
//! parameters and a real H_GET_MPP) handed to the library's
//! [`kernel::hv::detect`], the backend it chose, built over the real hypervisor
//! of [`crate::mem::real_hypervisor`], and the timebase [`KernelClock`] of the
//! one retry path ([`hcall::Retrying`]). The decisions and the dispatch are in
//! `kernel::hv`.

use hcall::raw::sc1::Sc1;
use hcall::sysparm::CmoCharacteristics;
use hcall::{HcallError, Hypervisor, MppData, Phyp};
use kernel::hv::{Choice, Probe};
use powervm_sim::PoolModel;

use crate::drivers::virtio_pci_legacy::LegacyBalloon;
use crate::rtas::{self, CallError};

/// The hypervisor the kernel talks to: real `sc 1` hcalls, the pool model, or
/// the model backed by the legacy virtio balloon.
pub type Backend = kernel::hv::Backend<Sc1, LegacyBalloon>;

/// The hypervisor as the rest of the kernel uses it: every hcall under the
/// retry policy.
pub type Hv = hcall::Retrying<Backend, KernelClock>;

/// The timebase clock for the retry policy (waits spin: no background work).
pub struct KernelClock;

impl hcall::Clock for KernelClock {
    fn now_us(&self) -> u64 {
        crate::clock::now_us()
    }
    fn delay_us(&mut self, us: u64) {
        crate::clock::spin_us(us);
    }
}

/// What detection found.
pub struct Detected {
    /// The backend to use.
    pub backend: Backend,
    /// The CMO characteristics in force (the platform's, or the model's).
    pub cmo: CmoCharacteristics,
    /// `DesMem` from system parameter 20, in MB.
    pub des_mem_mb: Option<u64>,
}

/// The platform as detection sees it: RTAS and real hcalls.
struct Platform(Phyp<Sc1>);

impl Probe for Platform {
    type Error = CallError;
    fn system_parameter(&mut self, param: u32, area: &mut [u8]) -> Result<(), CallError> {
        rtas::get_system_parameter(param, area)
    }
    fn get_mpp(&mut self) -> Result<MppData, HcallError> {
        self.0.get_mpp()
    }
}

/// Detects CMO and builds the backend; `ram_bytes` sizes the model's page array.
pub fn detect(ram_bytes: u64) -> Result<Detected, alloc::string::String> {
    let mut probe = Platform(crate::mem::real_hypervisor());
    let d = kernel::hv::detect(&mut probe, ram_bytes);
    let backend = match d.choice {
        Choice::Phyp => Backend::Phyp(probe.0),
        Choice::Model => Backend::Model(alloc::boxed::Box::new(
            PoolModel::new(crate::mem::real_hypervisor(), ram_bytes)
                .map_err(|e| alloc::format!("cannot build the pool model: {e}"))?,
        )),
    };
    Ok(Detected {
        backend,
        cmo: d.cmo,
        des_mem_mb: d.des_mem_mb,
    })
}
