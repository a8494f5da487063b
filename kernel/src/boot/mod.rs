//! Boot: from the entry point to the shell.

use crate::{arch, clock, console, exit, heap, println, rtas};
use alloc::vec::Vec;
use kernel::devtree;

/// The largest device tree blob accepted.
const MAX_FDT: usize = 1 << 20;

/// Called by `_start` with r3..r5 as the firmware left them.
#[no_mangle]
pub extern "C" fn kernel_entry(r3: u64, _r4: u64, r5: u64) -> ! {
    arch::exceptions::install();
    heap::init();
    clock::init(0);
    println!("lpar-cmm booting r3={r3:#x} r5={r5:#x}");
    let blob = match copy_fdt(r3) {
        Ok(b) => b,
        Err(e) => exit::os_term(e),
    };
    let fdt = match devtree::Fdt::new(&blob) {
        Ok(f) => f,
        Err(_) => exit::os_term("bad device tree"),
    };
    let p = devtree::gather(&fdt);
    if let Some(u) = p.vty_unit {
        console::set_unit(u);
    }
    println!("ram {} vty {:?} tb {:?} problems {:?}", p.ram_bytes(), p.vty_unit, p.timebase_hz, p.problems);
    rtas::set_tokens(rtas::Tokens {
        power_off: p.rtas_token("power-off"),
        os_term: p.rtas_token("ibm,os-term"),
        get_system_parameter: p.rtas_token("ibm,get-system-parameter"),
    });
    exit::power_off()
}

fn copy_fdt(addr: u64) -> Result<Vec<u8>, &'static str> {
    if addr == 0 || addr % 8 != 0 {
        return Err("no device tree in r3");
    }
    let ptr = addr as usize as *const u8;
    // SAFETY: r3 points at the blob QEMU placed in RAM; the header is 40 bytes.
    let header = unsafe { core::slice::from_raw_parts(ptr, 40) };
    let size = devtree::fdt::total_size(header).map_err(|_| "r3 does not point at a device tree")?;
    if size > MAX_FDT || size < 40 {
        return Err("device tree size out of range");
    }
    // SAFETY: the header says the blob is `size` bytes long and it lies in RAM.
    let all = unsafe { core::slice::from_raw_parts(ptr, size) };
    Ok(all.to_vec())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency_write(format_args!("\nKERNEL PANIC: {}\n", info.message()));
    if let Some(loc) = info.location() {
        console::emergency_write(format_args!("  at {}:{}:{}\n", loc.file(), loc.line(), loc.column()));
    }
    exit::os_term("kernel panic")
}
