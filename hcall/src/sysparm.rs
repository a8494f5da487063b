//! RTAS `ibm,get-system-parameter` work areas: CMO characteristics (token 44) and the
//! SPLPAR characteristics' `DesMem` (token 20).
//!
//! A work area is a 2-byte big-endian length followed by an ASCII string of
//! comma-separated `key=value` pairs, possibly NUL-terminated. The string is bounded
//! by the length prefix, the buffer length and the first NUL, whichever comes first.
//!
//! Parse rules (docs/cmo.md §5.2, §5.3): keys match exactly (surrounding ASCII
//! blanks are ignored); unknown keys are ignored whatever their value; empty segments
//! (`,,`, a trailing comma) are skipped; a segment without `=` stops parsing and what
//! was parsed before it is kept (as Linux does). Unlike Linux, the last pair counts
//! even without a trailing comma. A non-numeric value of a known key, or a
//! `CMOPageSize` outside 1..=63, is an error. Nothing here panics on any input.

use core::fmt;

/// `ibm,get-system-parameter` token of the SPLPAR characteristics string.
pub const SPLPAR_CHARACTERISTICS: u32 = 20;
/// `ibm,get-system-parameter` token of the CMO characteristics string.
pub const CMO_CHARACTERISTICS: u32 = 44;
/// A work area size that holds any parameter (2-byte length + 1024 bytes), as Linux uses.
pub const SYSPARM_AREA_LEN: usize = 1026;

/// Why a work area could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysparmError {
    /// Shorter than the 2-byte length prefix.
    Truncated,
    /// A known key's value is not a decimal number (or does not fit).
    BadNumber {
        /// The key.
        key: &'static str,
    },
    /// `CMOPageSize` is outside 1..=63.
    BadPageSize(i64),
}

impl fmt::Display for SysparmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysparmError::Truncated => {
                f.write_str("system parameter shorter than its length prefix")
            }
            SysparmError::BadNumber { key } => write!(f, "system parameter {key} is not a number"),
            SysparmError::BadPageSize(v) => write!(f, "CMOPageSize {v} out of range 1..=63"),
        }
    }
}

/// The string of a work area: after the length prefix, bounded by the prefix, the
/// buffer and the first NUL.
pub fn payload(area: &[u8]) -> Result<&[u8], SysparmError> {
    let (prefix, rest) = match area {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return Err(SysparmError::Truncated),
    };
    let len = usize::from(prefix).min(rest.len());
    let s = &rest[..len];
    Ok(match s.iter().position(|&c| c == 0) {
        Some(nul) => &s[..nul],
        None => s,
    })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !first.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !last.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    s
}

/// The `key=value` pairs of a string (trimmed), stopping at the first segment that
/// has no `=`.
pub fn pairs(s: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    s.split(|&c| c == b',')
        .map(trim)
        .filter(|seg| !seg.is_empty())
        .map_while(|seg| {
            let eq = seg.iter().position(|&c| c == b'=')?;
            Some((trim(&seg[..eq]), trim(&seg[eq + 1..])))
        })
}

/// Parses a signed decimal (`-1`, `+12`, `65535`); `None` if malformed or out of range.
pub fn parse_i64(v: &[u8]) -> Option<i64> {
    let (neg, digits) = match v {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, v),
    };
    if digits.is_empty() {
        return None;
    }
    let mut acc: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = i64::from(c - b'0');
        acc = acc.checked_mul(10)?;
        acc = if neg {
            acc.checked_sub(d)?
        } else {
            acc.checked_add(d)?
        };
    }
    Some(acc)
}

/// The CMO characteristics (parameter 44).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmoCharacteristics {
    /// log2 of the hypervisor's CMO page size (`CMOPageSize`, default 12).
    pub page_shift: u8,
    /// Primary paging service partition (`PrPSP`, -1 = none).
    pub primary_psp: i64,
    /// Secondary paging service partition (`SecPSP`, -1 = none).
    pub secondary_psp: i64,
}

impl Default for CmoCharacteristics {
    /// CMO off: no paging service partition, 4 KiB pages.
    fn default() -> Self {
        CmoCharacteristics {
            page_shift: 12,
            primary_psp: -1,
            secondary_psp: -1,
        }
    }
}

impl CmoCharacteristics {
    /// CMO is on iff there is a primary or a secondary paging service partition.
    pub fn enabled(&self) -> bool {
        self.primary_psp != -1 || self.secondary_psp != -1
    }

    /// The CMO page size in bytes.
    pub fn page_size(&self) -> u64 {
        1u64.checked_shl(u32::from(self.page_shift)).unwrap_or(0)
    }

    /// Parses a parameter-44 work area.
    pub fn parse(area: &[u8]) -> Result<Self, SysparmError> {
        Self::parse_str(payload(area)?)
    }

    /// Parses the string of a parameter-44 work area (without the length prefix).
    pub fn parse_str(s: &[u8]) -> Result<Self, SysparmError> {
        let mut c = CmoCharacteristics::default();
        for (key, value) in pairs(s) {
            let number =
                |key: &'static str| parse_i64(value).ok_or(SysparmError::BadNumber { key });
            match key {
                b"CMOPageSize" => {
                    let v = number("CMOPageSize")?;
                    c.page_shift = u8::try_from(v)
                        .ok()
                        .filter(|s| (1..=63).contains(s))
                        .ok_or(SysparmError::BadPageSize(v))?;
                }
                b"PrPSP" => c.primary_psp = number("PrPSP")?,
                b"SecPSP" => c.secondary_psp = number("SecPSP")?,
                _ => {}
            }
        }
        Ok(c)
    }
}

/// `DesMem` (desired memory, MB) from a parameter-20 work area; `Ok(None)` when absent.
pub fn parse_des_mem(area: &[u8]) -> Result<Option<u64>, SysparmError> {
    parse_des_mem_str(payload(area)?)
}

/// `DesMem` from the string of a parameter-20 work area (without the length prefix).
pub fn parse_des_mem_str(s: &[u8]) -> Result<Option<u64>, SysparmError> {
    let mut des = None;
    for (key, value) in pairs(s) {
        if key == b"DesMem" {
            let v = parse_i64(value)
                .and_then(|v| u64::try_from(v).ok())
                .ok_or(SysparmError::BadNumber { key: "DesMem" })?;
            des = Some(v);
        }
    }
    Ok(des)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn area(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&u16::try_from(s.len()).unwrap().to_be_bytes());
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn cmo_on_with_4k_pages() {
        let c = CmoCharacteristics::parse(&area(b"CMOPageSize=12,PrPSP=1,SecPSP=-1\0")).unwrap();
        assert!(c.enabled());
        assert_eq!(c.page_size(), 4096);
        assert_eq!((c.primary_psp, c.secondary_psp), (1, -1));
    }

    #[test]
    fn cmo_off_when_both_psps_absent_or_minus_one() {
        let c = CmoCharacteristics::parse(&area(b"CMOPageSize=12,PrPSP=-1,SecPSP=-1,")).unwrap();
        assert!(!c.enabled());
        let c = CmoCharacteristics::parse(&area(b"CMOPageSize=16")).unwrap();
        assert!(!c.enabled());
        assert_eq!(c.page_size(), 65536);
        let c = CmoCharacteristics::parse(&area(b"")).unwrap();
        assert_eq!(c, CmoCharacteristics::default());
        assert!(!c.enabled());
        // Only the secondary is enough; 65535 is not -1.
        assert!(CmoCharacteristics::parse_str(b"SecPSP=65535")
            .unwrap()
            .enabled());
    }

    #[test]
    fn last_pair_without_comma_is_honoured() {
        // Linux would drop PrPSP here and report CMO off.
        let c = CmoCharacteristics::parse(&area(b"CMOPageSize=12,PrPSP=1")).unwrap();
        assert!(c.enabled());
        assert_eq!(c.primary_psp, 1);
    }

    #[test]
    fn missing_equals_stops_parsing_and_keeps_earlier_pairs() {
        let c = CmoCharacteristics::parse_str(b"PrPSP=3,garbage,SecPSP=4").unwrap();
        assert_eq!((c.primary_psp, c.secondary_psp), (3, -1));
    }

    #[test]
    fn unknown_keys_and_blank_segments_are_ignored() {
        let c = CmoCharacteristics::parse_str(b" Foo=bar ,, PrPSP = 2 ,XCMO=yes,").unwrap();
        assert_eq!(c.primary_psp, 2);
        // Keys are case-sensitive.
        let c = CmoCharacteristics::parse_str(b"prpsp=2").unwrap();
        assert!(!c.enabled());
    }

    #[test]
    fn bad_values_are_errors() {
        for (s, e) in [
            (&b"CMOPageSize=0"[..], SysparmError::BadPageSize(0)),
            (b"CMOPageSize=64", SysparmError::BadPageSize(64)),
            (b"CMOPageSize=-12", SysparmError::BadPageSize(-12)),
            (
                b"CMOPageSize=99999999999",
                SysparmError::BadPageSize(99_999_999_999),
            ),
            (
                b"CMOPageSize=x",
                SysparmError::BadNumber { key: "CMOPageSize" },
            ),
            (b"PrPSP=", SysparmError::BadNumber { key: "PrPSP" }),
            (b"PrPSP=1x", SysparmError::BadNumber { key: "PrPSP" }),
            (b"SecPSP=--1", SysparmError::BadNumber { key: "SecPSP" }),
            (
                b"SecPSP=99999999999999999999",
                SysparmError::BadNumber { key: "SecPSP" },
            ),
        ] {
            assert_eq!(
                CmoCharacteristics::parse_str(s),
                Err(e),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
        assert_eq!(
            CmoCharacteristics::parse_str(b"CMOPageSize=63")
                .unwrap()
                .page_size(),
            1 << 63
        );
        assert_eq!(
            CmoCharacteristics::parse_str(b"CMOPageSize=1")
                .unwrap()
                .page_size(),
            2
        );
    }

    #[test]
    fn payload_bounds() {
        assert_eq!(payload(&[]), Err(SysparmError::Truncated));
        assert_eq!(payload(&[0]), Err(SysparmError::Truncated));
        assert_eq!(payload(&[0, 0]), Ok(&b""[..]));
        // Length shorter than the data: the prefix wins.
        assert_eq!(payload(b"\x00\x03PrPSP=1"), Ok(&b"PrP"[..]));
        // Length longer than the buffer: the buffer wins.
        assert_eq!(payload(b"\xFF\xFFPrPSP=1"), Ok(&b"PrPSP=1"[..]));
        // A NUL wins over both.
        assert_eq!(payload(b"\x00\x20PrPSP=1\0SecPSP=2"), Ok(&b"PrPSP=1"[..]));
        // No NUL, length exact.
        let c = CmoCharacteristics::parse(b"\x00\x07PrPSP=5SecPSP=6").unwrap();
        assert_eq!((c.primary_psp, c.secondary_psp), (5, -1));
        // Truncated in the middle of a value: what is there is parsed.
        let c = CmoCharacteristics::parse(b"\x00\x08PrPSP=12345").unwrap();
        assert_eq!(c.primary_psp, 12);
    }

    #[test]
    fn des_mem() {
        let a = area(b"MaxEntCap=400,DesMem=2048,DesProcs=4,MaxPlatProcs=8\0");
        assert_eq!(parse_des_mem(&a), Ok(Some(2048)));
        assert_eq!(
            parse_des_mem(&area(b"MaxEntCap=400,DesMem=1024")),
            Ok(Some(1024))
        );
        assert_eq!(parse_des_mem(&area(b"MaxEntCap=400")), Ok(None));
        assert_eq!(
            parse_des_mem(&area(b"DesMem=-1")),
            Err(SysparmError::BadNumber { key: "DesMem" })
        );
        assert_eq!(parse_des_mem(&area(b"Junk=x y,DesMem=8")), Ok(Some(8)));
        assert_eq!(parse_des_mem(&[1]), Err(SysparmError::Truncated));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"+7"), Some(7));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"1 2"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = CmoCharacteristics::parse(&bytes);
            let _ = parse_des_mem(&bytes);
            let _ = CmoCharacteristics::parse_str(&bytes);
        }

        #[test]
        fn keyish_garbage_never_panics(s in "[A-Za-z=,0-9+ -]{0,80}") {
            let _ = CmoCharacteristics::parse(&area(s.as_bytes()));
            let _ = parse_des_mem(&area(s.as_bytes()));
        }

        #[test]
        fn well_formed_strings_parse(
            shift in 1u8..=63,
            pr in -1i64..70000,
            sec in -1i64..70000,
            order in 0usize..6,
            trailing_comma: bool,
            nul: bool,
            extra in "[A-Z][a-z]{0,6}",
        ) {
            let mut parts = [
                alloc::format!("CMOPageSize={shift}"),
                alloc::format!("PrPSP={pr}"),
                alloc::format!("SecPSP={sec}"),
            ];
            parts.rotate_left(order % 3);
            if order >= 3 {
                parts.swap(0, 1);
            }
            let mut s = alloc::format!("{}={},", extra, "v")
                + &parts.join(",");
            if trailing_comma {
                s.push(',');
            }
            if nul {
                s.push('\0');
                s.push_str("PrPSP=999");
            }
            let c = CmoCharacteristics::parse(&area(s.as_bytes())).unwrap();
            prop_assert_eq!(c.page_shift, shift);
            prop_assert_eq!(c.primary_psp, pr);
            prop_assert_eq!(c.secondary_psp, sec);
            prop_assert_eq!(c.enabled(), pr != -1 || sec != -1);
        }
    }
}
