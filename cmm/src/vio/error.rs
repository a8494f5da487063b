//! The one error type of the VIO accounting, with a `Display` the console prints
//! after `error: `.
//!
//! Every refused operation returns one of these and leaves the accounting, the
//! mappings and the TCE tables as they were, unless the variant says otherwise
//! ([`VioError::UnwindFailed`], [`VioError::EntitlementShortfall`],
//! [`VioError::EntitlementUnknown`] report something the hypervisor already did).

use alloc::string::String;
use core::fmt;

use hcall::HcallError;

/// Why a VIO operation was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VioError {
    /// The partition's entitlement cannot cover the spare plus every DMA device's
    /// minimum (Linux panics at boot in this case).
    InsufficientEntitlement {
        /// Bytes the spare and the device minimums need.
        needed: u64,
        /// Bytes the partition is entitled to.
        entitled: u64,
    },
    /// No device has this unit address.
    NoSuchDevice(u32),
    /// No device matches this name or hex unit address.
    UnknownUnit(String),
    /// Two devices share a unit address.
    DuplicateUnit(u32),
    /// The device has no `ibm,my-dma-window`, so it cannot map memory.
    NoDmaWindow(u32),
    /// The `ibm,my-dma-window` property could not be decoded.
    BadDmaWindow(&'static str),
    /// The device is already probed.
    AlreadyBound(u32),
    /// The device is not probed.
    NotBound(u32),
    /// The device is still probed (remove it before its node goes away).
    StillBound(u32),
    /// The device still has memory mapped (Linux BUGs here).
    DeviceBusy {
        /// The device.
        unit: u32,
        /// Bytes it still has mapped.
        allocated: u64,
    },
    /// A mapping needs more entitlement than the device can get.
    EntitlementExceeded {
        /// The device.
        unit: u32,
        /// Bytes asked for (rounded up to whole TCE pages).
        requested: u64,
        /// Bytes it could have had.
        available: u64,
    },
    /// An entitlement decrease below what the mapped memory and the minimums need.
    EntitlementInUse {
        /// The entitlement asked for.
        requested: u64,
        /// The lowest entitlement the accounting can accept now.
        minimum: u64,
    },
    /// The hypervisor granted less entitlement than the accounting can cover; the
    /// accounting holds the lowest value it can (`floor`).
    EntitlementShortfall {
        /// What the hypervisor reports.
        granted: u64,
        /// What the accounting now uses.
        floor: u64,
    },
    /// H_SET_MPP returned H_CONSTRAINED and H_GET_MPP then failed, so the granted
    /// entitlement is unknown; the accounting assumes the smaller of old and new.
    EntitlementUnknown {
        /// The entitlement the accounting now uses.
        assumed: u64,
        /// Why H_GET_MPP failed.
        source: HcallError,
    },
    /// The device's DMA window has no free range of this many TCE pages.
    WindowFull {
        /// The device.
        unit: u32,
        /// Pages asked for.
        pages: u64,
    },
    /// The page source had no free page left.
    OutOfPages,
    /// The page source returned an address that is not 4 KiB aligned.
    BadPage(u64),
    /// A mapping of zero bytes.
    ZeroSize,
    /// A value too large for the arithmetic (a desired of exabytes, say).
    Overflow,
    /// No mapping with this id on this device.
    NoSuchMapping {
        /// The device.
        unit: u32,
        /// The id asked for.
        id: u64,
    },
    /// An hcall failed (H_PUT_TCE, H_SET_MPP, ...).
    Hcall(HcallError),
    /// A mapping failed and clearing its TCEs failed too: the mapping is kept, still
    /// charged, under `id`, so `unmap` can be retried and no page is freed while a
    /// device may still reach it.
    UnwindFailed {
        /// The id the half-made mapping is kept under.
        id: u64,
        /// The H_PUT_TCE that made the mapping fail.
        source: HcallError,
    },
    /// The partition runs without CMO: there is no entitlement to change.
    CmoDisabled,
}

impl From<HcallError> for VioError {
    fn from(e: HcallError) -> Self {
        VioError::Hcall(e)
    }
}

impl fmt::Display for VioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use VioError::*;
        match self {
            InsufficientEntitlement { needed, entitled } => write!(
                f,
                "insufficient I/O entitlement: {entitled} bytes, need {needed}"
            ),
            NoSuchDevice(u) => write!(f, "no VIO device {u:x}"),
            UnknownUnit(s) => write!(f, "no VIO device '{s}'"),
            DuplicateUnit(u) => write!(f, "duplicate VIO unit address {u:x}"),
            NoDmaWindow(u) => write!(f, "VIO device {u:x} has no DMA window"),
            BadDmaWindow(why) => write!(f, "bad ibm,my-dma-window: {why}"),
            AlreadyBound(u) => write!(f, "VIO device {u:x} is already probed"),
            NotBound(u) => write!(f, "VIO device {u:x} is not probed"),
            StillBound(u) => write!(f, "VIO device {u:x} is still probed"),
            DeviceBusy { unit, allocated } => {
                write!(f, "VIO device {unit:x} still has {allocated} bytes mapped")
            }
            EntitlementExceeded {
                unit,
                requested,
                available,
            } => write!(
                f,
                "VIO device {unit:x}: {requested} bytes exceed the {available} available"
            ),
            EntitlementInUse { requested, minimum } => write!(
                f,
                "entitlement {requested} below the {minimum} bytes VIO needs"
            ),
            EntitlementShortfall { granted, floor } => write!(
                f,
                "hypervisor granted {granted} bytes of entitlement; VIO needs {floor}"
            ),
            EntitlementUnknown { assumed, source } => write!(
                f,
                "granted entitlement unknown ({source}); assuming {assumed}"
            ),
            WindowFull { unit, pages } => write!(
                f,
                "VIO device {unit:x}: no room for {pages} pages in its DMA window"
            ),
            OutOfPages => f.write_str("out of memory for DMA pages"),
            BadPage(a) => write!(f, "page address {a:#x} is not 4 KiB aligned"),
            ZeroSize => f.write_str("size must not be zero"),
            Overflow => f.write_str("value too large"),
            NoSuchMapping { unit, id } => {
                write!(f, "VIO device {unit:x} has no mapping {id}")
            }
            Hcall(e) => write!(f, "{e}"),
            UnwindFailed { id, source } => write!(
                f,
                "{source}; clearing its TCEs failed too, kept as mapping {id}"
            ),
            CmoDisabled => f.write_str("CMO is not enabled"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use hcall::HStatus;

    /// Every refusal names what it is about: the unit, the figure, the hcall.
    #[test]
    fn every_message_names_its_subject() {
        let h = HcallError {
            call: "H_PUT_TCE",
            status: HStatus::Hardware,
        };
        let cases: [(VioError, &[&str]); 23] = [
            (
                VioError::InsufficientEntitlement {
                    needed: 9,
                    entitled: 8,
                },
                &["entitlement", "8", "9"],
            ),
            (VioError::NoSuchDevice(0x7100_0002), &["71000002"]),
            (VioError::UnknownUnit("vty".into()), &["vty"]),
            (VioError::DuplicateUnit(0x30), &["duplicate", "30"]),
            (VioError::NoDmaWindow(0x31), &["31", "DMA window"]),
            (
                VioError::BadDmaWindow("too short"),
                &["ibm,my-dma-window", "too short"],
            ),
            (VioError::AlreadyBound(0x32), &["32", "already"]),
            (VioError::NotBound(0x33), &["33", "not probed"]),
            (VioError::StillBound(0x34), &["34", "still probed"]),
            (
                VioError::DeviceBusy {
                    unit: 0x35,
                    allocated: 4096,
                },
                &["35", "4096"],
            ),
            (
                VioError::EntitlementExceeded {
                    unit: 0x36,
                    requested: 8192,
                    available: 4096,
                },
                &["36", "8192", "4096"],
            ),
            (
                VioError::EntitlementInUse {
                    requested: 1,
                    minimum: 2,
                },
                &["1", "2"],
            ),
            (
                VioError::EntitlementShortfall {
                    granted: 3,
                    floor: 4,
                },
                &["3", "4"],
            ),
            (
                VioError::EntitlementUnknown {
                    assumed: 5,
                    source: h,
                },
                &["5", "H_PUT_TCE"],
            ),
            (
                VioError::WindowFull {
                    unit: 0x37,
                    pages: 6,
                },
                &["37", "6"],
            ),
            (VioError::OutOfPages, &["page"]),
            (VioError::BadPage(0x1234), &["1234"]),
            (VioError::ZeroSize, &["zero"]),
            (VioError::Overflow, &["large"]),
            (VioError::NoSuchMapping { unit: 0x38, id: 7 }, &["38", "7"]),
            (VioError::Hcall(h), &["H_PUT_TCE"]),
            (
                VioError::UnwindFailed { id: 8, source: h },
                &["8", "H_PUT_TCE"],
            ),
            (VioError::CmoDisabled, &["CMO"]),
        ];
        for (e, words) in cases {
            let text = e.to_string();
            for w in words {
                assert!(text.contains(w), "{e:?} says {text:?}, without {w:?}");
            }
        }
        assert_eq!(VioError::from(h), VioError::Hcall(h));
    }
}
