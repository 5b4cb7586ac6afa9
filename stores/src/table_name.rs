//! Which table names a store accepts: the same for every backend, so that a name accepted in
//! memory is accepted on disk too.

use crate::{Error, Result};

/// Table names become file names: keep them to a portable, unsurprising set.
pub(crate) fn validate_table_name(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidTableName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > 200 {
        return invalid("longer than 200 bytes");
    }
    if name.starts_with('.') {
        return invalid("starts with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return invalid("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(validate_table_name("app-counts_v2.x").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a b", "é"] {
            assert!(validate_table_name(bad).is_err(), "{bad:?}");
        }
    }
}
