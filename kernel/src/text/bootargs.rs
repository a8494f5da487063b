//! Boot arguments: space-separated `key=value` pairs from `/chosen/bootargs`.

use alloc::string::String;
use alloc::vec::Vec;

/// The parsed arguments and the tokens that were not `key=value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootArgs<'a> {
    /// Well-formed pairs, in order.
    pub pairs: Vec<(&'a str, &'a str)>,
    /// Malformed tokens, each with the reason, for a warning.
    pub malformed: Vec<(&'a str, String)>,
}

/// Splits a bootargs string into pairs; malformed tokens are collected, not fatal.
pub fn parse(s: &str) -> BootArgs<'_> {
    let mut out = BootArgs::default();
    for tok in s.split_ascii_whitespace() {
        match tok.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => out.pairs.push((k, v)),
            Some(("", _)) => out.malformed.push((tok, "empty key".into())),
            Some(_) => out.malformed.push((tok, "empty value".into())),
            None => out.malformed.push((tok, "expected key=value".into())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_malformed() {
        let a = parse("  cmm.delay_ms=20 junk hv.pool=1G =x y=  ");
        assert_eq!(a.pairs, [("cmm.delay_ms", "20"), ("hv.pool", "1G")]);
        let bad: Vec<_> = a.malformed.iter().map(|(t, _)| *t).collect();
        assert_eq!(bad, ["junk", "=x", "y="]);
    }
}
