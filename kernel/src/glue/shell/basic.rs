//! Commands every build has: help, version, meminfo, devtree, sleep, echo,
//! poweroff, panic.

use alloc::string::ToString;

use super::{CmdResult, Command};
use crate::sys::System;
use crate::{clock, exit, println};
use kernel::text::parse_number;

/// The basic commands.
pub static COMMANDS: &[Command] = &[
    Command { name: "help", help: "help: list commands", run: help },
    Command { name: "version", help: "version: name, version, target, boot mode, hypervisor backend", run: version },
    Command { name: "meminfo", help: "meminfo: memory in /proc/meminfo style (kB)", run: meminfo },
    Command { name: "devtree", help: "devtree [dump]: the facts taken from the device tree; dump: the blob as `fdt: <hex>` lines", run: devtree },
    Command { name: "sleep", help: "sleep <ms>: let time pass while background work runs", run: sleep },
    Command { name: "echo", help: "echo <words>: print the words back", run: echo },
    Command { name: "poweroff", help: "poweroff: RTAS power-off (QEMU exits 0)", run: poweroff },
    Command { name: "panic", help: "panic: a deliberate kernel panic (ends in ibm,os-term)", run: panic },
    Command { name: "time", help: "time <command...>: run a command and print how long it took (elapsed_us)", run: time },
    Command { name: "fault", help: "fault program|loaned: take a program interrupt (tests the vectors); write into a loaned page (tests poison mode)", run: fault },
];

fn no_args(args: &[&str]) -> CmdResult {
    if args.is_empty() {
        Ok(())
    } else {
        Err("this command takes no arguments".to_string())
    }
}

fn help(_: &mut System, args: &[&str]) -> CmdResult {
    no_args(args)?;
    for c in super::commands().into_iter().flatten() {
        println!("{}", c.help);
    }
    Ok(())
}

fn version(sys: &mut System, args: &[&str]) -> CmdResult {
    no_args(args)?;
    println!(
        "lpar-cmm {} ({}) boot={} hv={}",
        env!("CARGO_PKG_VERSION"),
        TARGET,
        sys.boot_mode.name(),
        sys.hv_backend()
    );
    println!("name: lpar-cmm");
    println!("version: {}", env!("CARGO_PKG_VERSION"));
    println!("target: {TARGET}");
    println!("boot_mode: {}", sys.boot_mode.name());
    println!("hypervisor: {}", sys.hv_backend());
    Ok(())
}

const TARGET: &str = "powerpc64-unknown-linux-gnu";

fn meminfo(sys: &mut System, args: &[&str]) -> CmdResult {
    no_args(args)?;
    sys.print_meminfo();
    Ok(())
}

fn devtree(sys: &mut System, args: &[&str]) -> CmdResult {
    match args {
        [] => {}
        ["dump"] => {
            dump_fdt(&sys.fdt_blob);
            return Ok(());
        }
        _ => return Err("usage: devtree [dump]".to_string()),
    }
    let p = &sys.platform;
    println!("ram_bytes: {}", p.ram_bytes());
    for m in &p.memory {
        println!("memory: base={:#x} size={:#x}", m.base, m.size);
    }
    println!("cpus: {}", p.cpus.len());
    for c in &p.cpus {
        println!("cpu: {} reg={}", c.name, c.reg);
    }
    println!("timebase_hz: {}", p.timebase_hz.unwrap_or(0));
    match p.vty_unit {
        Some(u) => println!("vty: {u:x}"),
        None => println!("vty: none"),
    }
    println!("stdout_path: {}", p.stdout_path.as_deref().unwrap_or(""));
    println!("bootargs: {}", p.bootargs.as_deref().unwrap_or(""));
    for (name, tok) in &p.rtas_tokens {
        println!("rtas: {name} {tok:#x}");
    }
    for d in &p.vdevices {
        match d.dma_window {
            Some(w) => println!(
                "vdevice: {} unit={:x} compatible={} liobn={:#x} dma_offset={:#x} dma_size={:#x}",
                d.name, d.unit, d.compatible, w.liobn, w.offset, w.size
            ),
            None => println!(
                "vdevice: {} unit={:x} compatible={}",
                d.name, d.unit, d.compatible
            ),
        }
    }
    for h in &p.hypertas {
        println!("hypertas: {h}");
    }
    println!("fdt_bytes: {}", sys.fdt_blob.len());
    Ok(())
}

/// Prints the device tree blob as lines `fdt: <hex>` of 32 bytes each, then
/// `fdt_bytes: N`, so a host tool can rebuild it (and decode it with `dtc`).
fn dump_fdt(blob: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in blob.chunks(32) {
        let mut line = [0u8; 64];
        for (pair, b) in line.chunks_exact_mut(2).zip(chunk) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
        }
        let used = chunk.len() * 2;
        println!("fdt: {}", core::str::from_utf8(&line[..used]).unwrap_or(""));
    }
    println!("fdt_bytes: {}", blob.len());
}

fn sleep(sys: &mut System, args: &[&str]) -> CmdResult {
    let [ms] = args else {
        return Err("usage: sleep <ms>".to_string());
    };
    let ms = parse_number(ms).map_err(|e| alloc::format!("bad <ms> `{ms}`: {e}"))?;
    if ms > 3_600_000 {
        return Err("sleep is limited to one hour".to_string());
    }
    let start = clock::now_us();
    sys.sleep_ms(ms);
    println!("slept_ms: {}", (clock::now_us() - start) / 1000);
    Ok(())
}

fn echo(_: &mut System, args: &[&str]) -> CmdResult {
    println!("{}", args.join(" "));
    Ok(())
}

fn poweroff(_: &mut System, args: &[&str]) -> CmdResult {
    no_args(args)?;
    exit::power_off()
}

fn panic(_: &mut System, args: &[&str]) -> CmdResult {
    no_args(args)?;
    panic!("deliberate panic from the console")
}

fn fault(sys: &mut System, args: &[&str]) -> CmdResult {
    match args {
        ["loaned"] => {
            // A deliberate broken promise, for testing poison mode: write one word
            // into the first loaned page, as buggy code using a loaned page would.
            let pfn = sys
                .mm
                .frames()
                .iter(cmm::FrameSet::Loaned)
                .next()
                .ok_or_else(|| "no page is loaned".to_string())?;
            let addr = pfn * 4096;
            // SAFETY: `addr` is a RAM frame the balloon owns (loaned); writing one
            // word into it breaks only the CMO promise, which is the point here.
            unsafe { core::ptr::write_volatile((addr as usize + 64) as *mut u64, 0xbad) };
            println!("addr: {addr:#x}");
            Ok(())
        }
        ["program"] => {
            // SAFETY: `trap` raises a program interrupt, whose vector reports the
            // machine state and ends in os-term; nothing returns here.
            unsafe { core::arch::asm!("trap", options(nostack)) };
            Err("the trap returned".to_string())
        }
        _ => Err("usage: fault program|loaned".to_string()),
    }
}

fn time(sys: &mut System, args: &[&str]) -> CmdResult {
    if args.is_empty() {
        return Err("usage: time <command...>".to_string());
    }
    let t0 = clock::ticks();
    let r = super::run_words(sys, args);
    println!("elapsed_us: {}", clock::ticks_to_us(clock::ticks() - t0));
    r
}
