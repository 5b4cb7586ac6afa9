//! Table-table joins (DESIGN.md, "Joins"), also through a foreign key: tables themselves,
//! whose results are written by the writes of their inputs (in the same change, or through
//! internal topics for a foreign key) and changelogged like any table's. (Stream-table joins,
//! which only read a table, are `join`.)
//!
//! Layering: declarations' layer (a join declares its result table, and a foreign-key join
//! its topics and agents, in the app of its inputs); it imports `declarations`, `table`,
//! `topic` and `error`, and nothing imports it but the crate root.

mod foreign_key;
mod result;
mod table_table;

pub use foreign_key::ForeignKeyJoinBuilder;
pub use table_table::TableJoinBuilder;

#[cfg(test)]
mod tests;
