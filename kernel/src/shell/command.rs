//! The typed commands a console line parses into. Arguments that need the running
//! system to be checked (a VIO `<unit>` resolved against the bus, a `cmm set`
//! parameter checked by the balloon's own parameter table) stay words here.

use alloc::boxed::Box;
use alloc::vec::Vec;

use cmm::Workload;

/// One parsed command; `'a` is the line it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `help`: list the commands.
    Help,
    /// `version`: name, version, target, boot mode, hypervisor backend.
    Version,
    /// `meminfo`: `/proc/meminfo`-style rows.
    Meminfo,
    /// `devtree [dump]`: the platform facts, or the blob as hex lines.
    Devtree {
        /// `dump` was given.
        dump: bool,
    },
    /// `sleep <ms>`: let time pass (at most one hour).
    Sleep {
        /// Milliseconds.
        ms: u64,
    },
    /// `echo <words>`: the words back, joined by one space.
    Echo(Vec<&'a str>),
    /// `poweroff`: RTAS power-off.
    Poweroff,
    /// `panic`: a deliberate kernel panic.
    Panic,
    /// `time <command...>`: run a command and print how long it took.
    Time(Box<Command<'a>>),
    /// `fault program|loaned|unmapped`: a deliberate fault.
    Fault(FaultKind),
    /// `cmm ...`: the balloon.
    Cmm(CmmCommand<'a>),
    /// `alloc <size> [cache]`: allocate workload pages.
    Alloc {
        /// 4 KiB pages.
        pages: u64,
        /// Working set or cache.
        kind: Workload,
    },
    /// `free <size>|all [cache]`: free workload pages.
    Free {
        /// 4 KiB pages, `None` for `all`.
        pages: Option<u64>,
        /// Working set or cache.
        kind: Workload,
    },
    /// `verify`: check every workload (and poisoned loaned) page.
    Verify,
    /// `trace on|off`.
    Trace(bool),
    /// `hv ...`: the pool model (parsed by [`powervm_sim::HvCommand::parse`]).
    Hv(powervm_sim::HvCommand<'a>),
    /// `mpp ...`: H_GET_MPP or H_SET_MPP.
    Mpp(MppCommand),
    /// `lparcfg`: the CMO lines of `/proc/ppc64/lparcfg`.
    Lparcfg,
    /// `vio ...`: VIO entitlement per device.
    Vio(VioCommand<'a>),
    /// `amsstat`: powerpc-utils' amsstat layout.
    Amsstat,
    /// `sysfs`: the sysfs files amsstat reads, as `path=value` lines.
    Sysfs,
    /// `bench ...`: in-guest benchmarks.
    Bench(BenchCommand),
    /// `cpu`: interrupts by kind, cedes and time ceded.
    Cpu,
    /// `busy <n> [ms]`: the first n other CPUs spin until `busy 0`, or each
    /// until its own timer says `ms` have passed.
    Busy {
        /// How many CPUs.
        cpus: u64,
        /// For how long (`None`: until `busy 0`).
        ms: Option<u64>,
    },
    /// `stress <ms> [cpus]`: allocate, fill, verify and free on several CPUs
    /// while the balloon moves.
    Stress {
        /// How long.
        ms: u64,
        /// On how many CPUs (`None`: every online one).
        cpus: Option<u64>,
    },
}

/// `fault program|loaned|unmapped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Take a program interrupt (`trap`).
    Program,
    /// Write into a loaned page.
    Loaned,
    /// Touch an address beyond RAM (the storage-fault report).
    Unmapped,
}

/// `cmm [set <param> <value> | reset-oom | wait [<ms>]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmmCommand<'a> {
    /// `cmm`: parameters and statistics.
    Show,
    /// `cmm set <param> <value>`: checked by the balloon's parameter table.
    Set {
        /// The parameter's name.
        param: &'a str,
        /// Its new value, as typed.
        value: &'a str,
    },
    /// `cmm reset-oom`.
    ResetOom,
    /// `cmm wait [<ms>]`: at most one hour, 10000 ms when not given.
    Wait {
        /// Milliseconds.
        ms: u64,
    },
}

/// `mpp [weight <0-255> | entitle <size>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MppCommand {
    /// `mpp`: H_GET_MPP (and H_GET_MPP_X) decoded.
    Show,
    /// `mpp weight <0-255>`.
    Weight(u8),
    /// `mpp entitle <size>`: bytes, a multiple of 4 KiB.
    Entitle(u64),
}

/// `vio [map ... | unmap ... | tce ... | desired ... | remove ... | probe ...]`.
/// `unit` is a device's node name or hex unit address, resolved by the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VioCommand<'a> {
    /// `vio`: one row per device.
    Show,
    /// `vio map <unit> <size>`.
    Map {
        /// The device.
        unit: &'a str,
        /// Bytes to map.
        bytes: u64,
    },
    /// `vio unmap <unit> <id>|all`.
    Unmap {
        /// The device.
        unit: &'a str,
        /// One mapping or all of the device's.
        which: UnmapWhich,
    },
    /// `vio tce <unit> <id>`.
    Tce {
        /// The device.
        unit: &'a str,
        /// The mapping.
        id: u64,
    },
    /// `vio desired <unit> <size>`.
    Desired {
        /// The device.
        unit: &'a str,
        /// Bytes.
        bytes: u64,
    },
    /// `vio remove <unit>`.
    Remove {
        /// The device.
        unit: &'a str,
    },
    /// `vio probe <unit>`.
    Probe {
        /// The device.
        unit: &'a str,
    },
}

/// Which mappings `vio unmap` removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapWhich {
    /// The mapping with this id.
    One(u64),
    /// Every mapping of the device.
    All,
}

/// `bench loan <n> | bench hcall <n> | bench store <n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchCommand {
    /// Loan, then return, `n` pages through the balloon (`n` ≥ 1).
    Loan(u64),
    /// The `2n` bare page-state hcalls the same work needs (`n` ≥ 1).
    Hcall(u64),
    /// Zero one frame `n` times, then `n` frames once each.
    Store(u64),
}
