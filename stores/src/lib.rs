//! State stores: not built yet (see the open "stores" issue).
