//! The command table: every command's name, usage, description and parser, in
//! `help` order. To add a command, add a row here and its parser below (see the
//! module doc of [`crate::shell`]).

use alloc::boxed::Box;

use cmm::Workload;
use hcall::page::PAGE_SIZE;

use super::command::{
    BenchCommand, CmmCommand, Command, FaultKind, MppCommand, UnmapWhich, VioCommand,
};
use super::error::ArgError;
use super::Spec;
use crate::text::{parse_number, parse_pages, parse_size};

/// Every command, in `help` order.
pub static COMMANDS: &[Spec] = &[
    Spec {
        name: "help",
        usage: "help",
        about: "list commands",
        parse: help,
    },
    Spec {
        name: "version",
        usage: "version",
        about: "name, version, target, boot mode, hypervisor backend",
        parse: version,
    },
    Spec {
        name: "meminfo",
        usage: "meminfo",
        about: "memory in /proc/meminfo style (kB)",
        parse: meminfo,
    },
    Spec {
        name: "devtree",
        usage: "devtree [dump]",
        about: "the facts taken from the device tree; dump: the blob as `fdt: <hex>` lines",
        parse: devtree,
    },
    Spec {
        name: "sleep",
        usage: "sleep <ms>",
        about: "let time pass while background work runs",
        parse: sleep,
    },
    Spec {
        name: "echo",
        usage: "echo <words>",
        about: "print the words back",
        parse: echo,
    },
    Spec {
        name: "poweroff",
        usage: "poweroff",
        about: "RTAS power-off (QEMU exits 0)",
        parse: poweroff,
    },
    Spec {
        name: "panic",
        usage: "panic",
        about: "a deliberate kernel panic (ends in ibm,os-term)",
        parse: panic,
    },
    Spec {
        name: "time",
        usage: "time <command...>",
        about: "run a command and print how long it took (elapsed_us)",
        parse: time,
    },
    Spec {
        name: "fault",
        usage: "fault program|loaned|unmapped",
        about: "take a program interrupt (tests the vectors); write into a loaned page (tests poison mode); touch an address beyond RAM (the storage-fault report)",
        parse: fault,
    },
    Spec {
        name: "cmm",
        usage: "cmm [set <param> <value> | reset-oom | wait [<ms>]]",
        about: "balloon parameters and statistics",
        parse: cmm,
    },
    Spec {
        name: "alloc",
        usage: "alloc <size> [cache]",
        about: "allocate workload pages filled with a pattern (runs the OOM path when memory runs out)",
        parse: alloc,
    },
    Spec {
        name: "free",
        usage: "free <size>|all [cache]",
        about: "free workload pages",
        parse: free,
    },
    Spec {
        name: "verify",
        usage: "verify",
        about: "check every workload page (and, with poison on, every loaned page)",
        parse: verify,
    },
    Spec {
        name: "trace",
        usage: "trace on|off",
        about: "print a trace line after every balloon round",
        parse: trace,
    },
    Spec {
        name: "hv",
        usage: powervm_sim::HV_USAGE,
        about: "the pool model",
        parse: hv,
    },
    Spec {
        name: "mpp",
        usage: "mpp [weight <0-255> | entitle <size>]",
        about: "H_GET_MPP decoded, or H_SET_MPP",
        parse: mpp,
    },
    Spec {
        name: "lparcfg",
        usage: "lparcfg",
        about: "the CMO lines of /proc/ppc64/lparcfg",
        parse: lparcfg,
    },
    Spec {
        name: "vio",
        usage: "vio [map <unit> <size> | unmap <unit> <id>|all | tce <unit> <id> | desired <unit> <size> | remove <unit> | probe <unit>]",
        about: "VIO entitlement per device",
        parse: vio,
    },
    Spec {
        name: "amsstat",
        usage: "amsstat",
        about: "memory, entitlement, CMM and VIO statistics in the layout of powerpc-utils' amsstat",
        parse: amsstat,
    },
    Spec {
        name: "sysfs",
        usage: "sysfs",
        about: "the Linux sysfs files amsstat reads, as path=value lines",
        parse: sysfs,
    },
    Spec {
        name: "bench",
        usage: "bench loan <n> | bench hcall <n> | bench store <n>",
        about: "in-guest benchmarks (pages, elapsed_ns)",
        parse: bench,
    },
    Spec {
        name: "cpu",
        usage: "cpu",
        about: "interrupts taken by kind, H_CEDE calls and time ceded, console input mode",
        parse: cpu,
    },
    Spec {
        name: "busy",
        usage: "busy <n> [ms]",
        about: "the first n other CPUs spin (interrupts on) until `busy 0`, or for ms by their own timers",
        parse: busy,
    },
    Spec {
        name: "stress",
        usage: "stress <ms> [cpus]",
        about: "allocate, fill, verify and free on every (or the first n) CPU while the balloon moves",
        parse: stress,
    },
];

/// The longest `sleep` and `cmm wait`, in milliseconds: one hour.
pub const MAX_WAIT_MS: u64 = 3_600_000;

/// How long `cmm wait` waits when no `<ms>` is given.
pub const DEFAULT_WAIT_MS: u64 = 10_000;

/// `<n>`, or why not.
fn number<'a>(what: &'static str, value: &'a str) -> Result<u64, ArgError<'a>> {
    parse_number(value).map_err(|reason| ArgError::Bad {
        what,
        value,
        reason,
    })
}

/// `<size>` in bytes, or why not.
fn size<'a>(what: &'static str, value: &'a str) -> Result<u64, ArgError<'a>> {
    parse_size(value).map_err(|reason| ArgError::Bad {
        what,
        value,
        reason,
    })
}

/// A `<size>` that must be whole 4 KiB pages, in pages, or why not.
fn pages<'a>(what: &'static str, value: &'a str) -> Result<u64, ArgError<'a>> {
    parse_pages(value).map_err(|reason| ArgError::Bad {
        what,
        value,
        reason,
    })
}

/// A command that takes no arguments, refused with "takes no arguments".
fn bare<'a>(args: &[&'a str], cmd: Command<'a>) -> Result<Command<'a>, ArgError<'a>> {
    if args.is_empty() {
        Ok(cmd)
    } else {
        Err(ArgError::NoArguments)
    }
}

/// The optional `cache` word of `alloc` and `free`.
fn workload<'a>(word: Option<&&'a str>) -> Result<Workload, ArgError<'a>> {
    match word {
        None => Ok(Workload::Working),
        Some(&"cache") => Ok(Workload::Cache),
        Some(other) => Err(ArgError::NotCache(other)),
    }
}

fn help<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Help)
}

fn version<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Version)
}

fn meminfo<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Meminfo)
}

fn devtree<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    match *args {
        [] => Ok(Command::Devtree { dump: false }),
        ["dump"] => Ok(Command::Devtree { dump: true }),
        _ => Err(ArgError::Usage),
    }
}

fn sleep<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let [ms] = *args else {
        return Err(ArgError::Usage);
    };
    let ms = number("<ms>", ms)?;
    if ms > MAX_WAIT_MS {
        return Err(ArgError::OutOfRange("sleep is limited to one hour"));
    }
    Ok(Command::Sleep { ms })
}

fn echo<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    Ok(Command::Echo(args.to_vec()))
}

fn poweroff<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Poweroff)
}

fn panic<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Panic)
}

/// `time` parses the command it times; that command's own error is the reply.
fn time<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    if args.is_empty() {
        return Err(ArgError::Usage);
    }
    match super::parse(args) {
        Ok(inner) => Ok(Command::Time(Box::new(inner))),
        Err(e) => Err(ArgError::Inner(Box::new(e))),
    }
}

fn fault<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    match *args {
        ["program"] => Ok(Command::Fault(FaultKind::Program)),
        ["loaned"] => Ok(Command::Fault(FaultKind::Loaned)),
        ["unmapped"] => Ok(Command::Fault(FaultKind::Unmapped)),
        _ => Err(ArgError::Usage),
    }
}

fn cmm<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let c = match *args {
        [] => CmmCommand::Show,
        ["set", param, value] => CmmCommand::Set { param, value },
        ["reset-oom"] => CmmCommand::ResetOom,
        ["wait"] => CmmCommand::Wait {
            ms: DEFAULT_WAIT_MS,
        },
        ["wait", ms] => {
            let ms = number("<ms>", ms)?;
            if ms > MAX_WAIT_MS {
                return Err(ArgError::OutOfRange("wait is limited to one hour"));
            }
            CmmCommand::Wait { ms }
        }
        _ => return Err(ArgError::Usage),
    };
    Ok(Command::Cmm(c))
}

fn alloc<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let [size, rest @ ..] = args else {
        return Err(ArgError::Usage);
    };
    if rest.len() > 1 {
        return Err(ArgError::Usage);
    }
    let kind = workload(rest.first())?;
    let pages = pages("<size>", size)?;
    Ok(Command::Alloc { pages, kind })
}

fn free<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let [size, rest @ ..] = args else {
        return Err(ArgError::Usage);
    };
    if rest.len() > 1 {
        return Err(ArgError::Usage);
    }
    let kind = workload(rest.first())?;
    let pages = match *size {
        "all" => None,
        s => Some(pages("<size>", s)?),
    };
    Ok(Command::Free { pages, kind })
}

fn verify<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Verify)
}

fn trace<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    match *args {
        ["on"] => Ok(Command::Trace(true)),
        ["off"] => Ok(Command::Trace(false)),
        _ => Err(ArgError::Usage),
    }
}

/// `hv ...`: the pool model's one parser ([`powervm_sim::HvCommand::parse`]),
/// whose usage string is this row's.
fn hv<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    match powervm_sim::HvCommand::parse(args) {
        Ok(c) => Ok(Command::Hv(c)),
        Err(powervm_sim::ModelError::Usage(_)) => Err(ArgError::Usage),
        Err(e) => Err(ArgError::Model(e)),
    }
}

fn mpp<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let c = match *args {
        [] => MppCommand::Show,
        ["weight", w] => {
            let w = number("<weight>", w)?;
            let w = u8::try_from(w).map_err(|_| ArgError::OutOfRange("weight must be 0-255"))?;
            MppCommand::Weight(w)
        }
        ["entitle", s] => {
            let bytes = size("<size>", s)?;
            if bytes % PAGE_SIZE != 0 {
                return Err(ArgError::OutOfRange(
                    "entitlement must be a multiple of 4 KiB",
                ));
            }
            MppCommand::Entitle(bytes)
        }
        _ => return Err(ArgError::Usage),
    };
    Ok(Command::Mpp(c))
}

fn lparcfg<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Lparcfg)
}

fn vio<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let c = match *args {
        [] => VioCommand::Show,
        ["map", unit, sz] => VioCommand::Map {
            unit,
            bytes: size("<size>", sz)?,
        },
        ["unmap", unit, "all"] => VioCommand::Unmap {
            unit,
            which: UnmapWhich::All,
        },
        ["unmap", unit, id] => VioCommand::Unmap {
            unit,
            which: UnmapWhich::One(number("<id>", id)?),
        },
        ["tce", unit, id] => VioCommand::Tce {
            unit,
            id: number("<id>", id)?,
        },
        ["desired", unit, sz] => VioCommand::Desired {
            unit,
            bytes: size("<size>", sz)?,
        },
        ["remove", unit] => VioCommand::Remove { unit },
        ["probe", unit] => VioCommand::Probe { unit },
        _ => return Err(ArgError::Usage),
    };
    Ok(Command::Vio(c))
}

fn amsstat<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Amsstat)
}

fn sysfs<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Sysfs)
}

fn cpu<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    bare(args, Command::Cpu)
}

fn busy<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let (n, ms) = match *args {
        [n] => (n, None),
        [n, ms] => (n, Some(number("[ms]", ms)?)),
        _ => return Err(ArgError::Usage),
    };
    if ms.is_some_and(|ms| ms == 0 || ms > MAX_WAIT_MS) {
        return Err(ArgError::OutOfRange("[ms] must be 1..3600000"));
    }
    Ok(Command::Busy {
        cpus: number("<n>", n)?,
        ms,
    })
}

fn stress<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let (ms, cpus) = match *args {
        [ms] => (ms, None),
        [ms, n] => (ms, Some(number("[cpus]", n)?)),
        _ => return Err(ArgError::Usage),
    };
    let ms = number("<ms>", ms)?;
    if ms > MAX_WAIT_MS {
        return Err(ArgError::OutOfRange("stress is limited to one hour"));
    }
    if cpus == Some(0) {
        return Err(ArgError::OutOfRange("[cpus] must be at least 1"));
    }
    Ok(Command::Stress { ms, cpus })
}

fn bench<'a>(args: &[&'a str]) -> Result<Command<'a>, ArgError<'a>> {
    let at_least_one = |n: u64| {
        if n == 0 {
            Err(ArgError::OutOfRange("<n> must be at least 1"))
        } else {
            Ok(n)
        }
    };
    let c = match *args {
        ["loan", n] => BenchCommand::Loan(at_least_one(number("<n>", n)?)?),
        ["hcall", n] => BenchCommand::Hcall(at_least_one(number("<n>", n)?)?),
        ["store", n] => BenchCommand::Store(at_least_one(number("<n>", n)?)?),
        _ => return Err(ArgError::Usage),
    };
    Ok(Command::Bench(c))
}
