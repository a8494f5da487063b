//! Checking what the device writes into a used ring, before the kernel believes
//! it. The device sits outside the kernel's trust boundary (a buggy or hostile
//! host): a used entry is taken as the completion of a buffer only if it is the
//! one entry the kernel is waiting for, names the descriptor that was made
//! available and reports no more bytes than the buffer has. Anything else is a
//! [`Violation`]; the caller stops using the device (docs/virtio-balloon.md,
//! "A device that lies").
//!
//! The balloon keeps at most one buffer in flight per queue, always in descriptor
//! 0, so the rules are simple: the used index may move by one, only while a buffer
//! is in flight, and its entry must say id 0.

use core::fmt;

/// The descriptor every buffer of these queues uses.
pub const DESCRIPTOR: u32 = 0;

/// One used-ring entry as the device wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsedElem {
    /// The head descriptor of the used buffer.
    pub id: u32,
    /// Bytes the device says it wrote into the buffer.
    pub len: u32,
}

/// A used ring the device has broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A used entry while no buffer was available: either for the descriptor
    /// already returned (`repeated`), or for an id never made available.
    NothingInFlight {
        /// The id the entry names.
        id: u32,
        /// It names the buffer the device already returned.
        repeated: bool,
    },
    /// The entry names a descriptor that was never made available.
    UnknownId(u32),
    /// The device says it wrote more bytes than the buffer holds.
    LenBeyondBuffer {
        /// What it says.
        len: u32,
        /// The buffer's length.
        buffer: u32,
    },
    /// The used index moved by more than the buffers in flight.
    IndexJump {
        /// The index the kernel expected next.
        expected: u16,
        /// The index the device wrote.
        got: u16,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NothingInFlight { id, repeated: true } => {
                write!(f, "the device returned buffer {id} twice")
            }
            Violation::NothingInFlight {
                id,
                repeated: false,
            } => write!(
                f,
                "the device used buffer {id}, which was never made available"
            ),
            Violation::UnknownId(id) => write!(
                f,
                "the device used buffer {id}, which was never made available"
            ),
            Violation::LenBeyondBuffer { len, buffer } => {
                write!(f, "the device used {len} bytes of a {buffer}-byte buffer")
            }
            Violation::IndexJump { expected, got } => write!(
                f,
                "the device moved the used index to {got} where {expected} was next"
            ),
        }
    }
}

/// The kernel's side of one used ring: what it expects the device to write next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsedTracker {
    /// The used index up to which entries were taken.
    seen: u16,
    /// The length of the buffer in flight, if one is.
    in_flight: Option<u32>,
}

impl UsedTracker {
    /// Nothing published, nothing used.
    pub const fn new() -> Self {
        UsedTracker {
            seen: 0,
            in_flight: None,
        }
    }

    /// A buffer of `len` bytes was made available (the previous one was used).
    pub fn published(&mut self, len: u32) {
        self.in_flight = Some(len);
    }

    /// True while a buffer waits for the device.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Looks at the used index the device wrote (`used_idx`) and, if it moved,
    /// at the entry it wrote (`elem(slot)` reads the entry of ring slot `slot`,
    /// wrapped by the caller). `Ok(None)`: nothing new; `Ok(Some(e))`: the
    /// buffer in flight was used, as `e` says; `Err`: the device broke the
    /// protocol, and the tracker no longer moves.
    pub fn poll(
        &mut self,
        used_idx: u16,
        elem: impl FnOnce(u16) -> UsedElem,
    ) -> Result<Option<UsedElem>, Violation> {
        let moved = used_idx.wrapping_sub(self.seen);
        if moved == 0 {
            return Ok(None);
        }
        let e = elem(self.seen);
        let Some(buffer) = self.in_flight else {
            return Err(Violation::NothingInFlight {
                id: e.id,
                repeated: e.id == DESCRIPTOR,
            });
        };
        if moved > 1 {
            return Err(Violation::IndexJump {
                expected: self.seen.wrapping_add(1),
                got: used_idx,
            });
        }
        if e.id != DESCRIPTOR {
            return Err(Violation::UnknownId(e.id));
        }
        if e.len > buffer {
            return Err(Violation::LenBeyondBuffer { len: e.len, buffer });
        }
        self.seen = used_idx;
        self.in_flight = None;
        Ok(Some(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: UsedElem = UsedElem { id: 0, len: 0 };

    #[test]
    fn one_buffer_at_a_time_is_accepted() {
        let mut t = UsedTracker::new();
        assert_eq!(t.poll(0, |_| unreachable!()), Ok(None));
        let mut idx = 0u16;
        for _ in 0..70_000u32 {
            t.published(1024);
            idx = idx.wrapping_add(1);
            assert_eq!(t.poll(idx.wrapping_sub(1), |_| unreachable!()), Ok(None));
            assert_eq!(
                t.poll(idx, |slot| {
                    assert_eq!(slot, idx.wrapping_sub(1));
                    UsedElem { id: 0, len: 1024 }
                }),
                Ok(Some(UsedElem { id: 0, len: 1024 }))
            );
            assert!(!t.in_flight());
        }
    }

    #[test]
    fn every_lie_is_named() {
        let mut t = UsedTracker::new();
        assert_eq!(
            t.poll(1, |_| UsedElem { id: 5, len: 0 }),
            Err(Violation::NothingInFlight {
                id: 5,
                repeated: false
            })
        );
        let mut t = UsedTracker::new();
        t.published(8);
        assert_eq!(t.poll(1, |_| OK), Ok(Some(OK)));
        assert_eq!(
            t.poll(2, |_| OK),
            Err(Violation::NothingInFlight {
                id: 0,
                repeated: true
            })
        );
        t.published(8);
        assert_eq!(
            t.poll(9, |_| OK),
            Err(Violation::IndexJump {
                expected: 2,
                got: 9
            })
        );
        assert_eq!(
            t.poll(2, |_| UsedElem { id: 3, len: 0 }),
            Err(Violation::UnknownId(3))
        );
        assert_eq!(
            t.poll(2, |_| UsedElem { id: 0, len: 9 }),
            Err(Violation::LenBeyondBuffer { len: 9, buffer: 8 })
        );
        // Nothing was taken from the lies: the honest answer still works.
        assert_eq!(
            t.poll(2, |_| UsedElem { id: 0, len: 8 }),
            Ok(Some(UsedElem { id: 0, len: 8 }))
        );
        assert!(Violation::IndexJump {
            expected: 2,
            got: 9
        }
        .to_string()
        .contains("used index"));
    }
}
