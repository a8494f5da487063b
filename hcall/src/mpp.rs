//! H_GET_MPP / H_GET_MPP_X result decoding (docs/cmo.md §2).

/// The decoded result of H_GET_MPP (r4..r10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MppData {
    /// r4: bytes of I/O-mappable entitlement.
    pub entitled_mem: u64,
    /// r5: bytes currently I/O mapped; `None` for the -1 "not applicable" sentinel.
    pub mapped_mem: Option<u64>,
    /// r6 bits 31..16.
    pub group_num: u16,
    /// r6 bits 15..0 (0xFFFF when dedicated).
    pub pool_num: u16,
    /// r7 bits 63..56.
    pub mem_weight: u8,
    /// r7 bits 55..48.
    pub unallocated_mem_weight: u8,
    /// r7 bits 47..0 (a 4 KiB-page count per LoPAR; printed raw).
    pub unallocated_entitlement: u64,
    /// r8: pool size in bytes; `None` for the -1 sentinel.
    pub pool_size: Option<u64>,
    /// r9: signed loan request in bytes (positive: please loan this much more).
    pub loan_request: i64,
    /// r10: bytes of physical memory backing the partition.
    pub backing_mem: u64,
}

/// The decoded result of H_GET_MPP_X (r4..r8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MppXData {
    /// r4: bytes of this partition's memory coalesced.
    pub coalesced_bytes: u64,
    /// r5: pool-wide coalesced bytes.
    pub pool_coalesced_bytes: u64,
    /// r6: PURR cycles spent coalescing.
    pub pool_purr_cycles: u64,
    /// r7: SPURR cycles spent coalescing.
    pub pool_spurr_cycles: u64,
    /// r8: pool bytes in use, net of savings (LoPAR 2.9).
    pub pool_in_use_bytes: u64,
}
