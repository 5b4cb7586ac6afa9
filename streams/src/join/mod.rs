//! Joins (DESIGN.md, "Joins"). Table-table joins, also through a foreign key, are tables
//! themselves: their results are written by the writes of their inputs, in the same change,
//! and changelogged like any table's.
//!
//! Layering: declarations' layer (a join declares its result table, and a foreign-key join its
//! topics and agents, in the app of its inputs); it imports `declarations`, `table`, `topic`,
//! `codec` and `error`.

mod foreign_key;
mod result;
mod table_table;

pub use foreign_key::ForeignKeyJoinBuilder;
pub use table_table::TableJoinBuilder;

#[cfg(test)]
mod tests;
