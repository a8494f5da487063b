//! VIO entitled-memory accounting.
