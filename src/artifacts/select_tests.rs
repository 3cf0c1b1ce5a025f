//! Tests of artifact selection.
