//! Integration tests of pushbuild's library, one module per area.

mod artifacts;
