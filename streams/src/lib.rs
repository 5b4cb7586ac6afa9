//! The streams framework: not built yet (see the open "streams core" issue).
