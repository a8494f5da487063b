//! Byte order at the kernel's boundaries: the one place where values become
//! bytes in a given order and back.
//!
//! lpar-cmm builds a big-endian and a little-endian image from one source
//! (docs/little-endian.md). What the kernel exchanges with the outside has a byte
//! order that is fixed by the other side, not by the image:
//!
//! - [`FIRMWARE`] (big-endian) for everything firmware and the hypervisor read
//!   from memory: the flattened device tree, RTAS argument buffers and system
//!   parameter work areas, Open Firmware client-interface argument blocks, the
//!   VPA;
//! - [`ByteOrder::NATIVE`], the image's own order, for the legacy virtio
//!   queues (descriptors, rings, PFN arrays, statistics entries), which the
//!   device reads in the guest's order;
//! - little-endian for the legacy virtio-pci registers and the balloon's
//!   configuration.
//!
//! Code at a boundary names the order and goes through these accessors; nothing
//! else swaps bytes. Every accessor is pure, so the host tests run them in both
//! orders.

/// A byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Most significant byte first.
    Big,
    /// Least significant byte first.
    Little,
}

/// The order of the structures firmware and the hypervisor define in memory.
pub const FIRMWARE: ByteOrder = ByteOrder::Big;

/// Integers an accessor can move: `u16`, `u32`, `u64`.
pub trait Word: Copy {
    /// Width in bytes.
    const BYTES: usize;
    /// The value as bytes, most significant first.
    fn be_bytes(self) -> [u8; 8];
    /// The value from `BYTES` bytes, most significant first.
    fn from_be_slice(b: &[u8]) -> Self;
    /// The value with its bytes reversed.
    fn swapped(self) -> Self;
}

macro_rules! word {
    ($t:ty) => {
        impl Word for $t {
            const BYTES: usize = core::mem::size_of::<$t>();
            fn be_bytes(self) -> [u8; 8] {
                let mut out = [0u8; 8];
                out[..Self::BYTES].copy_from_slice(&self.to_be_bytes());
                out
            }
            fn from_be_slice(b: &[u8]) -> Self {
                let mut a = [0u8; core::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::BYTES]);
                <$t>::from_be_bytes(a)
            }
            fn swapped(self) -> Self {
                self.swap_bytes()
            }
        }
    };
}
word!(u16);
word!(u32);
word!(u64);

impl ByteOrder {
    /// The order of the image being built (big-endian for
    /// `powerpc64-unknown-linux-gnu`, little-endian for `powerpc64le-…` and on
    /// the x86 host).
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };

    /// `big` or `little`, as `version` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            ByteOrder::Big => "big",
            ByteOrder::Little => "little",
        }
    }

    /// Stores `v` into `out[..W::BYTES]` in this order. `None` (and nothing
    /// written) when `out` is too short.
    pub fn put<W: Word>(self, out: &mut [u8], v: W) -> Option<()> {
        let dst = out.get_mut(..W::BYTES)?;
        let be = v.be_bytes();
        dst.copy_from_slice(&be[..W::BYTES]);
        if self == ByteOrder::Little {
            dst.reverse();
        }
        Some(())
    }

    /// Reads a `W` from `b[..W::BYTES]` in this order; `None` when `b` is too
    /// short.
    pub fn get<W: Word>(self, b: &[u8]) -> Option<W> {
        let src = b.get(..W::BYTES)?;
        let mut be = [0u8; 8];
        be[..W::BYTES].copy_from_slice(src);
        if self == ByteOrder::Little {
            be[..W::BYTES].reverse();
        }
        Some(W::from_be_slice(&be))
    }

    /// Stores `v` at byte offset `off` of `buf`; `None` (nothing written) when
    /// it does not fit.
    pub fn put_at<W: Word>(self, buf: &mut [u8], off: usize, v: W) -> Option<()> {
        self.put(buf.get_mut(off..)?, v)
    }

    /// Reads a `W` at byte offset `off` of `buf`; `None` when out of range.
    pub fn get_at<W: Word>(self, buf: &[u8], off: usize) -> Option<W> {
        self.get(buf.get(off..)?)
    }

    /// The native word whose bytes in memory hold `v` in this order, for
    /// memory the kernel accesses as whole words (a volatile store of it puts
    /// the bytes of `v` in this order).
    pub fn stored<W: Word>(self, v: W) -> W {
        if self == ByteOrder::NATIVE {
            v
        } else {
            v.swapped()
        }
    }

    /// The value held in this order by a word loaded from memory as `raw`.
    pub fn loaded<W: Word>(self, raw: W) -> W {
        self.stored(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BOTH: [ByteOrder; 2] = [ByteOrder::Big, ByteOrder::Little];

    #[test]
    fn hand_worked_bytes() {
        let mut b = [0u8; 8];
        ByteOrder::Big.put(&mut b, 0x1122_3344u32).unwrap();
        assert_eq!(&b[..4], &[0x11, 0x22, 0x33, 0x44]);
        ByteOrder::Little.put(&mut b, 0x1122_3344u32).unwrap();
        assert_eq!(&b[..4], &[0x44, 0x33, 0x22, 0x11]);
        ByteOrder::Big.put(&mut b, 0xA1B2u16).unwrap();
        assert_eq!(&b[..2], &[0xA1, 0xB2]);
        ByteOrder::Little.put(&mut b, 0xA1B2u16).unwrap();
        assert_eq!(&b[..2], &[0xB2, 0xA1]);
        ByteOrder::Big
            .put(&mut b, 0x0102_0304_0506_0708u64)
            .unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8]);
        ByteOrder::Little
            .put(&mut b, 0x0102_0304_0506_0708u64)
            .unwrap();
        assert_eq!(b, [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(
            ByteOrder::Big.get::<u32>(&[0xd0, 0x0d, 0xfe, 0xed]),
            Some(0xd00d_feed)
        );
        assert_eq!(
            ByteOrder::Little.get::<u32>(&[0xd0, 0x0d, 0xfe, 0xed]),
            Some(0xedfe_0dd0)
        );
    }

    #[test]
    fn short_buffers_are_refused_untouched() {
        let mut b = [9u8; 3];
        for o in BOTH {
            assert_eq!(o.put(&mut b, 1u32), None);
            assert_eq!(b, [9, 9, 9]);
            assert_eq!(o.get::<u32>(&b), None);
            assert_eq!(o.put_at(&mut b, 2, 1u16), None);
            assert_eq!(o.put_at(&mut b, 7, 1u16), None);
            assert_eq!(o.get_at::<u16>(&b, 2), None);
            assert_eq!(o.get_at::<u16>(&b, usize::MAX), None);
        }
    }

    #[test]
    fn native_is_the_hosts() {
        // The host (x86) is little-endian; the stored form is then the value
        // itself in little-endian and the swapped value in big-endian.
        assert_eq!(ByteOrder::NATIVE, ByteOrder::Little);
        assert_eq!(ByteOrder::Little.stored(0x1234_5678u32), 0x1234_5678);
        assert_eq!(ByteOrder::Big.stored(0x1234_5678u32), 0x7856_3412);
        assert_eq!(ByteOrder::Big.stored(0x1234u16).to_ne_bytes(), [0x12, 0x34]);
        assert_eq!(
            ByteOrder::Little.stored(1u64).to_ne_bytes(),
            [1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(ByteOrder::Big.name(), "big");
        assert_eq!(ByteOrder::Little.name(), "little");
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(v16 in any::<u16>(), v32 in any::<u32>(), v64 in any::<u64>(), off in 0usize..8, big in any::<bool>()) {
            let o = if big { ByteOrder::Big } else { ByteOrder::Little };
            let mut buf = [0u8; 16];
            o.put_at(&mut buf, off, v64).unwrap();
            prop_assert_eq!(o.get_at::<u64>(&buf, off), Some(v64));
            o.put_at(&mut buf, off, v32).unwrap();
            prop_assert_eq!(o.get_at::<u32>(&buf, off), Some(v32));
            o.put_at(&mut buf, off, v16).unwrap();
            prop_assert_eq!(o.get_at::<u16>(&buf, off), Some(v16));
            prop_assert_eq!(o.loaded(o.stored(v32)), v32);
            prop_assert_eq!(o.loaded(o.stored(v16)), v16);
            prop_assert_eq!(o.loaded(o.stored(v64)), v64);
            // A stored word has the bytes `put` writes.
            let mut b = [0u8; 4];
            o.put(&mut b, v32).unwrap();
            prop_assert_eq!(o.stored(v32).to_ne_bytes(), b);
            // The two orders are each other's reverse.
            let (mut be, mut le) = ([0u8; 8], [0u8; 8]);
            ByteOrder::Big.put(&mut be, v64).unwrap();
            ByteOrder::Little.put(&mut le, v64).unwrap();
            le.reverse();
            prop_assert_eq!(be, le);
        }
    }
}
