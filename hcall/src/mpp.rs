//! H_GET_MPP / H_GET_MPP_X result decoding (docs/cmo.md §2).

use core::fmt::{self, Write};

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

impl MppData {
    /// The `mpp` command's rows, `name: value`, in register order; the -1
    /// sentinels print as `n/a`.
    pub fn write_rows(&self, w: &mut impl Write) -> fmt::Result {
        writeln!(w, "entitled_mem: {}", self.entitled_mem)?;
        row_or_na(w, "mapped_mem", self.mapped_mem)?;
        writeln!(w, "group_num: {}", self.group_num)?;
        writeln!(w, "pool_num: {}", self.pool_num)?;
        writeln!(w, "mem_weight: {}", self.mem_weight)?;
        writeln!(w, "unallocated_mem_weight: {}", self.unallocated_mem_weight)?;
        writeln!(
            w,
            "unallocated_entitlement: {}",
            self.unallocated_entitlement
        )?;
        row_or_na(w, "pool_size", self.pool_size)?;
        writeln!(w, "loan_request: {}", self.loan_request)?;
        writeln!(w, "backing_mem: {}", self.backing_mem)
    }
}

/// `name: value`, or `name: n/a` for a -1 sentinel.
fn row_or_na(w: &mut impl Write, name: &str, v: Option<u64>) -> fmt::Result {
    match v {
        Some(v) => writeln!(w, "{name}: {v}"),
        None => writeln!(w, "{name}: n/a"),
    }
}

impl MppXData {
    /// The `mpp` command's H_GET_MPP_X rows, `name: value`.
    pub fn write_rows(&self, w: &mut impl Write) -> fmt::Result {
        writeln!(w, "coalesced_bytes: {}", self.coalesced_bytes)?;
        writeln!(w, "pool_coalesced_bytes: {}", self.pool_coalesced_bytes)?;
        writeln!(w, "pool_purr_cycles: {}", self.pool_purr_cycles)?;
        writeln!(w, "pool_spurr_cycles: {}", self.pool_spurr_cycles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn mpp_rows_in_register_order_with_n_a_for_the_sentinels() {
        let m = MppData {
            entitled_mem: 67_108_864,
            mapped_mem: None,
            group_num: 32773,
            pool_num: 0xffff,
            mem_weight: 128,
            unallocated_mem_weight: 7,
            unallocated_entitlement: 12,
            pool_size: None,
            loan_request: -36_864,
            backing_mem: 1_001_492_480,
        };
        let mut s = String::new();
        m.write_rows(&mut s).unwrap();
        assert_eq!(
            s,
            "entitled_mem: 67108864\nmapped_mem: n/a\ngroup_num: 32773\npool_num: 65535\n\
             mem_weight: 128\nunallocated_mem_weight: 7\nunallocated_entitlement: 12\n\
             pool_size: n/a\nloan_request: -36864\nbacking_mem: 1001492480\n"
        );
        let m = MppData {
            mapped_mem: Some(4096),
            pool_size: Some(3 << 30),
            ..m
        };
        let mut s = String::new();
        m.write_rows(&mut s).unwrap();
        assert!(s.contains("\nmapped_mem: 4096\n") && s.contains("\npool_size: 3221225472\n"));
    }

    #[test]
    fn mpp_x_rows() {
        let x = MppXData {
            coalesced_bytes: 1,
            pool_coalesced_bytes: 2,
            pool_purr_cycles: 3,
            pool_spurr_cycles: 4,
            pool_in_use_bytes: 5,
        };
        let mut s = String::new();
        x.write_rows(&mut s).unwrap();
        assert_eq!(
            s,
            "coalesced_bytes: 1\npool_coalesced_bytes: 2\npool_purr_cycles: 3\npool_spurr_cycles: 4\n"
        );
    }
}
