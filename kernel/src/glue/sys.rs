//! The kernel's state, owned by the boot CPU's main loop and lent to shell
//! commands and background work: plain `&mut` borrowing is the lock, since the
//! other CPUs touch none of it except during `stress`, which puts the memory
//! manager behind a lock for its run (docs/smp.md).
//!
//! The data flows one way (docs/architecture.md): the main loop calls [`System::background`],
//! which advances the hypervisor model's clock and calls the balloon's step; the
//! step reads the loan request through the shim, computes the target, takes or
//! gives frames, marks their page state through the shim and updates its stats.
//! The shell only reads stats and sets parameters.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use cmm::percpu::OnCpu;
use cmm::vio::VioBus;
use cmm::{CmmError, FrameCache, Mm, Owner, Params};
use hcall::sysparm::CmoCharacteristics;
use hcall::{Hypervisor, Simulation};
use kernel::devtree::Platform;
use kernel::timer::Timers;
use kernel::virtio_balloon::stats::MemoryStats;

use crate::hv::{self, Hv, KernelClock};
use crate::mem::{self, PhysMemory};
use crate::wait::Wake;
use crate::{clock, console};

/// Free frames hinted Unused per background call while the walk after boot runs
/// (about 0.2 ms of model calls under QEMU; a real LPAR makes as many hcalls).
const HINTS_PER_CALL: u64 = 1024;

/// Linear-map pages entered per background call after boot (about 1 ms of
/// `H_ENTER` under QEMU) until the map is complete (`kernel::mmu::lazy`).
const ENTRIES_PER_CALL: usize = 1024;

/// Free-page reports started per background call (each up to the queue's
/// size in 2 MiB blocks: 64 MiB with QEMU's 32-entry queue; two blocks on the
/// hint transport), so a console command waits for one report at most.
const REPORTS_PER_CALL: u64 = 1;

/// Time spent in balloon rounds that moved pages, cumulative (ns): the
/// guest's own work in them plus the device's (`hv` row `balloon_round_ns`;
/// `make bench` splits a QMP step with it).
pub static ROUND_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// How the kernel was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMode {
    /// A flattened device tree in r3 (the boot ROM).
    Fdt,
    /// The Open Firmware client interface in r5 (SLOF, VOF, PowerVM).
    Of,
}

impl BootMode {
    /// `fdt` or `of`, as `version` prints it.
    pub fn name(self) -> &'static str {
        match self {
            BootMode::Fdt => "fdt",
            BootMode::Of => "of",
        }
    }
}

/// Everything the shell and the background work share.
pub struct System {
    /// Facts from the device tree.
    pub platform: Platform,
    /// How we booted.
    pub boot_mode: BootMode,
    /// The device tree blob (a copy in the heap).
    pub fdt_blob: Vec<u8>,
    /// Boot arguments that were applied, as given.
    pub bootargs: Vec<(String, String)>,
    /// The hypervisor (real or modelled).
    pub hv: Hv,
    /// CMO characteristics in force.
    pub cmo: CmoCharacteristics,
    /// `DesMem` in MB.
    pub des_mem_mb: Option<u64>,
    /// Frames, page hints, the balloon, the OOM chain and their stats.
    pub mm: Mm,
    /// Every CPU's frame cache, by CPU index: every frame the kernel takes or
    /// gives back goes through the running CPU's (docs/smp.md). Lent with the
    /// memory manager; a `stress` run puts each behind its own lock.
    pub caches: Vec<FrameCache>,
    /// Page contents.
    pub mem: PhysMemory,
    /// VIO entitled-memory accounting.
    pub vio: VioBus,
    /// Print a trace line after every balloon round.
    pub trace: bool,
    /// Everything that waits: see `wait`.
    pub timers: Timers<Wake>,
}

/// The background work on the memory manager: the model's time steps, the
/// balloon's round when due (calling `reach` to drain the per-CPU frame caches
/// into the table only when the round needs their frames), a slice of the hints
/// after boot, the virtio balloon's bookkeeping. Returns the round's report and
/// whether hinting left work that should go on at once.
pub fn run_background(
    mm: &mut Mm,
    hv: &mut Hv,
    mem: &mut PhysMemory,
    reach: &mut dyn FnMut(&mut Mm, &mut dyn hcall::Backend) -> u64,
) -> (cmm::StepReport, bool) {
    let now_us = clock::now_us();
    hv.advance(now_us);
    let t0 = clock::ticks();
    // The virtio balloon's notifies go to a helper CPU while the round runs
    // (docs/virtio-balloon.md §5); the sync drains what is in flight.
    let r = crate::glue::drivers::virtio_pci_legacy::overlapped(|| {
        let r = mm.step_reaching_caches(now_us / 1000, reach, hv, mem);
        if r.pages_loaned > 0 || r.pages_returned > 0 {
            // The round moved pages: the host sees `actual` now, before the
            // rest of the background work (a QMP balloon step ends when it
            // does).
            hv.inner_mut().balloon_sync();
        }
        // A round that moved nothing sent nothing; the helper made every
        // notify asked for before it stops, so whatever is still in flight
        // is the device's to use and the next drain waits for it.
        r
    });
    if r.pages_loaned > 0 || r.pages_returned > 0 {
        let ns = clock::ticks_to_ns(clock::ticks().wrapping_sub(t0));
        ROUND_NS.fetch_add(ns, core::sync::atomic::Ordering::Relaxed);
    }
    let hint = mm.hint_unused_step(hv, HINTS_PER_CALL);
    if hint.finished {
        log::info!("free frames hinted unused");
    }
    let mut more = hint.hinted > 0 && !hint.finished;
    more |= crate::glue::mmu::enter_pending(ENTRIES_PER_CALL);
    // One reporting decision, two transports: the virtio reporting queue when
    // the device took the feature, page-usage hints (H_PAGE_INIT Unused)
    // otherwise (docs/free-page-reporting.md).
    match hv.inner_mut().balloon_device() {
        Some(dev) if dev.reporting_on() => more |= mm.report_step(dev, REPORTS_PER_CALL).more,
        _ => more |= mm.report_hints_step(hv, REPORTS_PER_CALL).more,
    }
    hv.inner_mut().balloon_sync();
    (r, more)
}

impl System {
    /// Builds the state after the device tree is read: detects the hypervisor,
    /// probes the drivers (`drivers::DRIVERS`, which attach their interrupts),
    /// builds the frame table and the balloon, marks free frames unused, and sets
    /// up the VIO bus.
    pub fn new(
        platform: Platform,
        sources: &kernel::xics::Sources,
        boot_mode: BootMode,
        fdt_blob: Vec<u8>,
    ) -> Result<Self, String> {
        let (frames, phys) = mem::frame_table(&platform.memory, &platform.reserved)
            .map_err(|e| alloc::format!("frame table: {e}"))?;
        let det = hv::detect(platform.ram_top())?;
        let mut hv = det.backend;
        let mut probe = crate::drivers::Probe {
            platform: &platform,
            sources,
            balloon_wanted: hv.wants_balloon(),
            balloon: None,
        };
        crate::drivers::probe_all(&mut probe);
        if let Some(dev) = probe.balloon {
            hv = match hv.with_balloon(dev) {
                Ok(backed) => {
                    log::info!("virtio-balloon backs the pool model's loans (hv mode: host)");
                    backed
                }
                Err((unchanged, _)) => {
                    log::warn!("virtio-balloon: the backend is not the pool model; not used");
                    unchanged
                }
            };
        }
        let mut hv = hcall::Retrying::new(hv, KernelClock);
        let mm = Mm::new(frames, Params::default());
        let c = mm.frames().counts();
        log::info!(
            "{} frames managed ({} MiB); free ones are hinted unused in the background",
            c.free + c.used,
            (c.free + c.used) >> 8,
        );
        let devices = kernel::hv::compose::vio_devices(&platform.vdevices);
        let entitled = hv.get_mpp().map(|m| m.entitled_mem);
        let (vio, warnings) = kernel::hv::compose::vio_bus(entitled, devices)?;
        for w in warnings {
            log::warn!("{w}");
        }
        Ok(System {
            platform,
            boot_mode,
            fdt_blob,
            bootargs: Vec::new(),
            hv,
            cmo: det.cmo,
            des_mem_mb: det.des_mem_mb,
            mm,
            caches: (0..crate::percpu::MAX_CPUS)
                .map(|_| FrameCache::new())
                .collect(),
            mem: phys,
            vio,
            trace: false,
            timers: Timers::new(),
        })
    }

    /// The CMO fault counters: a real hypervisor keeps them in the VPA
    /// (docs/interrupts.md); the model counts its own.
    pub fn cmo_faults(&self) -> hcall::CmoFaultStats {
        self.hv
            .cmo_faults()
            .or_else(crate::idle::cmo_faults)
            .unwrap_or_default()
    }

    /// Whether free pages are reported to the host (the balloon device
    /// negotiated free page reporting and it works).
    pub fn reporting_on(&self) -> bool {
        self.hv
            .inner()
            .balloon_device_ref()
            .is_some_and(|d| d.reporting_on())
    }

    /// Work done while the shell waits for input, during `sleep` and `cmm wait`:
    /// the model's time steps, then the balloon's round when it is due. Returns
    /// true when it left work that should go on at once (hinting free frames
    /// unused is done in slices): the idle loop must not cede then.
    pub fn background(&mut self) -> bool {
        let now_us = clock::now_us();
        let caches = &mut self.caches;
        let mut reach =
            |mm: &mut Mm, hv: &mut dyn hcall::Backend| mm.drain_caches(caches.iter_mut(), hv);
        let (r, more) = run_background(&mut self.mm, &mut self.hv, &mut self.mem, &mut reach);
        let faults = self.cmo_faults().faults;
        let ram = self.platform.ram_bytes();
        let mm = &self.mm;
        let cached = cmm::percpu::cached_free(&self.caches);
        self.hv.inner_mut().balloon_stats(|| {
            // Frames free in the CPUs' caches are free memory to the host too.
            let mut counts = mm.frames().counts();
            counts.free = counts.free.saturating_add(cached);
            counts.used = counts.used.saturating_sub(cached);
            MemoryStats::from_kernel(ram, &counts, mm.stats(), faults)
        });
        if r.shortfall_changed {
            match r.shortfall {
                Some(why) => log::warn!("cmm: loaning stopped short: {why}"),
                None => log::info!("cmm: loaning back on target"),
            }
        }
        if r.polled && self.trace {
            self.print_trace(now_us);
        }
        more
    }

    /// Prints one trace line (held back like log lines while a command is typed).
    pub fn print_trace(&self, now_us: u64) {
        let mut line = String::new();
        let other_kb = self
            .hv
            .inner()
            .model()
            .map(|m| m.others_allotment_bytes() / 1024);
        let _ = cmm::render::write_trace(&mut line, now_us, &self.mm, other_kb);
        console::log_line(format_args!("{line}"));
    }

    /// Applies one typed boot argument: a balloon parameter, a pool-model
    /// setting (only with the model), the log level.
    pub fn apply(&mut self, arg: kernel::text::bootargs::Late<'_>) -> Result<(), String> {
        use kernel::text::bootargs::Late;
        match arg {
            Late::Cmm { param, value } => self
                .mm
                .set_param(param, value, &mut self.hv, &mut self.mem)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Late::Hv { setting, value } => self.hv.inner_mut().boot_setting(setting, value),
            Late::Log(level) => {
                log::set_max_level(level);
                Ok(())
            }
        }
    }

    /// Free frames sitting in the CPUs' caches (free memory in `meminfo`).
    pub fn cached_free(&self) -> u64 {
        cmm::percpu::cached_free(&self.caches)
    }

    /// Allocates one kernel page through the running CPU's frame cache (with
    /// the other caches and the OOM chain behind it).
    pub fn alloc_kernel_page(&mut self) -> Option<u64> {
        let cpu = OnCpu {
            caches: &mut self.caches,
            me: crate::percpu::current(),
        };
        self.mm
            .alloc_page_cached(cpu, Owner::Kernel, &mut self.hv, &mut self.mem)
            .ok()
    }

    /// Gives a page back through the running CPU's frame cache.
    pub fn free_kernel_page(&mut self, addr: u64) -> Result<Owner, CmmError> {
        let cpu = OnCpu {
            caches: &mut self.caches,
            me: crate::percpu::current(),
        };
        self.mm.free_page_cached(cpu, addr, &mut self.hv)
    }
}
