//! Image references: `[host[:port]/]path[:tag][@digest]`, validated and
//! normalised. Pure: no I/O.
