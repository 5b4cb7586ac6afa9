//! Store URLs (`memory://`, `redb:///abs/dir`, `redb://rel/dir`) and opening a table's store
//! from one.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::table_name::validate_table_name;
use crate::{Error, MemoryStore, RedbOptions, RedbStore, Result, Store};

/// Where an application keeps its tables, parsed from a URL.
///
/// ```
/// use stores::StoreUrl;
///
/// assert_eq!("memory://".parse::<StoreUrl>().unwrap(), StoreUrl::Memory);
/// assert_eq!(
///     "redb:///var/lib/app".parse::<StoreUrl>().unwrap(),
///     StoreUrl::Redb { dir: "/var/lib/app".into() }
/// );
/// assert_eq!(
///     "redb://data/tables".parse::<StoreUrl>().unwrap(),
///     StoreUrl::Redb { dir: "data/tables".into() }
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory://`: every table in memory, empty at each start.
    Memory,
    /// `redb://DIR`: one redb file per table in `DIR` (absolute with three slashes, otherwise
    /// relative to the working directory).
    Redb {
        /// The directory holding the table files.
        dir: PathBuf,
    },
}

impl StoreUrl {
    /// Parses a store URL.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("missing \"://\""))?;
        match scheme.to_ascii_lowercase().as_str() {
            "memory" if rest.is_empty() => Ok(StoreUrl::Memory),
            "memory" => Err(invalid("memory:// takes no path")),
            "redb" if rest.is_empty() => Err(invalid("redb:// needs a directory")),
            "redb" if rest.contains(['?', '#']) => {
                Err(invalid("query strings and fragments are not supported"))
            }
            "redb" => Ok(StoreUrl::Redb {
                dir: PathBuf::from(rest),
            }),
            _ => Err(invalid("unknown scheme")),
        }
    }

    /// Opens the store of table `table` with default options.
    pub fn open(&self, table: &str) -> Result<Arc<dyn Store>> {
        self.open_with(table, RedbOptions::default())
    }

    /// Opens the store of table `table`; `options` apply to redb stores.
    pub fn open_with(&self, table: &str, options: RedbOptions) -> Result<Arc<dyn Store>> {
        validate_table_name(table)?;
        Ok(match self {
            StoreUrl::Memory => Arc::new(MemoryStore::new()),
            StoreUrl::Redb { dir } => Arc::new(RedbStore::open_with(dir, table, options)?),
        })
    }
}

impl FromStr for StoreUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Memory => f.write_str("memory://"),
            StoreUrl::Redb { dir } => write!(f, "redb://{}", dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_forms() {
        assert_eq!(StoreUrl::parse("memory://").unwrap(), StoreUrl::Memory);
        assert_eq!(StoreUrl::parse("MEMORY://").unwrap(), StoreUrl::Memory);
        assert_eq!(
            StoreUrl::parse("redb:///abs/dir").unwrap(),
            StoreUrl::Redb {
                dir: "/abs/dir".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("redb://rel/dir").unwrap(),
            StoreUrl::Redb {
                dir: "rel/dir".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("redb://./x").unwrap().to_string(),
            "redb://./x"
        );
    }

    #[test]
    fn rejects_the_rest() {
        for bad in [
            "",
            "memory",
            "memory://x",
            "redb://",
            "redb:/x",
            "rocksdb:///x",
            "redb:///x?durable=1",
        ] {
            let err = StoreUrl::parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidUrl { .. }),
                "{bad:?} gave {err:?}"
            );
            assert!(err.to_string().contains("expected memory://"), "{err}");
        }
    }
}
