//! Free page reporting on the balloon (feature `VIRTIO_BALLOON_F_REPORTING`,
//! docs/free-page-reporting.md): the feature bit, which queue carries the
//! reports, and how a report's ranges become the descriptors of one chain of
//! device-writable buffers. The decision of what to report is `cmm`'s
//! ([`cmm::reporting`]); the glue's legacy driver puts these together and
//! implements [`cmm::FreeReporter`].

use cmm::ReportRange;

use super::stats::F_STATS_VQ;

/// Feature bit 5: the device takes free-page reports (QEMU:
/// `-device virtio-balloon-pci,free-page-reporting=on`).
pub const F_REPORTING: u32 = 1 << 5;

/// The features lpar-cmm accepts of those the device offers: statistics and
/// free-page reporting, nothing else (no page poisoning: QEMU then discards
/// reported ranges).
pub fn accepted_features(offered: u32) -> u32 {
    offered & (F_STATS_VQ | F_REPORTING)
}

/// How many queues the accepted features give: inflate and deflate, then the
/// statistics queue, then the reporting queue, each only when negotiated
/// (queues are numbered in the order of the features).
pub fn queue_count(accepted: u32) -> u16 {
    2 + u16::from(accepted & F_STATS_VQ != 0) + u16::from(accepted & F_REPORTING != 0)
}

/// The reporting queue's index, if reporting was negotiated.
pub fn reporting_queue(accepted: u32) -> Option<u16> {
    (accepted & F_REPORTING != 0).then(|| queue_count(accepted) - 1)
}

/// Most ranges lpar-cmm puts in one report (the descriptor buffer's size); the
/// queue's size may lower it.
pub const MAX_RANGES: usize = 128;

/// Writes the (address, length) of each of `ranges` to `out`; returns how many,
/// or `None` (nothing usable) if there are more than `out` holds or a length
/// does not fit a descriptor.
pub fn descriptors(ranges: &[ReportRange], out: &mut [(u64, u32)]) -> Option<usize> {
    if ranges.len() > out.len() {
        return None;
    }
    for (o, r) in out.iter_mut().zip(ranges) {
        *o = (r.addr, u32::try_from(r.len).ok()?);
    }
    Some(ranges.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_and_queue_numbers() {
        // QEMU 7.2's offer with free-page-reporting=on: STATS_VQ, PAGE_POISON,
        // REPORTING and the transport bits.
        let offered = 0x7900_0032;
        assert_eq!(accepted_features(offered), F_STATS_VQ | F_REPORTING);
        assert_eq!(accepted_features(0x7900_0012), F_STATS_VQ);
        assert_eq!(queue_count(F_STATS_VQ | F_REPORTING), 4);
        assert_eq!(reporting_queue(F_STATS_VQ | F_REPORTING), Some(3));
        assert_eq!(reporting_queue(F_REPORTING), Some(2));
        assert_eq!(reporting_queue(F_STATS_VQ), None);
        assert_eq!(queue_count(0), 2);
    }

    #[test]
    fn ranges_become_descriptors() {
        let r = |addr, len| ReportRange { addr, len };
        let mut out = [(0, 0); 2];
        assert_eq!(
            descriptors(
                &[r(0x20_0000, 0x20_0000), r(0x40_0000, 0x20_0000)],
                &mut out
            ),
            Some(2)
        );
        assert_eq!(out, [(0x20_0000, 0x20_0000), (0x40_0000, 0x20_0000)]);
        assert_eq!(descriptors(&[r(0, 1); 3], &mut out), None, "too many");
        assert_eq!(descriptors(&[r(0, 1 << 32)], &mut out), None, "too long");
    }
}
