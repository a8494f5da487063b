//! The order of the boot steps and what a failed one means: a plan the glue
//! (`glue/boot/mod.rs`) carries out step by step.
//!
//! Where the device tree comes from decides the first steps ([`Entry`]): a blob
//! in r3 (QEMU's boot ROM) is copied after the vectors are installed; through
//! Open Firmware (r5) the tree is flattened from the firmware's first and the
//! vectors installed only after the last firmware call, since the firmware
//! lives where they go. `mmu=off` skips translation. A step that fails either
//! ends the boot ([`OnFailure::Fatal`], with the reason os-term reports) or is
//! logged with what the kernel does without it ([`OnFailure::GoOn`]), and the
//! plan goes on.

use crate::text::bootargs::Translation as Mmu;

/// How the firmware entered the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// r3 points at a flattened device tree (QEMU's boot ROM, kexec).
    Tree,
    /// r5 is an Open Firmware client interface (SLOF, VOF, PowerVM).
    OpenFirmware,
    /// Neither: the kernel cannot learn the machine.
    Nothing,
}

impl Entry {
    /// A tree in r3 wins over a client interface in r5.
    pub fn from_registers(r3_holds_tree: bool, client_interface: bool) -> Entry {
        if r3_holds_tree {
            Entry::Tree
        } else if client_interface {
            Entry::OpenFirmware
        } else {
            Entry::Nothing
        }
    }
}

/// One boot step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Interrupts in the image's byte order (H_SET_MODE) and the vectors
    /// installed.
    Vectors,
    /// The kernel heap.
    Heap,
    /// The console logger.
    Logger,
    /// The blob r3 points at, copied into the heap.
    CopyTree,
    /// The firmware's tree flattened through the client interface (with CAS
    /// and RTAS instantiated).
    FirmwareTree,
    /// No tree to read: always fails.
    NoTree,
    /// The tree read: the platform's facts, the interrupt sources, the
    /// console's unit, the timebase, the RTAS tokens, the boot arguments.
    ReadTree,
    /// The real mode area checked against what the kernel touches in real mode.
    Rma,
    /// The hash MMU: the linear map, the SLB, translation on.
    Translation,
    /// The interrupt controller (XICS), before the drivers attach.
    InterruptController,
    /// The kernel's state: the hypervisor detected, the drivers probed, the
    /// frame table, the balloon, the VIO bus.
    System,
    /// The boot arguments for the running kernel (`cmm.`, `hv.`, `log=`).
    LateArguments,
    /// The boot CPU's VPA registered (H_CEDE's idle needs it).
    Vpa,
    /// The decrementer armed and interrupts on.
    InterruptsOn,
    /// The other CPUs started (`smp=` limits them).
    SecondaryCpus,
    /// The balloon's first round, before the prompt.
    FirstRound,
    /// `lpar-cmm ready`, then the shell.
    Ready,
}

/// What a failed step means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// The boot ends: os-term with this reason.
    Fatal(&'static str),
    /// The boot goes on; the log line says what the kernel does without it.
    GoOn(&'static str),
}

/// What a failure of `step` means.
pub fn on_failure(step: Step) -> OnFailure {
    match step {
        Step::Vectors => OnFailure::Fatal("interrupts cannot be taken in the image's byte order"),
        Step::Heap | Step::Logger | Step::LateArguments | Step::InterruptsOn => {
            OnFailure::GoOn("going on")
        }
        Step::CopyTree => OnFailure::Fatal("the device tree in r3 cannot be copied"),
        Step::FirmwareTree => OnFailure::Fatal("booting through Open Firmware failed"),
        Step::NoTree => OnFailure::Fatal("no device tree in r3 and no client interface in r5"),
        Step::ReadTree => OnFailure::Fatal("the device tree is unusable"),
        Step::Rma => OnFailure::Fatal("the kernel does not fit in the real mode area"),
        Step::Translation => OnFailure::GoOn("translation stays off; only the RMA is used"),
        Step::InterruptController => OnFailure::GoOn("every device is polled"),
        Step::System => OnFailure::Fatal("cannot set up memory and the hypervisor"),
        Step::Vpa => OnFailure::GoOn("idle without a VPA"),
        Step::SecondaryCpus => OnFailure::GoOn("running on the CPUs that came up"),
        Step::FirstRound => OnFailure::GoOn("the balloon's rounds go on on their timer"),
        Step::Ready => OnFailure::GoOn("going on"),
    }
}

/// The steps after the tree is in memory, whatever the entry.
const AFTER_TREE: [Step; 11] = [
    Step::ReadTree,
    Step::Rma,
    Step::Translation,
    Step::InterruptController,
    Step::System,
    Step::LateArguments,
    Step::Vpa,
    Step::InterruptsOn,
    Step::SecondaryCpus,
    Step::FirstRound,
    Step::Ready,
];

/// The boot's plan: the steps still to run. It allocates nothing (its first
/// steps run before the heap exists).
#[derive(Clone, Debug)]
pub struct Plan {
    first: &'static [Step],
    next: usize,
    skip_translation: bool,
    ended: bool,
}

impl Plan {
    /// Every step for `entry`, in order, translation on.
    pub fn new(entry: Entry) -> Plan {
        use Step::*;
        let first: &'static [Step] = match entry {
            Entry::Tree => &[Vectors, Heap, Logger, CopyTree],
            Entry::OpenFirmware => &[Heap, Logger, FirmwareTree, Vectors],
            Entry::Nothing => &[Heap, Logger, NoTree],
        };
        Plan {
            first,
            next: 0,
            skip_translation: false,
            ended: false,
        }
    }

    /// The next step to run, `None` once the plan is done (or a step was fatal).
    pub fn next_step(&mut self) -> Option<Step> {
        while !self.ended {
            let i = self.next;
            self.next += 1;
            let step = match self.first.get(i) {
                Some(&s) => s,
                None if self.first.last() == Some(&Step::NoTree) => {
                    self.ended = true;
                    return None;
                }
                None => match AFTER_TREE.get(i - self.first.len()) {
                    Some(&s) => s,
                    None => {
                        self.ended = true;
                        return None;
                    }
                },
            };
            if !(step == Step::Translation && self.skip_translation) {
                return Some(step);
            }
        }
        None
    }

    /// What `mmu=` said (known once the tree is read): `off` drops the
    /// translation step.
    pub fn translation(&mut self, t: Mmu) {
        self.skip_translation = t == Mmu::Off;
    }

    /// `step` failed: what it means. After a fatal one the plan is empty.
    pub fn failed(&mut self, step: Step) -> OnFailure {
        let f = on_failure(step);
        if matches!(f, OnFailure::Fatal(_)) {
            self.ended = true;
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use Step::*;

    /// Runs the plan, failing the steps in `fail`; returns the steps run and
    /// the fatal reason, if any.
    fn run(entry: Entry, t: Mmu, fail: &[Step]) -> (Vec<Step>, Option<&'static str>) {
        let mut p = Plan::new(entry);
        let mut ran = Vec::new();
        let mut fatal = None;
        while let Some(s) = p.next_step() {
            ran.push(s);
            if s == ReadTree {
                p.translation(t);
            }
            if fail.contains(&s) || s == NoTree {
                if let OnFailure::Fatal(why) = p.failed(s) {
                    fatal = Some(why);
                }
            }
        }
        (ran, fatal)
    }

    /// Where `step` ran in `ran`.
    fn at(ran: &[Step], step: Step) -> usize {
        let found: Vec<usize> = (0..ran.len()).filter(|&i| ran[i] == step).collect();
        assert_eq!(found.len(), 1, "{step:?} runs once in {ran:?}");
        found[0]
    }

    /// What must come before what, whatever the entry, and why.
    fn check_common_order(ran: &[Step]) {
        let before = |a: Step, b: Step| assert!(at(ran, a) < at(ran, b), "{a:?} before {b:?}");
        // The heap before anything keeps data; the logger before the tree.
        before(Heap, ReadTree);
        before(Logger, ReadTree);
        // The RMA check before translation changes how memory is reached.
        before(ReadTree, Rma);
        before(Rma, Translation);
        // The drivers attach their interrupts to the controller in System.
        before(InterruptController, System);
        // The late arguments need the memory manager and the model.
        before(System, LateArguments);
        // Idling in H_CEDE needs the VPA; the other CPUs' IPIs need interrupts.
        before(Vpa, InterruptsOn);
        before(InterruptsOn, SecondaryCpus);
        // The first round before the prompt; ready is last.
        before(LateArguments, FirstRound);
        before(FirstRound, Ready);
        assert_eq!(ran.last(), Some(&Ready));
    }

    #[test]
    fn a_tree_in_r3_installs_the_vectors_first() {
        let (ran, fatal) = run(Entry::Tree, Mmu::Hash, &[]);
        assert_eq!(fatal, None);
        assert_eq!(ran[..4], [Vectors, Heap, Logger, CopyTree]);
        check_common_order(&ran);
        assert!(!ran.contains(&FirmwareTree) && !ran.contains(&NoTree));
        assert_eq!(ran.len(), 15);
    }

    #[test]
    fn open_firmware_installs_the_vectors_after_its_last_call() {
        let (ran, fatal) = run(Entry::OpenFirmware, Mmu::Hash, &[]);
        assert_eq!(fatal, None);
        // Nothing of the firmware's after the vectors; the logger before the
        // first firmware call, so its failure is told.
        assert_eq!(ran[..4], [Heap, Logger, FirmwareTree, Vectors]);
        check_common_order(&ran);
        assert!(!ran.contains(&CopyTree) && !ran.contains(&NoTree));
        assert_eq!(ran.len(), 15);
    }

    #[test]
    fn without_a_tree_the_boot_ends_after_the_logger() {
        let (ran, fatal) = run(Entry::Nothing, Mmu::Hash, &[]);
        assert_eq!(ran, [Heap, Logger, NoTree]);
        assert_eq!(
            fatal,
            Some("no device tree in r3 and no client interface in r5")
        );
    }

    #[test]
    fn r3_wins_over_r5() {
        assert_eq!(Entry::from_registers(true, true), Entry::Tree);
        assert_eq!(Entry::from_registers(false, true), Entry::OpenFirmware);
        assert_eq!(Entry::from_registers(false, false), Entry::Nothing);
    }

    #[test]
    fn mmu_off_skips_translation_and_nothing_else() {
        let (ran, _) = run(Entry::Tree, Mmu::Off, &[]);
        let (all, _) = run(Entry::Tree, Mmu::Hash, &[]);
        let expect: Vec<Step> = all.into_iter().filter(|&s| s != Translation).collect();
        assert_eq!(ran, expect);
    }

    #[test]
    fn a_step_the_kernel_can_do_without_fails_and_the_boot_goes_on() {
        for s in [
            Translation,
            InterruptController,
            Vpa,
            SecondaryCpus,
            FirstRound,
        ] {
            let (ran, fatal) = run(Entry::Tree, Mmu::Hash, &[s]);
            assert_eq!(fatal, None, "{s:?}");
            assert_eq!(ran.last(), Some(&Ready), "{s:?}");
            assert!(matches!(on_failure(s), OnFailure::GoOn(_)));
        }
        assert_eq!(
            on_failure(Translation),
            OnFailure::GoOn("translation stays off; only the RMA is used")
        );
        assert_eq!(
            on_failure(InterruptController),
            OnFailure::GoOn("every device is polled")
        );
    }

    #[test]
    fn a_fatal_step_ends_the_boot_there() {
        for (s, why) in [
            (CopyTree, "the device tree in r3 cannot be copied"),
            (ReadTree, "the device tree is unusable"),
            (Rma, "the kernel does not fit in the real mode area"),
            (System, "cannot set up memory and the hypervisor"),
        ] {
            let (ran, fatal) = run(Entry::Tree, Mmu::Hash, &[s]);
            assert_eq!(ran.last(), Some(&s), "nothing after {s:?}");
            assert_eq!(fatal, Some(why));
        }
        let (ran, fatal) = run(Entry::OpenFirmware, Mmu::Hash, &[FirmwareTree]);
        assert_eq!(ran, [Heap, Logger, FirmwareTree]);
        assert_eq!(fatal, Some("booting through Open Firmware failed"));
    }
}
