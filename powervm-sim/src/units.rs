//! Numbers and sizes as the console contract writes them: decimal or `0x` hex,
//! sizes with an optional `K`, `M` or `G` suffix (KiB, MiB, GiB). Shared by the
//! kernel's shell and the pool model's `hv` commands.

use core::fmt;

/// Why a number or size was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Empty, or not digits of the base.
    Invalid,
    /// Does not fit 64 bits.
    Overflow,
    /// A page count was asked for and the size is not a multiple of 4 KiB.
    NotPageMultiple,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberError::Invalid => "not a number",
            NumberError::Overflow => "number too large",
            NumberError::NotPageMultiple => "size is not a multiple of 4 KiB",
        })
    }
}

/// Parses `<n>`: decimal, or hex with a `0x` prefix.
pub fn parse_number(s: &str) -> Result<u64, NumberError> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("42"), Ok(42));
        assert_eq!(parse_number("0x2a"), Ok(42));
        assert_eq!(parse_number(""), Err(NumberError::Invalid));
        assert_eq!(parse_number("0x"), Err(NumberError::Invalid));
        assert_eq!(parse_number("-1"), Err(NumberError::Invalid));
        assert_eq!(parse_number("12a"), Err(NumberError::Invalid));
        assert_eq!(
            parse_number("18446744073709551616"),
            Err(NumberError::Overflow)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("0x10M"), Ok(16 << 20));
        assert_eq!(parse_size("M"), Err(NumberError::Invalid));
        assert_eq!(parse_size("99999999999999G"), Err(NumberError::Overflow));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = parse_size(&s);
        }

        #[test]
        fn round_trip(n in 0u64..(1 << 40)) {
            proptest::prop_assert_eq!(parse_size(&alloc::format!("{n}")), Ok(n));
            proptest::prop_assert_eq!(parse_size(&alloc::format!("{n:#x}")), Ok(n));
            proptest::prop_assert_eq!(parse_size(&alloc::format!("{n}K")), Ok(n << 10));
        }
    }
}
