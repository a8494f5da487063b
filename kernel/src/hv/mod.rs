//! The hypervisor the kernel talks to, in three parts: [`detect`] decides whether
//! the platform has CMO (pure, over a probe of RTAS and H_GET_MPP), [`dispatch`]
//! holds the chosen backend behind the [`hcall::Hypervisor`] trait, and
//! [`virtio_backed`] is the decorator that backs the pool model's loans with a
//! virtio balloon; [`compose`] builds the VIO bus from what boot found. The glue
//! (`glue/hv.rs`) only supplies RTAS, `sc 1` and the device.

pub mod compose;
pub mod detect;
pub mod dispatch;
pub mod virtio_backed;

pub use detect::{detect, Choice, Detection, Probe};
pub use dispatch::Backend;
pub use virtio_backed::{ModelledPool, TargetSource, VirtioBacked};
