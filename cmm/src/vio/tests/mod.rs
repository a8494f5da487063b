//! Host tests of the VIO bus as a whole: a fake hypervisor and page source,
//! hand-worked scenarios, and property tests over random operation sequences.

mod fake;
mod props;
mod scenarios;
