//! What a storage fault's address is (`docs/hash-mmu.md`): the report a data or
//! instruction storage or segment interrupt prints before the failure exit.

use crate::devtree::MemRange;
use crate::vector;

/// What the faulting address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// RAM that the linear map covers but whose page is loaned to the hypervisor.
    LoanedPage,
    /// RAM that should be mapped (a kernel bug, or a lost entry).
    MappedRam,
    /// Inside an MMIO range the kernel mapped.
    Mmio,
    /// Not RAM and not MMIO, below the top of RAM: a hole, never mapped.
    Unmapped,
    /// Above all RAM.
    BeyondRam,
}

impl FaultKind {
    /// The word the report prints.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::LoanedPage => "loaned page",
            FaultKind::MappedRam => "mapped RAM",
            FaultKind::Mmio => "MMIO",
            FaultKind::Unmapped => "unmapped",
            FaultKind::BeyondRam => "beyond RAM",
        }
    }
}

/// Classifies `addr` against RAM, the mapped MMIO ranges and a test for loaned pages.
pub fn classify(
    addr: u64,
    ram: &[MemRange],
    mmio: &[(u64, u64)],
    is_loaned: impl Fn(u64) -> bool,
) -> FaultKind {
    let inside = |base: u64, size: u64| addr >= base && addr - base < size;
    if mmio.iter().any(|&(b, s)| inside(b, s)) {
        return FaultKind::Mmio;
    }
    if ram.iter().any(|m| inside(m.base, m.size)) {
        return if is_loaned(addr >> 12) {
            FaultKind::LoanedPage
        } else {
            FaultKind::MappedRam
        };
    }
    if addr >= crate::devtree::platform::ram_top(ram) {
        FaultKind::BeyondRam
    } else {
        FaultKind::Unmapped
    }
}

/// The DSISR bits a report names.
pub fn dsisr_reason(dsisr: u64) -> &'static str {
    if dsisr & 0x4000_0000 != 0 {
        "no translation"
    } else if dsisr & 0x0800_0000 != 0 {
        "protection"
    } else if dsisr & 0x0020_0000 != 0 {
        "key or storage attribute"
    } else {
        "other"
    }
}

/// The storage interrupts whose report names the faulting address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// 0x300: the address is in DAR, the reason in DSISR.
    Data,
    /// 0x380: the address is in DAR.
    DataSegment,
    /// 0x400: the address is the instruction's, SRR0.
    Instruction,
    /// 0x480: the address is SRR0.
    InstructionSegment,
}

impl Storage {
    /// The storage interrupt taken at vector `v`, if it is one.
    pub fn from_vector(v: u64) -> Option<Storage> {
        Some(match v {
            vector::DATA_STORAGE => Storage::Data,
            vector::DATA_SEGMENT => Storage::DataSegment,
            vector::INSTRUCTION_STORAGE => Storage::Instruction,
            vector::INSTRUCTION_SEGMENT => Storage::InstructionSegment,
            _ => return None,
        })
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Storage::Data => "data storage",
            Storage::DataSegment => "data segment",
            Storage::Instruction => "instruction storage",
            Storage::InstructionSegment => "instruction segment",
        }
    }

    /// The faulting address: DAR for data, SRR0 for instructions.
    pub fn address(self, srr0: u64, dar: u64) -> u64 {
        match self {
            Storage::Data | Storage::DataSegment => dar,
            Storage::Instruction | Storage::InstructionSegment => srr0,
        }
    }
}

/// The report's line, printed without allocating (it runs on the way out of a
/// fault): `kind` is `None` when the linear map's state could not be read.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// Which interrupt.
    pub storage: Storage,
    /// SRR0, SRR1, DAR and DSISR as the handler saved them.
    pub srr0: u64,
    /// See `srr0`.
    pub srr1: u64,
    /// See `srr0`.
    pub dar: u64,
    /// See `srr0`.
    pub dsisr: u64,
    /// What the address is, if known.
    pub kind: Option<FaultKind>,
}

impl Report {
    /// The faulting address.
    pub fn address(&self) -> u64 {
        self.storage.address(self.srr0, self.dar)
    }
}

impl core::fmt::Display for Report {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let reason = if self.storage == Storage::Data {
            dsisr_reason(self.dsisr)
        } else {
            "-"
        };
        let (kind, note) = match self.kind {
            Some(k) => (k, ""),
            None => (FaultKind::Unmapped, " (no linear map)"),
        };
        write!(
            f,
            "storage fault: {} at {:#018x} DSISR={:#010x} ({reason}) SRR0={:#018x} SRR1={:#018x}: the address is {}{note}",
            self.storage.name(),
            self.address(),
            self.dsisr,
            self.srr0,
            self.srr1,
            kind.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind() {
        let ram = [
            MemRange {
                base: 0,
                size: 2 << 30,
            },
            MemRange {
                base: 2 << 30,
                size: 1 << 30,
            },
            MemRange {
                base: 4 << 30,
                size: 1 << 30,
            },
        ];
        let mmio = [(0x2000_8000_0000, 0x4000)];
        let loaned = |pfn: u64| pfn == 0x9_0000;
        assert_eq!(
            classify(0x9000_0040, &ram, &mmio, loaned),
            FaultKind::LoanedPage
        );
        assert_eq!(classify(0x1000, &ram, &mmio, loaned), FaultKind::MappedRam);
        assert_eq!(
            classify(0x2000_8000_3ff8, &ram, &mmio, loaned),
            FaultKind::Mmio
        );
        assert_eq!(
            classify(0x2000_8000_4000, &ram, &mmio, loaned),
            FaultKind::BeyondRam
        );
        assert_eq!(classify(3 << 30, &ram, &mmio, loaned), FaultKind::Unmapped);
        assert_eq!(classify(5 << 30, &ram, &mmio, loaned), FaultKind::BeyondRam);
        assert_eq!(FaultKind::BeyondRam.name(), "beyond RAM");
    }

    #[test]
    fn storage_vectors_and_their_addresses() {
        let v: Vec<_> = (0..0x1000u64)
            .step_by(0x80)
            .filter_map(|v| Storage::from_vector(v).map(|s| (v, s.name())))
            .collect();
        assert_eq!(
            v,
            [
                (0x300, "data storage"),
                (0x380, "data segment"),
                (0x400, "instruction storage"),
                (0x480, "instruction segment")
            ]
        );
        // The storage report and the exception report name a vector alike.
        for (v, name) in v {
            assert_eq!(crate::vector::name(v), name);
        }
        assert_eq!(Storage::Data.address(1, 2), 2);
        assert_eq!(Storage::DataSegment.address(1, 2), 2);
        assert_eq!(Storage::Instruction.address(1, 2), 1);
        assert_eq!(Storage::InstructionSegment.address(1, 2), 1);
    }

    #[test]
    fn the_report_line() {
        let r = Report {
            storage: Storage::Data,
            srr0: 0x40_1234,
            srr1: 0x8000_0000_0000_1032,
            dar: 0x9000_0040,
            dsisr: 0x4200_0000,
            kind: Some(FaultKind::LoanedPage),
        };
        assert_eq!(
            alloc::format!("{r}"),
            "storage fault: data storage at 0x0000000090000040 DSISR=0x42000000 (no translation) SRR0=0x0000000000401234 SRR1=0x8000000000001032: the address is loaned page"
        );
        let r = Report {
            storage: Storage::InstructionSegment,
            kind: None,
            ..r
        };
        assert_eq!(
            alloc::format!("{r}"),
            "storage fault: instruction segment at 0x0000000000401234 DSISR=0x42000000 (-) SRR0=0x0000000000401234 SRR1=0x8000000000001032: the address is unmapped (no linear map)"
        );
    }

    #[test]
    fn dsisr_reasons() {
        assert_eq!(dsisr_reason(0x4200_0000), "no translation");
        assert_eq!(dsisr_reason(0x0a00_0000), "protection");
        assert_eq!(dsisr_reason(0), "other");
    }
}
