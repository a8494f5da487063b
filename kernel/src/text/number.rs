//! Numbers and sizes as the console contract writes them (the parsers live in
//! [`powervm_sim::units`], shared with the pool model's `hv` commands), and page counts.

pub use powervm_sim::units::{parse_number, parse_size, NumberError};

use hcall::page::PAGE_SIZE;

/// Parses a `<size>` that must be a whole number of 4 KiB pages; returns pages.
pub fn parse_pages(s: &str) -> Result<u64, NumberError> {
    let bytes = parse_size(s)?;
    if bytes % PAGE_SIZE != 0 {
        return Err(NumberError::NotPageMultiple);
    }
    Ok(bytes / PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        assert_eq!(parse_pages("8K"), Ok(2));
        assert_eq!(parse_pages("0"), Ok(0));
        assert_eq!(parse_pages("100"), Err(NumberError::NotPageMultiple));
        assert_eq!(parse_pages("x"), Err(NumberError::Invalid));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = parse_pages(&s);
        }

        /// `cmm set` parses its numbers itself (cmm cannot depend on the
        /// simulator's parser); it must take and refuse the same text, in the
        /// same words, as every other command.
        #[test]
        fn cmm_parameters_parse_numbers_as_the_shell_does(
            s in "(0[xX])?[0-9a-fA-F]{0,20}|.{0,8}"
        ) {
            let shell = parse_number(&s).map_err(|e| alloc::string::ToString::to_string(&e));
            let cmm = cmm::params::parse_number(&s).map_err(alloc::string::String::from);
            proptest::prop_assert_eq!(shell, cmm);
        }
    }
}
