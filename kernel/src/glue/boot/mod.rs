//! Boot: from the entry point to the shell, in the order of the library's plan
//! (`kernel::boot::Plan`, host-tested): which steps run for the way the firmware
//! entered the kernel (a tree in r3, or Open Firmware in r5, which must be done
//! with before the vectors go where the firmware lives), which `mmu=off` skips,
//! and which failures end the boot. Here each step's work on the machine.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hcall::endian::ByteOrder;
use kernel::boot::{Entry, OnFailure, Plan, Step};
use kernel::devtree::{self, Platform};
use kernel::text::bootargs::{self, Late};
use kernel::xics::Sources;

use crate::sys::{BootMode, System};
use crate::{
    arch, clock, console, drivers, exit, heap, idle, irq, mem, of, percpu, println, rtas, shell,
};

/// What the steps hand on to the next ones.
struct Boot {
    r3: u64,
    prom: Option<of::Prom>,
    blob: Vec<u8>,
    mode: BootMode,
    /// The boot arguments as the tree gives them.
    args: String,
    platform: Option<Platform>,
    sources: Sources,
    boot_server: u32,
    sys: Option<System>,
}

/// Called by `arch::entry`'s `kernel_entry` with r3 as the firmware left it and
/// the Open Firmware client interface, when r5 named one.
pub fn start(r3: u64, prom: Option<of::Prom>) -> ! {
    let entry = Entry::from_registers(mem::looks_like_fdt(r3), prom.is_some());
    clock::init(0);
    // CPU index 0 and its interrupt stack, before any vector can be taken.
    percpu::enter(0, 0);
    let mut b = Boot {
        r3,
        prom,
        blob: Vec::new(),
        mode: BootMode::Fdt,
        args: String::new(),
        platform: None,
        sources: Sources::default(),
        boot_server: 0,
        sys: None,
    };
    let mut plan = Plan::new(entry);
    while let Some(step) = plan.next_step() {
        if let Err(e) = b.run(step, &mut plan) {
            match plan.failed(step) {
                OnFailure::Fatal(why) => {
                    log::error!("{e}");
                    fatal(why)
                }
                OnFailure::GoOn(then) => log::warn!("{e}; {then}"),
            }
        }
    }
    match b.sys.as_mut() {
        Some(sys) => shell::run(sys),
        None => fatal("the boot plan ended without the kernel's state"),
    }
}

impl Boot {
    /// Carries out one step of the plan; the error is logged as the plan says.
    /// Errors borrow where they can: the first steps run before the heap exists.
    fn run(&mut self, step: Step, plan: &mut Plan) -> Result<(), Cow<'static, str>> {
        match step {
            Step::Vectors => {
                if self.mode == BootMode::Of {
                    // The firmware may have used the scratch registers.
                    percpu::enter(0, 0);
                }
                interrupt_byte_order()?;
                arch::exceptions::install();
            }
            Step::Heap => heap::init(),
            Step::Logger => console::logger::init(log::LevelFilter::Info),
            Step::CopyTree => self.blob = mem::copy_fdt(self.r3)?,
            Step::FirmwareTree => {
                let prom = self.prom.take().ok_or("no client interface")?;
                self.blob = of::boot(prom).map_err(|e| alloc::format!("Open Firmware: {e}"))?;
                self.mode = BootMode::Of;
            }
            Step::NoTree => return Err("no device tree in r3 and no client interface in r5".into()),
            Step::ReadTree => self.read_tree(plan)?,
            Step::Rma => {
                let plan = bootargs::plan(&self.args);
                let memory = self.platform.as_ref().map_or(&[][..], |p| &p.memory[..]);
                let rma = crate::glue::rma::init(memory, plan.rma)?;
                log::info!(
                    "RMA {} MiB (memory@0: {} MiB); everything touched in real mode fits",
                    rma.size >> 20,
                    rma.firmware_size >> 20
                );
            }
            Step::Translation => {
                let fdt = devtree::Fdt::new(&self.blob).map_err(|e| alloc::format!("{e}"))?;
                let memory = self.platform.as_ref().map_or(&[][..], |p| &p.memory[..]);
                crate::glue::mmu::init(&fdt, memory)?;
            }
            Step::InterruptController => {
                let cpus = self.platform.as_ref().map_or(&[][..], |p| &p.cpus[..]);
                self.boot_server = boot_server(cpus);
                irq::init(&self.sources, self.boot_server)
                    .map_err(|e| alloc::format!("interrupts: {e}"))?;
            }
            Step::System => {
                let platform = self.platform.take().ok_or("the device tree was not read")?;
                let blob = core::mem::take(&mut self.blob);
                self.sys = Some(System::new(platform, &self.sources, self.mode, blob)?);
            }
            Step::LateArguments => {
                let sys = self.sys.as_mut().ok_or("no kernel state")?;
                apply_bootargs(sys, &bootargs::plan(&self.args).late);
            }
            Step::Vpa => {
                percpu::enter(0, self.boot_server);
                percpu::cpu(0).set_state(percpu::CpuState::Online);
                idle::register(self.boot_server)?;
                log::info!("VPA registered for CPU {}", self.boot_server);
            }
            Step::InterruptsOn => {
                // From here on the kernel idles in H_CEDE; the drivers attached
                // their interrupts when probed.
                arch::trap::set_decrementer(kernel::timer::DEC_MAX);
                arch::trap::enable_interrupts();
            }
            Step::SecondaryCpus => {
                let sys = self.sys.as_ref().ok_or("no kernel state")?;
                let limit = bootargs::plan(&self.args).smp;
                let cpus = kernel::smp::plan(&sys.platform.cpus, self.boot_server, limit);
                let start_tokens = rtas::tokens()
                    .cpu_start()
                    .map(|(query, start)| crate::smp::StartTokens { query, start });
                crate::smp::start_all(&cpus, start_tokens);
            }
            Step::FirstRound => {
                // The balloon's first round (and the model's clock origin)
                // before the prompt, so it never races the first command; later
                // rounds run on timers.
                self.sys.as_mut().ok_or("no kernel state")?.background();
            }
            Step::Ready => {
                let sys = self.sys.as_ref().ok_or("no kernel state")?;
                log::info!("ready after {} us", clock::now_us());
                mem::set_loaned_view(sys.mm.frames());
                exit::set_backend(hcall::Simulation::kind(&sys.hv));
                println!("lpar-cmm ready");
            }
        }
        Ok(())
    }

    /// Reads the tree: the platform's facts, the interrupt sources, the
    /// console's unit, the timebase, the RTAS tokens; types the boot arguments
    /// (one warning per bad one) and tells the plan what `mmu=` said.
    fn read_tree(&mut self, plan: &mut Plan) -> Result<(), Cow<'static, str>> {
        match INTERRUPT_ORDER_ERROR.load(core::sync::atomic::Ordering::Relaxed) {
            0 => log::info!(
                "interrupts taken {}-endian (H_SET_MODE)",
                ByteOrder::NATIVE.name()
            ),
            rc => log::warn!("H_SET_MODE answered {rc}: interrupts stay big-endian"),
        }
        let fdt = devtree::Fdt::new(&self.blob).map_err(|e| alloc::format!("device tree: {e}"))?;
        let platform = devtree::gather(&fdt);
        self.sources = kernel::xics::gather(&fdt);
        drivers::vty::early(&platform);
        clock::init(platform.timebase_hz.unwrap_or(0));
        for p in &platform.problems {
            log::warn!("device tree: {p}");
        }
        rtas::set_tokens(rtas::Tokens::from_platform(&platform));
        log::info!(
            "{} mode, {} MiB RAM in {} range(s), {} CPU(s), timebase {} Hz, vty {:#x}",
            self.mode.name(),
            platform.ram_bytes() >> 20,
            platform.memory.len(),
            platform.cpus.len(),
            clock::hz(),
            drivers::vty::unit()
        );
        log::info!(
            "kernel image ends at {:#x}",
            crate::glue::image::kernel_end()
        );
        self.args = platform.bootargs.clone().unwrap_or_default();
        let args = bootargs::plan(&self.args);
        for w in &args.warnings {
            log::warn!("{w}");
        }
        if args.translation == bootargs::Translation::Off {
            log::info!("mmu=off: translation stays off; only the RMA is used");
        }
        plan.translation(args.translation);
        self.platform = Some(platform);
        Ok(())
    }
}

/// Applies the arguments for the running kernel in order; one refused is logged
/// and changes nothing. Those applied are kept, as given, for the record.
fn apply_bootargs(sys: &mut System, late: &[(&str, &str, Late<'_>)]) {
    for &(k, v, arg) in late {
        match sys.apply(arg) {
            Ok(()) => sys.bootargs.push((k.to_string(), v.to_string())),
            Err(e) => log::warn!("boot argument `{k}={v}` ignored: {e}"),
        }
    }
}

/// The boot thread's interrupt server number: the PIR (on pseries it is the
/// server number), if the tree lists it; else the first CPU's `reg`.
fn boot_server(cpus: &[kernel::devtree::platform::Cpu]) -> u32 {
    let pir = arch::cpu::pir();
    if cpus.iter().any(|c| c.threads.contains(&pir)) {
        return pir;
    }
    let first = cpus.first().map_or(0, |c| c.reg);
    log::warn!("PIR {pir} is no listed thread: taking CPU server {first} as the boot CPU");
    first
}

/// Makes interrupts arrive in the image's byte order (H_SET_MODE, under the
/// retry policy), before any vector of the kernel is installed. The
/// little-endian image cannot take an interrupt without it (the error, fatal);
/// the big-endian one asks for what the platform already does, and carries on
/// if the hypervisor does not know the call.
fn interrupt_byte_order() -> Result<(), &'static str> {
    if let Err(e) = arch::exceptions::take_interrupts_in_native_order() {
        INTERRUPT_ORDER_ERROR.store(e.status.to_raw(), core::sync::atomic::Ordering::Relaxed);
        if ByteOrder::NATIVE == ByteOrder::Little {
            return Err("H_SET_MODE refused little-endian interrupts");
        }
    }
    Ok(())
}

/// What H_SET_MODE answered in the big-endian image, when it refused (logged
/// once the logger is up).
static INTERRUPT_ORDER_ERROR: core::sync::atomic::AtomicI64 = core::sync::atomic::AtomicI64::new(0);

fn fatal(msg: &str) -> ! {
    log::error!("boot failed: {msg}");
    exit::os_term(msg)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // One report: the other CPUs stop (or this one does, if another is
    // already on its way out).
    crate::smp::stop_others();
    console::emergency_write(format_args!("\nKERNEL PANIC: {}\n", info.message()));
    if let Some(loc) = info.location() {
        console::emergency_write(format_args!(
            "  at {}:{}:{}\n",
            loc.file(),
            loc.line(),
            loc.column()
        ));
    }
    exit::os_term("kernel panic")
}
