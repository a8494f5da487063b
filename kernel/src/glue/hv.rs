//! Choosing the hypervisor backend, as a real LPAR's kernel decides whether CMO is
//! there: RTAS `ibm,get-system-parameter` 44 (CMO characteristics), then H_GET_MPP.
//! With CMO the shim makes real hcalls (`phyp`); without it (QEMU) the pool model
//! answers the CMO calls (`model`). Everything else sees one [`Backend`] through
//! the [`Hypervisor`] trait and cannot tell which it is.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt::Write;
use hcall::model::PoolModel;
use hcall::raw::sc1::Sc1;
use hcall::sysparm::CmoCharacteristics;
use hcall::{
    CmoFaultStats, HcallError, Hypervisor, MppData, MppXData, PageState, Phyp, SetMppOutcome,
};

use kernel::virtio::{host_target_bytes, pfn_of, BalloonState};

use crate::drivers::virtio_balloon::LegacyBalloon;
use crate::rtas;

/// RTAS system parameter: CMO characteristics.
const SYSPARM_CMO: u32 = 44;
/// RTAS system parameter: SPLPAR characteristics (`DesMem`).
const SYSPARM_SPLPAR: u32 = 20;

/// The hypervisor the kernel talks to.
pub enum Backend {
    /// Real CMO hcalls through `sc 1`.
    Phyp(Phyp<Sc1>),
    /// The pool model answering the CMO hcalls; the rest goes to QEMU. With a
    /// virtio balloon, loaned pages really go back to the host.
    Model {
        /// The model.
        model: Box<PoolModel<Sc1>>,
        /// The device backing its loans, when QEMU has one.
        device: Option<Box<Backing>>,
    },
}

/// The virtio balloon behind the model: a page the model marks loaned is
/// inflated (in batches), a page leaving the loaned state is deflated before the
/// call returns; in host mode the host's `num_pages` sets the model's target.
pub struct Backing {
    dev: LegacyBalloon,
    state: BalloonState,
    /// The loan target comes from the host's `num_pages` (`hv host`).
    host_mode: bool,
    /// The last `num_pages` applied in host mode.
    host_pages: Option<u32>,
    /// The device failed once: it is no longer used (logged once).
    broken: bool,
}

impl Backing {
    fn check<E: core::fmt::Display>(&mut self, r: Result<(), E>) {
        if let Err(e) = r {
            log::error!("virtio-balloon: {e}; the device is no longer used");
            self.broken = true;
        }
    }

    /// Follows a page-state change the model accepted.
    fn page_changed(&mut self, addr: u64, was_loaned: bool, state: PageState) {
        if self.broken {
            return;
        }
        let Ok(pfn) = pfn_of(addr) else {
            return;
        };
        let r = match (was_loaned, state) {
            (false, PageState::Loaned) => self.state.inflate(&mut self.dev, pfn),
            (true, PageState::Active | PageState::Unused) => self.state.deflate(&mut self.dev, pfn),
            _ => Ok(()),
        };
        self.check(r);
    }

    fn flush(&mut self) {
        if !self.broken {
            let r = self.state.flush(&mut self.dev);
            self.check(r);
        }
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
        backend: Backend::Model {
            model: Box::new(model),
            device: None,
        },
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
            Backend::Model { model, .. } => Some(model),
            Backend::Phyp(_) => None,
        }
    }

    /// The model, read-only.
    pub fn model_ref(&self) -> Option<&PoolModel<Sc1>> {
        match self {
            Backend::Model { model, .. } => Some(model),
            Backend::Phyp(_) => None,
        }
    }

    /// Puts the virtio balloon behind the model, in host mode. Refused (`false`)
    /// on a real hypervisor.
    pub fn attach_balloon(&mut self, dev: LegacyBalloon) -> bool {
        match self {
            Backend::Model { device, .. } => {
                *device = Some(Box::new(Backing {
                    dev,
                    state: BalloonState::new(),
                    host_mode: true,
                    host_pages: None,
                    broken: false,
                }));
                true
            }
            Backend::Phyp(_) => false,
        }
    }

    /// Background work for the device: sends pending inflates (so `actual` is
    /// current), and in host mode applies a changed `num_pages` as the target.
    pub fn balloon_sync(&mut self) {
        let Backend::Model {
            model,
            device: Some(d),
        } = self
        else {
            return;
        };
        d.flush();
        if !d.host_mode || d.broken {
            return;
        }
        let pages = d.dev.num_pages();
        if d.host_pages == Some(pages) {
            return;
        }
        d.host_pages = Some(pages);
        let target = host_target_bytes(pages, model.self_view().logical);
        match model.set_target(Some(target)) {
            Ok(()) => log::info!(
                "virtio-balloon: the host asks for {pages} pages: loan target {} KiB",
                target / 1024
            ),
            Err(e) => log::warn!("virtio-balloon: host target {target}: {e}"),
        }
    }

    /// Runs `hv <words>`: `hv host` makes the host's `num_pages` the target;
    /// `hv target`/`hv auto` give the model the target back; `hv` alone adds the
    /// backing and the mode source to the model's rows.
    pub fn model_command(&mut self, words: &[&str], out: &mut String) -> Result<(), String> {
        let Backend::Model { model, device } = self else {
            return Err(String::from(
                "running on a real hypervisor: there is no model",
            ));
        };
        match words {
            ["host"] => {
                let d = device
                    .as_mut()
                    .ok_or_else(|| String::from("hv host needs a virtio-balloon device"))?;
                d.host_mode = true;
                d.host_pages = None;
                Ok(())
            }
            [] => {
                model
                    .command(words, out)
                    .map_err(|e| alloc::string::ToString::to_string(&e))?;
                render_backing(device.as_deref(), out);
                Ok(())
            }
            _ => {
                model
                    .command(words, out)
                    .map_err(|e| alloc::string::ToString::to_string(&e))?;
                if let (Some(d), ["target", ..] | ["auto"]) = (device.as_mut(), words) {
                    d.host_mode = false;
                }
                Ok(())
            }
        }
    }

    fn inner(&mut self) -> &mut dyn Hypervisor {
        match self {
            Backend::Phyp(p) => p,
            Backend::Model { model, .. } => &mut **model,
        }
    }

    fn inner_ref(&self) -> &dyn Hypervisor {
        match self {
            Backend::Phyp(p) => p,
            Backend::Model { model, .. } => &**model,
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
        match self {
            Backend::Phyp(p) => p.set_page_state(addr, state),
            Backend::Model { model, device } => {
                let was_loaned = matches!(model.page(addr), Some((PageState::Loaned, _)));
                model.set_page_state(addr, state)?;
                if let Some(d) = device {
                    d.page_changed(addr, was_loaned, state);
                }
                Ok(())
            }
        }
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
        if let Backend::Model {
            device: Some(d), ..
        } = self
        {
            d.flush();
        }
        self.inner().advance(now_us)
    }
}

/// The `hv` rows about the backing: `backing`, `mode_source`, and the device's
/// counters.
fn render_backing(d: Option<&Backing>, out: &mut String) {
    let Some(d) = d else {
        let _ = writeln!(out, "backing: none");
        let _ = writeln!(out, "mode_source: model");
        return;
    };
    let st = d.state.stats();
    let _ = writeln!(out, "backing: virtio-balloon");
    let _ = writeln!(
        out,
        "mode_source: {}",
        if d.host_mode { "host" } else { "model" }
    );
    let _ = writeln!(out, "device_broken: {}", u8::from(d.broken));
    let _ = writeln!(out, "device_num_pages: {}", d.dev.num_pages());
    let _ = writeln!(out, "device_actual: {}", d.state.inflated());
    let _ = writeln!(out, "device_pending: {}", d.state.pending());
    let _ = writeln!(out, "device_inflate_buffers: {}", st.inflate_buffers);
    let _ = writeln!(out, "device_deflate_buffers: {}", st.deflate_buffers);
    let _ = writeln!(out, "device_pages_inflated: {}", st.pages_inflated_total);
    let _ = writeln!(out, "device_pages_deflated: {}", st.pages_deflated_total);
    let _ = writeln!(out, "device_pending_withdrawn: {}", st.pending_withdrawn);
    let _ = writeln!(out, "device_errors: {}", st.errors);
}
