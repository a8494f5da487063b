//! Dispatch: the one [`Hypervisor`] the kernel holds, whichever backend
//! [`super::detect`] chose: real hcalls ([`Backend::Phyp`]), the pool model alone
//! ([`Backend::Model`]), or the model backed by a virtio balloon
//! ([`Backend::Backed`], the [`VirtioBacked`] decorator). Everything else sees the
//! trait and cannot tell which it is; only the `hv` command and the main loop's
//! device sync reach past it.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use hcall::{
    Backend as HvBackend, BackendKind, BatchError, CmoFaultStats, HcallError, Hypervisor,
    PageState, Phyp, RawHcall, Simulation,
};
use powervm_sim::{HvCommand, PoolModel};

use super::virtio_backed::{render_unbacked, TargetSource, VirtioBacked};
use crate::virtio_balloon::stats::MemoryStats;
use crate::virtio_balloon::BalloonTransport;

/// The hypervisor the kernel talks to, over the raw hcall path `R`, with a
/// balloon device of type `D` when one backs the model.
pub enum Backend<R: RawHcall, D: BalloonTransport> {
    /// Real CMO hcalls.
    Phyp(Phyp<R>),
    /// The pool model answering the CMO hcalls; the rest goes to `R`.
    Model(Box<PoolModel<R>>),
    /// The pool model, its loans really handed to the host by a virtio balloon.
    Backed(Box<VirtioBacked<PoolModel<R>, D>>),
}

impl<R: RawHcall, D: BalloonTransport> Backend<R, D> {
    /// The model, when there is one, to change it.
    pub fn model_mut(&mut self) -> Option<&mut PoolModel<R>> {
        match self {
            Backend::Phyp(_) => None,
            Backend::Model(m) => Some(m),
            Backend::Backed(b) => Some(b.inner_mut()),
        }
    }

    /// The model, when there is one.
    pub fn model(&self) -> Option<&PoolModel<R>> {
        match self {
            Backend::Phyp(_) => None,
            Backend::Model(m) => Some(m),
            Backend::Backed(b) => Some(b.inner()),
        }
    }

    /// True when a balloon device backs the model and the host's request sets
    /// the target (`hv host`).
    pub fn follows_host(&self) -> bool {
        matches!(self, Backend::Backed(b) if b.source() == TargetSource::Host)
    }

    /// True when the backend takes a balloon device ([`Backend::with_balloon`]):
    /// the pool model alone. Boot probes for the device only then; a real
    /// hypervisor's loans go through H_PAGE_INIT and never to a device, and a
    /// model already backed takes no second one.
    pub fn wants_balloon(&self) -> bool {
        matches!(self, Backend::Model(_))
    }

    /// Puts the balloon `dev` behind the model, taking the target from the host.
    /// Refused (the backend and the device come back unchanged) unless the backend
    /// is the model alone.
    pub fn with_balloon(self, dev: D) -> Result<Self, (Self, D)> {
        match self {
            Backend::Model(m) => Ok(Backend::Backed(Box::new(VirtioBacked::new(*m, dev)))),
            other => Err((other, dev)),
        }
    }

    /// The balloon device while it works (free page reporting goes through
    /// it); `None` without one or once it failed.
    pub fn balloon_device(&mut self) -> Option<&mut D> {
        match self {
            Backend::Backed(b) if !b.is_broken() => Some(b.device_mut()),
            _ => None,
        }
    }

    /// The balloon device while it works, read-only.
    pub fn balloon_device_ref(&self) -> Option<&D> {
        match self {
            Backend::Backed(b) if !b.is_broken() => Some(b.device()),
            _ => None,
        }
    }

    /// Background work for the device (see [`VirtioBacked::sync`]); nothing
    /// without one.
    pub fn balloon_sync(&mut self) {
        if let Backend::Backed(b) = self {
            b.sync();
        }
    }

    /// Reports `figures()` to the host when the device asks for statistics
    /// (see [`VirtioBacked::report_stats`]); nothing without a device.
    pub fn balloon_stats(&mut self, figures: impl FnOnce() -> MemoryStats) {
        if let Backend::Backed(b) = self {
            b.report_stats(figures);
        }
    }

    /// Applies the boot argument `hv.<setting>=<value>` to the pool model.
    /// Refused on a real hypervisor, for an unknown setting and for a bad
    /// value; a refused one changes nothing.
    pub fn boot_setting(&mut self, setting: &str, value: &str) -> Result<(), String> {
        if self.model().is_none() {
            return Err(String::from(
                "hv.* needs the pool model (this platform has real CMO)",
            ));
        }
        let cmd = HvCommand::from_boot_arg(setting, value)
            .ok_or_else(|| alloc::format!("unknown parameter `hv.{setting}`"))?
            .map_err(|e| e.to_string())?;
        self.model_command(&cmd, &mut String::new())
    }

    /// Runs a parsed `hv` command: `hv host` makes the host's `num_pages` the
    /// target (only with a balloon); `hv target`/`hv auto` give the model the
    /// target back; `hv` alone adds the backing and the mode source to the
    /// model's rows. A refused command changes nothing.
    pub fn model_command(&mut self, cmd: &HvCommand<'_>, out: &mut String) -> Result<(), String> {
        match self {
            Backend::Phyp(_) => Err(String::from(
                "running on a real hypervisor: there is no model",
            )),
            Backend::Model(m) => {
                m.apply(cmd, out).map_err(|e| e.to_string())?;
                if *cmd == HvCommand::Show {
                    render_unbacked(out);
                }
                Ok(())
            }
            Backend::Backed(b) => {
                if *cmd == HvCommand::Host {
                    b.follow_host();
                    return Ok(());
                }
                b.inner_mut().apply(cmd, out).map_err(|e| e.to_string())?;
                match cmd {
                    HvCommand::Show => b.render(out),
                    HvCommand::Target(_) | HvCommand::Auto => b.follow_model(),
                    _ => {}
                }
                Ok(())
            }
        }
    }

    fn inner(&mut self) -> &mut dyn HvBackend {
        match self {
            Backend::Phyp(p) => p,
            Backend::Model(m) => &mut **m,
            Backend::Backed(b) => &mut **b,
        }
    }

    fn inner_ref(&self) -> &dyn HvBackend {
        match self {
            Backend::Phyp(p) => p,
            Backend::Model(m) => &**m,
            Backend::Backed(b) => &**b,
        }
    }
}

impl<R: RawHcall, D: BalloonTransport> Hypervisor for Backend<R, D> {
    hcall::hypervisor_calls!(forward inner());

    fn set_page_state(&mut self, addr: u64, state: PageState) -> Result<(), HcallError> {
        self.inner().set_page_state(addr, state)
    }

    fn set_page_states(&mut self, addrs: &[u64], state: PageState) -> Result<(), BatchError> {
        self.inner().set_page_states(addrs, state)
    }
}

impl<R: RawHcall, D: BalloonTransport> Simulation for Backend<R, D> {
    fn kind(&self) -> BackendKind {
        self.inner_ref().kind()
    }
    fn note_access(&mut self, addr: u64) {
        self.inner().note_access(addr)
    }
    fn cmo_faults(&self) -> Option<CmoFaultStats> {
        self.inner_ref().cmo_faults()
    }
    fn advance(&mut self, now_us: u64) {
        self.inner().advance(now_us)
    }
    fn wait_report(&mut self) -> Option<bool> {
        self.inner().wait_report()
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // raw-call fakes that touch no memory
mod tests {
    use super::*;
    use crate::virtio_balloon::Queue;
    use hcall::HStatus;

    /// `Phyp` over one of this module's fakes.
    fn phyp<R: RawHcall>(raw: R) -> Phyp<R> {
        // SAFETY: the fakes below answer from registers and touch no memory,
        // so no address passed through can matter.
        unsafe { Phyp::new(raw) }
    }

    /// QEMU as the model sees it: no CMO hcall, everything else succeeds.
    struct Qemu;
    impl RawHcall for Qemu {
        unsafe fn hcall(&mut self, opcode: u64, _: &[u64]) -> (HStatus, [u64; 9]) {
            let st = if opcode == hcall::opcodes::H_GET_MPP {
                HStatus::Function
            } else {
                HStatus::Success
            };
            (st, [0; 9])
        }
    }

    /// A device that takes every buffer.
    #[derive(Default)]
    struct Dev {
        inflated: u32,
    }
    impl BalloonTransport for Dev {
        type Error = &'static str;
        fn send(&mut self, q: Queue, pfns: &[u32]) -> Result<(), &'static str> {
            let n = u32::try_from(pfns.len()).unwrap();
            match q {
                Queue::Inflate => self.inflated += n,
                Queue::Deflate => self.inflated -= n,
            }
            Ok(())
        }
        fn write_actual(&mut self, _: u32) {}
        fn num_pages(&self) -> u32 {
            256
        }
    }

    type B = Backend<Qemu, Dev>;

    fn model() -> B {
        Backend::Model(Box::new(PoolModel::new(phyp(Qemu), 64 << 20).unwrap()))
    }

    /// A raw hcall path that records the opcodes and succeeds.
    #[derive(Default)]
    struct Opcodes(alloc::vec::Vec<u64>);
    impl RawHcall for Opcodes {
        unsafe fn hcall(&mut self, opcode: u64, _: &[u64]) -> (HStatus, [u64; 9]) {
            self.0.push(opcode);
            (HStatus::Success, [0; 9])
        }
    }

    #[test]
    fn every_call_reaches_the_real_hypervisor() {
        use hcall::opcodes::*;
        let mut raw = Opcodes::default();
        let mut b: Backend<&mut Opcodes, Dev> = Backend::Phyp(phyp(&mut raw));
        hcall::fake::call_every_method(&mut b);
        assert_eq!(b.kind(), BackendKind::Phyp);
        assert_eq!(
            b.cmo_faults(),
            None,
            "a real hypervisor's counters are in the VPA"
        );
        drop(b);
        // In `EVERY_METHOD`'s order: the listed calls (H_PAGE_INIT for
        // `zero_page`), then one page state and a batch of two.
        let expect: alloc::vec::Vec<u64> = [H_GET_MPP, H_GET_MPP_X, H_SET_MPP]
            .into_iter()
            .chain([H_PAGE_INIT, H_PUT_TCE, H_GET_TCE])
            .chain([H_PAGE_INIT; 3])
            .collect();
        assert_eq!(raw.0, expect);
    }

    #[test]
    fn every_call_reaches_the_model() {
        let mut raw = Opcodes::default();
        let mut b: Backend<&mut Opcodes, Dev> =
            Backend::Model(Box::new(PoolModel::new(phyp(&mut raw), 64 << 20).unwrap()));
        hcall::fake::call_every_method(&mut b);
        assert_eq!(b.kind(), BackendKind::Model);
        let m = b.model().unwrap();
        assert_eq!(
            m.loaned_bytes(),
            3 * 4096,
            "the page states reached the model"
        );
        b.note_access(0x10_0000);
        assert_eq!(b.model().unwrap().stats().loaned_touches, 1);
        let steps = b.model().unwrap().stats().steps;
        b.advance(1_000 + 10 * powervm_sim::DEFAULT_STEP_US);
        assert_eq!(b.model().unwrap().stats().steps, steps + 10);
        assert!(b.cmo_faults().is_some(), "the model counts its own faults");
        drop(b);
        use hcall::opcodes::*;
        assert_eq!(
            raw.0,
            [H_PAGE_INIT, H_PUT_TCE, H_GET_TCE],
            "only these pass through"
        );
    }

    #[test]
    fn the_balloon_goes_behind_the_model_only() {
        let phyp: B = Backend::Phyp(phyp(Qemu));
        assert!(!phyp.wants_balloon());
        assert!(model().wants_balloon());
        let Err((phyp, _)) = phyp.with_balloon(Dev::default()) else {
            panic!("a real hypervisor took a balloon");
        };
        assert!(matches!(phyp, Backend::Phyp(_)));
        let b = model().with_balloon(Dev::default()).ok().unwrap();
        assert!(matches!(b, Backend::Backed(_)));
        assert_eq!(b.kind(), BackendKind::Model);
        assert!(!b.wants_balloon(), "a backed model takes no second device");
        let Err((b, _)) = b.with_balloon(Dev::default()) else {
            panic!("a second balloon was taken");
        };
        assert!(b.model().is_some());
    }

    #[test]
    fn hv_boot_settings_reach_the_model_only() {
        let mut phyp: B = Backend::Phyp(phyp(Qemu));
        assert_eq!(
            phyp.boot_setting("step_us", "20000"),
            Err(String::from(
                "hv.* needs the pool model (this platform has real CMO)"
            ))
        );
        let mut m = model();
        m.boot_setting("step_us", "20000").unwrap();
        assert_eq!(m.model().unwrap().step_us(), 20_000);
        assert_eq!(
            m.boot_setting("colour", "blue"),
            Err(String::from("unknown parameter `hv.colour`"))
        );
        assert!(m.boot_setting("mode", "sideways").is_err());
        assert_eq!(m.model().unwrap().step_us(), 20_000, "nothing changed");
    }

    #[test]
    fn page_states_reach_the_device_through_the_dispatch() {
        let mut b = model().with_balloon(Dev::default()).ok().unwrap();
        for p in 0..256u64 {
            b.set_page_state(0x10_0000 + p * 4096, PageState::Loaned)
                .unwrap();
        }
        b.set_page_state(0x10_0000, PageState::Active).unwrap();
        let Backend::Backed(d) = &b else {
            panic!("not backed");
        };
        assert_eq!(d.device().inflated, 255);
        assert_eq!(b.model().unwrap().loaned_bytes(), 255 * 4096);
    }

    #[test]
    fn hv_words_switch_the_target_source() {
        let mut m = model();
        let mut out = String::new();
        assert_eq!(
            m.model_command(&HvCommand::Host, &mut out).unwrap_err(),
            "hv host needs a virtio-balloon device"
        );
        m.model_command(&HvCommand::Show, &mut out).unwrap();
        assert!(out.contains("backing: none\n"));
        let mut b = m.with_balloon(Dev::default()).ok().unwrap();
        let rows = |b: &mut B| {
            let mut out = String::new();
            b.model_command(&HvCommand::Show, &mut out).unwrap();
            out
        };
        assert!(rows(&mut b).contains("mode_source: host\n"));
        b.model_command(&HvCommand::Target(1 << 20), &mut out)
            .unwrap();
        assert!(rows(&mut b).contains("mode_source: model\n"));
        b.model_command(&HvCommand::Host, &mut out).unwrap();
        assert!(rows(&mut b).contains("mode_source: host\n"));
        b.model_command(&HvCommand::Auto, &mut out).unwrap();
        assert!(rows(&mut b).contains("mode_source: model\n"));
        // A refused command changes nothing, the source included.
        b.model_command(&HvCommand::Host, &mut out).unwrap();
        assert!(b
            .model_command(&HvCommand::Target(1 << 40), &mut out)
            .is_err());
        assert!(rows(&mut b).contains("mode_source: host\n"));
        let mut p: B = Backend::Phyp(phyp(Qemu));
        assert!(p
            .model_command(&HvCommand::Show, &mut out)
            .unwrap_err()
            .contains("real hypervisor"));
    }
}
