//! Checking what the device writes into a used ring, before the kernel believes
//! it. The device sits outside the kernel's trust boundary (a buggy or hostile
//! host): a used entry is taken as the completion of a buffer only if it is the
//! one entry the kernel is waiting for, names the descriptor that was made
//! available and reports no more bytes than the buffer has. Anything else is a
//! [`Violation`]; the caller stops using the device (docs/virtio-balloon.md,
//! "A device that lies").
//!
//! The inflate and deflate queues keep up to [`WINDOW`] buffers in flight,
//! each in its own descriptor (0 to `WINDOW - 1`); the statistics and reporting
//! queues one, in descriptor 0. So the rules are: the used index may move by at
//! most the buffers in flight, one entry is taken at a time, and each entry must
//! name a descriptor in flight (a descriptor the device returned already is a
//! repeat; one never made available is unknown).

use core::fmt;

/// The descriptor a queue with one buffer in flight uses.
pub const DESCRIPTOR: u32 = 0;

/// The most buffers one queue has in flight (the PFN queues' window; the
/// descriptors are 0 to `WINDOW - 1`).
pub const WINDOW: usize = 8;

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
    /// The length of the buffer in flight in each descriptor, if one is.
    in_flight: [Option<u32>; WINDOW],
    /// How many are in flight.
    count: u16,
    /// Descriptors the device has returned at least once (bit per descriptor).
    returned: u16,
}

impl UsedTracker {
    /// Nothing published, nothing used.
    pub const fn new() -> Self {
        UsedTracker {
            seen: 0,
            in_flight: [None; WINDOW],
            count: 0,
            returned: 0,
        }
    }

    /// A buffer of `len` bytes was made available in descriptor 0 (the
    /// previous one was used).
    pub fn published(&mut self, len: u32) {
        self.published_at(0, len);
    }

    /// A buffer of `len` bytes was made available in descriptor `id`, which
    /// must be below [`WINDOW`] and not in flight (the caller picks it from
    /// [`UsedTracker::free_descriptor`]); otherwise nothing changes.
    pub fn published_at(&mut self, id: usize, len: u32) {
        if let Some(slot @ None) = self.in_flight.get_mut(id) {
            *slot = Some(len);
            self.count += 1;
        }
    }

    /// A descriptor below `limit` (at most [`WINDOW`]) with no buffer in
    /// flight, if there is one.
    pub fn free_descriptor(&self, limit: usize) -> Option<usize> {
        self.in_flight
            .iter()
            .take(limit.min(WINDOW))
            .position(Option::is_none)
    }

    /// True while a buffer waits for the device.
    pub fn in_flight(&self) -> bool {
        self.count > 0
    }

    /// How many buffers wait for the device.
    pub fn in_flight_count(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether descriptor `id` holds a buffer the device has not used.
    pub fn is_in_flight(&self, id: usize) -> bool {
        matches!(self.in_flight.get(id), Some(Some(_)))
    }

    /// Looks at the used index the device wrote (`used_idx`) and, if it moved,
    /// at the next entry it wrote (`elem(slot)` reads the entry of ring slot
    /// `slot`, wrapped by the caller). `Ok(None)`: nothing new; `Ok(Some(e))`:
    /// the buffer in descriptor `e.id` was used, as `e` says (one entry per
    /// call: call again for the next); `Err`: the device broke the protocol,
    /// and the tracker no longer moves.
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
        let was_returned = |id: u32| {
            usize::try_from(id)
                .ok()
                .filter(|&i| i < WINDOW)
                .is_some_and(|i| self.returned & (1 << i) != 0)
        };
        if self.count == 0 {
            return Err(Violation::NothingInFlight {
                id: e.id,
                repeated: was_returned(e.id),
            });
        }
        if moved > self.count {
            return Err(Violation::IndexJump {
                expected: self.seen.wrapping_add(1),
                got: used_idx,
            });
        }
        let slot = usize::try_from(e.id).ok().filter(|&i| i < WINDOW);
        let Some(buffer) = slot.and_then(|i| self.in_flight[i]) else {
            return Err(if was_returned(e.id) {
                Violation::NothingInFlight {
                    id: e.id,
                    repeated: true,
                }
            } else {
                Violation::UnknownId(e.id)
            });
        };
        if e.len > buffer {
            return Err(Violation::LenBeyondBuffer { len: e.len, buffer });
        }
        let i = slot.unwrap_or(0);
        self.in_flight[i] = None;
        self.count -= 1;
        self.returned |= 1 << i;
        self.seen = self.seen.wrapping_add(1);
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
    fn a_window_completes_in_any_order_and_each_buffer_once() {
        let mut t = UsedTracker::new();
        for (id, len) in [(0, 100), (1, 200), (2, 300)] {
            t.published_at(id, len);
        }
        // A descriptor in flight cannot be published again.
        t.published_at(1, 999);
        assert_eq!(t.in_flight_count(), 3);
        assert_eq!(t.free_descriptor(WINDOW), Some(3));
        assert_eq!(t.free_descriptor(3), None);
        let ring = [
            UsedElem { id: 2, len: 300 },
            UsedElem { id: 0, len: 0 },
            UsedElem { id: 1, len: 200 },
        ];
        // The device wrote two entries at once: taken one per call.
        assert_eq!(t.poll(2, |s| ring[usize::from(s)]), Ok(Some(ring[0])));
        assert_eq!(t.poll(2, |s| ring[usize::from(s)]), Ok(Some(ring[1])));
        assert_eq!(t.poll(2, |s| ring[usize::from(s)]), Ok(None));
        assert!(t.is_in_flight(1) && !t.is_in_flight(2));
        assert_eq!(t.free_descriptor(WINDOW), Some(0));
        // An index that moves past what is in flight (one left) is a jump.
        assert_eq!(
            t.poll(4, |s| ring[usize::from(s)]),
            Err(Violation::IndexJump {
                expected: 3,
                got: 4
            })
        );
        // Descriptor 2 again while 1 is in flight: returned twice.
        assert_eq!(
            t.poll(3, |_| UsedElem { id: 2, len: 0 }),
            Err(Violation::NothingInFlight {
                id: 2,
                repeated: true
            })
        );
        // One never published, and one past the window: unknown.
        assert_eq!(
            t.poll(3, |_| UsedElem { id: 5, len: 0 }),
            Err(Violation::UnknownId(5))
        );
        assert_eq!(
            t.poll(3, |_| UsedElem { id: 4000, len: 0 }),
            Err(Violation::UnknownId(4000))
        );
        assert_eq!(t.poll(3, |s| ring[usize::from(s)]), Ok(Some(ring[2])));
        assert!(!t.in_flight());
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
