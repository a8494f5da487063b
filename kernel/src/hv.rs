//! Choosing the hypervisor backend, as a real LPAR's kernel decides whether CMO is
//! there: RTAS `ibm,get-system-parameter` 44 (CMO characteristics), then H_GET_MPP.
//! With CMO the shim makes real hcalls (`phyp`); without it (QEMU) the pool model
//! answers the CMO calls (`model`). Everything else sees one [`Backend`] through
//! the [`Hypervisor`] trait and cannot tell which it is.

use alloc::boxed::Box;
use hcall::model::PoolModel;
use hcall::raw::sc1::Sc1;
use hcall::sysparm::CmoCharacteristics;
use hcall::{
    CmoFaultStats, HcallError, Hypervisor, MppData, MppXData, PageState, Phyp, SetMppOutcome,
};

use crate::rtas;

/// RTAS system parameter: CMO characteristics.
const SYSPARM_CMO: u32 = 44;
/// RTAS system parameter: SPLPAR characteristics (`DesMem`).
const SYSPARM_SPLPAR: u32 = 20;

/// The hypervisor the kernel talks to.
pub enum Backend {
    /// Real CMO hcalls through `sc 1`.
    Phyp(Phyp<Sc1>),
    /// The pool model answering the CMO hcalls; the rest goes to QEMU.
    Model(Box<PoolModel<Sc1>>),
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

fn sc1() -> Sc1 {
    // SAFETY: the kernel runs in supervisor state under a PAPR hypervisor.
    unsafe { Sc1::new() }
}

/// Detects CMO and builds the backend; `ram_bytes` sizes the model's page array.
pub fn detect(ram_bytes: u64) -> Result<Detected, &'static str> {
    let mut area = [0u8; 1026];
    let des_mem_mb = match rtas::get_system_parameter(SYSPARM_SPLPAR, &mut area) {
        Ok(()) => hcall::sysparm::parse_des_mem(&area).ok().flatten(),
        Err(_) => None,
    };
    let platform_cmo = match rtas::get_system_parameter(SYSPARM_CMO, &mut area) {
        Ok(()) => match CmoCharacteristics::parse(&area) {
            Ok(c) => Some(c),
            Err(e) => {
                log::warn!("system parameter 44 is malformed: {e}");
                None
            }
        },
        Err(e) => {
            log::info!("system parameter 44 (CMO characteristics): {e}");
            None
        }
    };
    if let Some(cmo) = platform_cmo.filter(CmoCharacteristics::enabled) {
        let mut phyp = Phyp::new(sc1());
        match phyp.get_mpp() {
            Ok(m) => {
                log::info!(
                    "CMO enabled by the platform (page size {}, primary PSP {}): entitled {} bytes, weight {}",
                    cmo.page_size(),
                    cmo.primary_psp,
                    m.entitled_mem,
                    m.mem_weight
                );
                return Ok(Detected {
                    backend: Backend::Phyp(phyp),
                    cmo,
                    des_mem_mb,
                });
            }
            Err(e) => log::warn!("system parameter 44 says CMO, but {e}"),
        }
    }
    log::info!("no CMO on this platform: the pool model answers the CMO hcalls");
    let model = PoolModel::new(sc1(), ram_bytes).map_err(|_| "cannot build the pool model")?;
    Ok(Detected {
        backend: Backend::Model(Box::new(model)),
        cmo: CmoCharacteristics {
            page_shift: 12,
            primary_psp: 1,
            secondary_psp: -1,
        },
        des_mem_mb: des_mem_mb.or(Some(ram_bytes >> 20)),
    })
}

impl Backend {
    /// The model, when it is the backend.
    pub fn model(&mut self) -> Option<&mut PoolModel<Sc1>> {
        match self {
            Backend::Model(m) => Some(m),
            Backend::Phyp(_) => None,
        }
    }

    /// The model, read-only.
    pub fn model_ref(&self) -> Option<&PoolModel<Sc1>> {
        match self {
            Backend::Model(m) => Some(m),
            Backend::Phyp(_) => None,
        }
    }

    fn inner(&mut self) -> &mut dyn Hypervisor {
        match self {
            Backend::Phyp(p) => p,
            Backend::Model(m) => &mut **m,
        }
    }

    fn inner_ref(&self) -> &dyn Hypervisor {
        match self {
            Backend::Phyp(p) => p,
            Backend::Model(m) => &**m,
        }
    }
}

impl Hypervisor for Backend {
    fn get_mpp(&mut self) -> Result<MppData, HcallError> {
        self.inner().get_mpp()
    }
    fn get_mpp_x(&mut self) -> Result<MppXData, HcallError> {
        self.inner().get_mpp_x()
    }
    fn set_mpp(&mut self, entitled: u64, weight: u8) -> Result<SetMppOutcome, HcallError> {
        self.inner().set_mpp(entitled, weight)
    }
    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        self.inner().set_page_state(addr, state)
    }
    fn zero_page(&mut self, addr: u64) -> Result<(), HcallError> {
        self.inner().zero_page(addr)
    }
    fn put_tce(&mut self, liobn: u32, ioba: u64, tce: u64) -> Result<(), HcallError> {
        self.inner().put_tce(liobn, ioba, tce)
    }
    fn get_tce(&mut self, liobn: u32, ioba: u64) -> Result<u64, HcallError> {
        self.inner().get_tce(liobn, ioba)
    }
    fn note_access(&mut self, addr: u64) {
        self.inner().note_access(addr)
    }
    fn backend_name(&self) -> &'static str {
        self.inner_ref().backend_name()
    }
    fn cmo_faults(&self) -> CmoFaultStats {
        self.inner_ref().cmo_faults()
    }
    fn advance(&mut self, now_us: u64) {
        self.inner().advance(now_us)
    }
}
