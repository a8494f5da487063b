//! Numbers and sizes as the console contract writes them (parsed by
//! [`lpar_units`], the one parser of the workspace, which `cmm set` and the pool
//! model's `hv` commands use too), and page counts.

pub use lpar_units::{parse_number, parse_size, NumberError};

use hcall::page::PAGE_SIZE;

/// Parses a `<size>` that must be a whole number of 4 KiB pages; returns pages.
pub fn parse_pages(s: &str) -> Result<u64, NumberError> {
    lpar_units::parse_count(s, PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        assert_eq!(parse_pages("8K"), Ok(2));
        assert_eq!(parse_pages("0"), Ok(0));
        assert_eq!(
            parse_pages("100"),
            Err(NumberError::NotMultiple { unit: PAGE_SIZE })
        );
        assert_eq!(parse_pages("x"), Err(NumberError::Invalid));
    }
}
