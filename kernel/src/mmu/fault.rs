//! What a storage fault's address is (`docs/hash-mmu.md`): the report a data or
//! instruction storage or segment interrupt prints before the failure exit.

use crate::devtree::MemRange;

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
    let top = ram
        .iter()
        .map(|m| m.base.saturating_add(m.size))
        .max()
        .unwrap_or(0);
    if addr >= top {
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
    fn dsisr_reasons() {
        assert_eq!(dsisr_reason(0x4200_0000), "no translation");
        assert_eq!(dsisr_reason(0x0a00_0000), "protection");
        assert_eq!(dsisr_reason(0), "other");
    }
}
