//! Boot: from the entry point to the shell.
//!
//! Order: vectors, heap, clock, device tree (copied into the heap, then read),
//! console unit, logger, RTAS tokens, memory, boot arguments, `lpar-cmm ready`.
//! Entered through Open Firmware (r5), the device tree is flattened from the
//! firmware's (see `of`) and the vectors are installed after that, since the
//! firmware lives where they go.

use alloc::string::ToString;
use hcall::endian::ByteOrder;
use kernel::devtree;
use kernel::text::bootargs::{self, Late, Translation};

use crate::sys::{BootMode, System};
use crate::{
    arch, clock, console, drivers, exit, heap, idle, irq, mem, of, percpu, println, rtas, shell,
};

/// Called by `arch::entry`'s `kernel_entry` with r3 as the firmware left it and
/// the Open Firmware client interface, when r5 named one.
pub fn start(r3: u64, prom: Option<of::Prom>) -> ! {
    // Under Open Firmware the firmware lives in low memory, where the vectors
    // go: they are installed only after the last firmware call.
    let fdt_in_r3 = mem::looks_like_fdt(r3);
    clock::init(0);
    // CPU index 0 and its interrupt stack, before any vector can be taken.
    percpu::enter(0, 0);
    if fdt_in_r3 {
        interrupt_byte_order();
        arch::exceptions::install();
    }
    heap::init();
    console::logger::init(log::LevelFilter::Info);
    let (blob, mode) = if fdt_in_r3 {
        match mem::copy_fdt(r3) {
            Ok(b) => (b, BootMode::Fdt),
            Err(e) => fatal(e),
        }
    } else if let Some(prom) = prom {
        match of::boot(prom) {
            Ok(b) => {
                // The firmware may have used the scratch registers.
                percpu::enter(0, 0);
                interrupt_byte_order();
                arch::exceptions::install();
                (b, BootMode::Of)
            }
            Err(e) => {
                log::error!("Open Firmware: {e}");
                fatal(&alloc::format!("booting through Open Firmware failed: {e}"))
            }
        }
    } else {
        fatal("no device tree in r3 and no client interface in r5")
    };
    match INTERRUPT_ORDER_ERROR.load(core::sync::atomic::Ordering::Relaxed) {
        0 => log::info!(
            "interrupts taken {}-endian (H_SET_MODE)",
            ByteOrder::NATIVE.name()
        ),
        rc => log::warn!("H_SET_MODE answered {rc}: interrupts stay big-endian"),
    }
    let fdt = match devtree::Fdt::new(&blob) {
        Ok(f) => f,
        Err(e) => {
            log::error!("device tree: {e}");
            fatal("the device tree is unusable")
        }
    };
    let platform = devtree::gather(&fdt);
    let sources = kernel::xics::gather(&fdt);
    drivers::vty::early(&platform);
    clock::init(platform.timebase_hz.unwrap_or(0));
    for p in &platform.problems {
        log::warn!("device tree: {p}");
    }
    rtas::set_tokens(rtas::Tokens::from_platform(&platform));
    log::info!(
        "{} mode, {} MiB RAM in {} range(s), {} CPU(s), timebase {} Hz, vty {:#x}",
        mode.name(),
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
    // Typed once: the early arguments now, the rest once the memory manager
    // exists (`apply_bootargs`).
    let args = platform.bootargs.clone().unwrap_or_default();
    let plan = bootargs::plan(&args);
    for w in &plan.warnings {
        log::warn!("{w}");
    }
    match crate::glue::rma::init(&platform.memory, plan.rma) {
        Ok(rma) => log::info!(
            "RMA {} MiB (memory@0: {} MiB); everything touched in real mode fits",
            rma.size >> 20,
            rma.firmware_size >> 20
        ),
        Err(e) => fatal(&e),
    }
    if plan.translation == Translation::Off {
        log::info!("mmu=off: translation stays off; only the RMA is used");
    } else if let Err(e) = crate::glue::mmu::init(&fdt, &platform.memory) {
        log::error!("translation stays off: {e}; only the RMA is used");
    }
    let boot_server = boot_server(&platform.cpus);
    if let Err(e) = irq::init(&sources, boot_server) {
        log::warn!("interrupts: {e}; every device is polled");
    }
    let mut sys = match System::new(platform, &sources, mode, blob) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            fatal("cannot set up memory and the hypervisor")
        }
    };
    apply_bootargs(&mut sys, &plan.late);
    percpu::enter(0, boot_server);
    percpu::cpu(0).set_state(percpu::CpuState::Online);
    let cpus = kernel::smp::plan(&sys.platform.cpus, boot_server, plan.smp);
    start_interrupts(boot_server);
    let start_tokens = rtas::tokens()
        .cpu_start()
        .ok()
        .map(|(query, start)| crate::smp::StartTokens { query, start });
    crate::smp::start_all(&cpus, start_tokens);
    // The balloon's first round (and the model's clock origin) before the
    // prompt, so it never races the first command; later rounds run on timers.
    sys.background();
    log::info!("ready after {} us", clock::now_us());
    mem::set_loaned_view(sys.mm.frames());
    exit::set_backend(hcall::Simulation::kind(&sys.hv));
    println!("lpar-cmm ready");
    shell::run(&mut sys)
}

/// Registers the VPA and turns interrupts on (the drivers attached theirs when
/// probed): from here on the kernel idles in H_CEDE.
fn start_interrupts(cpu: u32) {
    match idle::register(cpu) {
        Ok(()) => log::info!("VPA registered for CPU {cpu}"),
        Err(e) => log::warn!("{e}: idle without a VPA"),
    }
    arch::trap::set_decrementer(kernel::timer::DEC_MAX);
    arch::trap::enable_interrupts();
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
/// little-endian image cannot take an interrupt without it; the big-endian one
/// asks for what the platform already does, and carries on if the hypervisor
/// does not know the call.
fn interrupt_byte_order() {
    let order = ByteOrder::NATIVE;
    if let Err(e) = arch::exceptions::take_interrupts_in_native_order() {
        if order == ByteOrder::Little {
            exit::os_term("H_SET_MODE refused little-endian interrupts");
        }
        INTERRUPT_ORDER_ERROR.store(e.status.to_raw(), core::sync::atomic::Ordering::Relaxed);
    }
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
