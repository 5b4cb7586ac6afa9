//! Runnable examples live beside this crate as `[[example]]` targets; what several of them
//! share lives here.

pub mod customer_orders_demo;
pub mod enrich_demo;
pub mod tables_demo;
pub mod windows_demo;
