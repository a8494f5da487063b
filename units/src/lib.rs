//! Numbers and sizes as a console types them, parsed once for every crate of
//! lpar-cmm that reads them (the kernel's shell and boot arguments, `cmm set`, the
//! pool model's `hv` commands, the pool manager's configuration):
//!
//! - a number is decimal, or hexadecimal after `0x`/`0X`: no sign, no separators,
//!   at most 64 bits;
//! - a size is a number of bytes with an optional `K`, `M` or `G` suffix (KiB, MiB,
//!   GiB; either case);
//! - a count is a size that must be a whole number of some unit (a page).
//!
//! Every refusal is a [`NumberError`] whose text is the console's ("not a number",
//! "number too large", "size is not a multiple of 4 KiB"), so the same mistake gets
//! the same words whichever command it was typed to.
//!
//! ```
//! use lpar_units::{parse_count, parse_number, parse_size, NumberError};
//!
//! assert_eq!(parse_number("0x2a"), Ok(42));
//! assert_eq!(parse_size("16M"), Ok(16 << 20));
//! assert_eq!(parse_count("8K", 4096), Ok(2));
//! assert_eq!(parse_number("12a").unwrap_err().to_string(), "not a number");
//! assert_eq!(
//!     parse_count("6K", 4096),
//!     Err(NumberError::NotMultiple { unit: 4096 })
//! );
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Why a number, size or count was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Empty, or not digits of the base: "not a number".
    Invalid,
    /// Does not fit 64 bits (or the range the caller allows): "number too large".
    Overflow,
    /// A count of `unit`-byte units was asked for and the size is not a whole
    /// number of them.
    NotMultiple {
        /// The unit, in bytes.
        unit: u64,
    },
}

impl NumberError {
    /// The words for [`NumberError::Invalid`] and [`NumberError::Overflow`], for a
    /// caller whose errors carry static text; `None` for
    /// [`NumberError::NotMultiple`], which names its unit.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            NumberError::Invalid => Some("not a number"),
            NumberError::Overflow => Some("number too large"),
            NumberError::NotMultiple { .. } => None,
        }
    }
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NumberError::NotMultiple { unit } if unit >= 1024 && unit % 1024 == 0 => {
                write!(f, "size is not a multiple of {} KiB", unit / 1024)
            }
            NumberError::NotMultiple { unit } => {
                write!(f, "size is not a multiple of {unit} bytes")
            }
            e => f.write_str(e.as_str().unwrap_or_default()),
        }
    }
}

/// Parses `<n>`: decimal, or hexadecimal with a `0x` (or `0X`) prefix.
pub fn parse_number(s: &str) -> Result<u64, NumberError> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(NumberError::Invalid);
    }
    u64::from_str_radix(digits, radix).map_err(|_| NumberError::Overflow)
}

/// Parses `<size>` in bytes: a number with an optional `K`, `M` or `G` suffix.
pub fn parse_size(s: &str) -> Result<u64, NumberError> {
    let (body, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n = parse_number(body)?;
    n.checked_mul(1u64 << shift).ok_or(NumberError::Overflow)
}

/// Parses a `<size>` that must be a whole number of `unit`-byte units (a page);
/// returns the number of units. A `unit` of 0 refuses everything as
/// [`NumberError::NotMultiple`].
pub fn parse_count(s: &str, unit: u64) -> Result<u64, NumberError> {
    let bytes = parse_size(s)?;
    match bytes.checked_rem(unit) {
        Some(0) => Ok(bytes / unit),
        _ => Err(NumberError::NotMultiple { unit }),
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    extern crate std;

    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("42"), Ok(42));
        assert_eq!(parse_number("0x2a"), Ok(42));
        assert_eq!(parse_number("0X2A"), Ok(42));
        assert_eq!(parse_number("007"), Ok(7));
        for bad in [
            "", "0x", "-1", "+1", "12a", " 1", "1 ", "1_000", "0x-1", "٣",
        ] {
            assert_eq!(parse_number(bad), Err(NumberError::Invalid), "{bad:?}");
        }
        assert_eq!(parse_number("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_number("18446744073709551616"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            parse_number("0x10000000000000000"),
            Err(NumberError::Overflow)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("0x10M"), Ok(16 << 20));
        assert_eq!(parse_size("M"), Err(NumberError::Invalid));
        assert_eq!(parse_size("1T"), Err(NumberError::Invalid));
        assert_eq!(parse_size("1KK"), Err(NumberError::Invalid));
        assert_eq!(parse_size("16777216T"), Err(NumberError::Invalid));
        assert_eq!(parse_size("17179869184G"), Err(NumberError::Overflow));
        assert_eq!(parse_size("17179869183G"), Ok(17_179_869_183 << 30));
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("8K", 4096), Ok(2));
        assert_eq!(parse_count("0", 4096), Ok(0));
        assert_eq!(
            parse_count("100", 4096),
            Err(NumberError::NotMultiple { unit: 4096 })
        );
        assert_eq!(parse_count("x", 4096), Err(NumberError::Invalid));
        assert_eq!(
            parse_count("1", 0),
            Err(NumberError::NotMultiple { unit: 0 })
        );
        assert_eq!(parse_count("3", 3), Ok(1));
    }

    #[test]
    fn the_console_words() {
        assert_eq!(NumberError::Invalid.to_string(), "not a number");
        assert_eq!(NumberError::Overflow.to_string(), "number too large");
        assert_eq!(
            NumberError::NotMultiple { unit: 4096 }.to_string(),
            "size is not a multiple of 4 KiB"
        );
        assert_eq!(
            NumberError::NotMultiple { unit: 512 }.to_string(),
            "size is not a multiple of 512 bytes"
        );
        assert_eq!(NumberError::NotMultiple { unit: 4096 }.as_str(), None);
    }

    /// The parsers the crate replaced, kept here as the oracle: the pool model's
    /// and `cmm set`'s (the same digits test, then `from_str_radix`), the
    /// kernel's page count (size, then divisible by 4096).
    fn old_number(s: &str) -> Option<u64> {
        let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => (h, 16),
            None => (s, 10),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        u64::from_str_radix(digits, radix).ok()
    }

    fn old_size(s: &str) -> Option<u64> {
        let (body, shift) = match s.as_bytes().last() {
            Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
            Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
            Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
            _ => (s, 0),
        };
        old_number(body)?.checked_mul(1u64 << shift)
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,24}", unit in 0u64..10_000) {
            let _ = parse_number(&s);
            let _ = parse_size(&s);
            let _ = parse_count(&s, unit);
        }

        /// What the old callers accepted keeps its value; what they refused is
        /// still refused.
        #[test]
        fn the_old_callers_inputs_keep_their_values(
            s in "(0[xX])?[0-9a-fA-F]{0,20}[kKmMgG]?|.{0,8}"
        ) {
            proptest::prop_assert_eq!(parse_number(&s).ok(), old_number(&s));
            proptest::prop_assert_eq!(parse_size(&s).ok(), old_size(&s));
            proptest::prop_assert_eq!(
                parse_count(&s, 4096).ok(),
                old_size(&s).filter(|b| b % 4096 == 0).map(|b| b / 4096)
            );
        }

        #[test]
        fn round_trip(n in 0u64..(1 << 40)) {
            proptest::prop_assert_eq!(parse_number(&format!("{n}")), Ok(n));
            proptest::prop_assert_eq!(parse_size(&format!("{n:#x}")), Ok(n));
            proptest::prop_assert_eq!(parse_size(&format!("{n}K")), Ok(n << 10));
            proptest::prop_assert_eq!(parse_count(&format!("{n}K"), 1024), Ok(n));
        }
    }
}
