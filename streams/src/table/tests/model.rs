//! A model of table operations across flushes and restarts, for both stores.
