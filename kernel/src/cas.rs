//! `ibm,client-architecture-support` (CAS): the architecture vector an OS hands the
//! firmware to say what it supports (CMO included), and reading option vector 5
//! back to see what was granted. Pure bytes; the call that carries them and the
//! checks of its answer are [`crate::devtree::firmware::negotiate_cas`]. Facts:
//! `docs/cmo.md` §5.1.
//!
//! The argument, `ibm,architecture.vec` (LoPAR B.6.2.3), is:
//!
//! - a list of (mask, value) pairs of 32-bit PVRs the OS runs on, real ones
//!   (`PVR & mask == value & mask`) and logical ones (0x0f00000x, an ISA level);
//!   the list ends with a pair whose value has a bit set outside its mask;
//! - one byte, the number of option vectors minus one;
//! - the option vectors, each a length byte (its payload length minus one)
//!   followed by the payload, whose first byte LoPAR calls "byte 1".
//!
//! What the firmware granted from option vector 5 appears afterwards as
//! `/chosen/ibm,architecture-vec-5`, whose first byte is again a length, so its
//! byte N is at index N.

use alloc::vec::Vec;
use core::fmt;

/// Option vector 5, byte 4, bit 0 (0x80): Cooperative Memory Over-commitment.
pub const OV5_CMO_BYTE: usize = 4;
/// See [`OV5_CMO_BYTE`].
pub const OV5_CMO_BIT: u8 = 0x80;

/// The largest `ibm,architecture-vec-5` worth reading back.
pub const MAX_VEC5: usize = 256;

/// Logical PVRs: ISA 3.1, 3.0 and 2.07 compatibility modes.
const LOGICAL_PVRS: [u32; 3] = [0x0f00_0006, 0x0f00_0005, 0x0f00_0004];
/// The end of the PVR list: the value has bit 31 set, which its mask excludes.
/// (As a pair it also names the ISA 2.04-and-older logical PVRs.)
const PVR_LIST_END: (u32, u32) = (0xffff_fffe, 0x0f00_0001);

/// Builds `ibm,architecture.vec` for a processor whose PVR is `pvr`.
pub fn architecture_vector(pvr: u32) -> Vec<u8> {
    let vectors: [&[u8]; 5] = [&OV1, &OV2, &OV3, &OV4, &OV5];
    let mut v = Vec::with_capacity(5 * 8 + 1 + vectors.iter().map(|p| 1 + p.len()).sum::<usize>());
    let pair = |v: &mut Vec<u8>, mask: u32, value: u32| {
        v.extend_from_slice(&mask.to_be_bytes());
        v.extend_from_slice(&value.to_be_bytes());
    };
    // This processor's family (raw mode), then the compatibility levels.
    pair(&mut v, 0xffff_0000, pvr & 0xffff_0000);
    for l in LOGICAL_PVRS {
        pair(&mut v, 0xffff_ffff, l);
    }
    pair(&mut v, PVR_LIST_END.0, PVR_LIST_END.1);

    v.push(4); // five vectors
    for payload in vectors {
        // Every payload is 1..=256 bytes long (constants below).
        v.push(u8::try_from(payload.len() - 1).unwrap_or(0));
        v.extend_from_slice(payload);
    }
    v
}

/// Option vector 1: byte 1 none ignored; byte 2 ISA 2.06 (0x02) and 2.07 (0x01);
/// byte 3 ISA 3.00 (0x80) and 3.1 (0x40).
const OV1: [u8; 3] = [0x00, 0x03, 0xc0];

/// Option vector 2 (memory): no preferences ("don't care" is all ones) except a
/// minimum real-mode area of 64 MiB, where the kernel image lives.
const OV2: [u8; 33] = {
    let mut v = [0u8; 33];
    // byte 1 flags, bytes 2-3 reserved, then 32-bit fields: real base, real
    // size, virtual base, virtual size, load base, min RMA (MiB), min load.
    let fields: [u32; 7] = [
        u32::MAX,
        u32::MAX,
        u32::MAX,
        u32::MAX,
        u32::MAX,
        64,
        u32::MAX,
    ];
    let mut i = 0;
    while i < fields.len() {
        let b = fields[i].to_be_bytes();
        let at = 3 + 4 * i;
        v[at] = b[0];
        v[at + 1] = b[1];
        v[at + 2] = b[2];
        v[at + 3] = b[3];
        i += 1;
    }
    // min RMA percent of memory: none; max log2 of the hash table size: 48.
    v[31] = 0;
    v[32] = 48;
    v
};

/// Option vector 3: byte 2 floating point (0x80) and VMX (0x40): the kernel's
/// `core` uses both.
const OV3: [u8; 2] = [0x00, 0xc0];

/// Option vector 4: no processor entitlement requirements.
const OV4: [u8; 1] = [0x00];

/// Option vector 5: byte 2 LPAR (0x80) and shared-processor LPAR (0x40); byte 4
/// CMO (0x80); bytes 9-12 the most processors used (1); byte 23 zero (XICS
/// interrupts); byte 24 zero (hash page table MMU).
const OV5: [u8; 24] = {
    let mut v = [0u8; 24];
    v[1] = 0xc0;
    v[OV5_CMO_BYTE - 1] = OV5_CMO_BIT;
    v[11] = 1;
    v
};

/// What CAS granted: `/chosen/ibm,architecture-vec-5` read back after the call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Granted {
    /// The property's bytes (empty if absent); byte N of the vector at index N.
    pub vec5: Vec<u8>,
}

impl Granted {
    /// Whether the firmware granted CMO.
    pub fn cmo(&self) -> bool {
        self.vec5
            .get(OV5_CMO_BYTE)
            .is_some_and(|b| b & OV5_CMO_BIT != 0)
    }
}

/// `ibm,architecture-vec-5 = [<hex>]: CMO granted|not granted`, for the boot log.
impl fmt::Display for Granted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ibm,architecture-vec-5 = [")?;
        for b in &self.vec5 {
            write!(f, "{b:02x}")?;
        }
        let cmo = if self.cmo() { "granted" } else { "not granted" };
        write!(f, "]: CMO {cmo}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// The whole vector for a POWER9 (PVR 0x004e1202), written out from LoPAR's
    /// layout byte by byte rather than from the constants above.
    #[rustfmt::skip]
    const POWER9: [u8; 109] = [
        // PVR pairs: the POWER9 family, ISA 3.1, 3.0, 2.07, then the end marker.
        0xff, 0xff, 0x00, 0x00,  0x00, 0x4e, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff,  0x0f, 0x00, 0x00, 0x06,
        0xff, 0xff, 0xff, 0xff,  0x0f, 0x00, 0x00, 0x05,
        0xff, 0xff, 0xff, 0xff,  0x0f, 0x00, 0x00, 0x04,
        0xff, 0xff, 0xff, 0xfe,  0x0f, 0x00, 0x00, 0x01,
        // Five option vectors.
        0x04,
        // OV1: 3 bytes.
        0x02, 0x00, 0x03, 0xc0,
        // OV2: 33 bytes: flags, 2 reserved, real base, real size, virtual base,
        // virtual size, load base (all "don't care"), min RMA 64 MiB, min load,
        // min RMA percent 0, max hash table log2 48.
        0x20, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff,  0xff, 0xff, 0xff, 0xff,  0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff,  0xff, 0xff, 0xff, 0xff,  0x00, 0x00, 0x00, 0x40,
        0xff, 0xff, 0xff, 0xff,  0x00, 0x30,
        // OV3: FP and VMX.
        0x01, 0x00, 0xc0,
        // OV4: nothing.
        0x00, 0x00,
        // OV5: 24 bytes: LPAR + SPLPAR, CMO in byte 4, one processor in bytes 9-12.
        0x17,
        0x00, 0xc0, 0x00, 0x80,  0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn power9_vector_byte_for_byte() {
        assert_eq!(architecture_vector(0x004e_1202), POWER9);
    }

    #[test]
    fn only_the_family_of_the_pvr_goes_in() {
        // POWER10 (0x0080_0200): the first pair names its family; the revision is
        // masked off; every other byte is the same as for POWER9.
        let v = architecture_vector(0x0080_0200);
        assert_eq!(v[..8], [0xff, 0xff, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00]);
        assert_eq!(v[8..], POWER9[8..]);
        assert_eq!(architecture_vector(0x0080_ffff), v);
    }

    #[test]
    fn option_vector_lengths_walk_to_the_end() {
        // A reader of the vector (the firmware) finds five vectors and the end.
        let v = architecture_vector(0x004e_1202);
        let mut at = 0;
        while u32::from_be_bytes(v[at + 4..at + 8].try_into().unwrap())
            & !u32::from_be_bytes(v[at..at + 4].try_into().unwrap())
            == 0
        {
            at += 8;
        }
        at += 8;
        let count = usize::from(v[at]) + 1;
        at += 1;
        let mut lens = vec![];
        for _ in 0..count {
            let len = usize::from(v[at]) + 1;
            lens.push(len);
            at += 1 + len;
        }
        assert_eq!(lens, [3, 33, 2, 1, 24]);
        assert_eq!(at, v.len());
        // Option vector 5's byte 4 carries CMO: in a vector read back from
        // /chosen (length byte first) that is index 4.
        let ov5 = &v[v.len() - 25..];
        assert_eq!(ov5[OV5_CMO_BYTE] & OV5_CMO_BIT, OV5_CMO_BIT);
    }

    #[test]
    fn cmo_granted_only_when_byte_4_bit_0_is_set() {
        let g = |v: &[u8]| Granted { vec5: v.to_vec() }.cmo();
        assert!(g(&[0x17, 0x00, 0xc0, 0x00, 0x80]));
        assert!(g(&[0x17, 0x00, 0x00, 0x00, 0xff, 0x00]));
        assert!(!g(&[0x17, 0x00, 0xc0, 0x00, 0x7f]));
        assert!(!g(&[0x17, 0x80, 0x80, 0x80]));
        assert!(!g(&[]));
        assert!(!Granted::default().cmo());
    }

    #[test]
    fn granted_is_logged_as_hex_and_verdict() {
        let g = Granted {
            vec5: vec![0x17, 0x00, 0xc0, 0x00, 0x80],
        };
        assert_eq!(
            g.to_string(),
            "ibm,architecture-vec-5 = [1700c00080]: CMO granted"
        );
        assert_eq!(
            Granted::default().to_string(),
            "ibm,architecture-vec-5 = []: CMO not granted"
        );
    }
}
