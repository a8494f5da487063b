//! Console input between the vty's interrupt and the main loop.
//!
//! The producer (the external-interrupt handler, or the main loop with interrupts
//! masked when the tree gives the vty no interrupt) drains the vty into an
//! [`InputRing`]; the main loop pops bytes in order and feeds the line editor.
//! The ring is fixed-size and lock-free (atomics only): a handler that
//! interrupted the main loop anywhere can use it without allocating or locking.
//!
//! The vty's contract shapes the state machine: QEMU's spapr-vty holds 16 bytes
//! and signals only when input arrives into an *empty* buffer. So every drain
//! reads until the vty reports nothing left. When the ring cannot take another 16
//! bytes the drain stops and marks a backlog; the consumer then drains again
//! after popping, since no interrupt will come for bytes already waiting.
//! Nothing is ever dropped: bytes the ring cannot take stay in the vty, and the
//! host's backend holds the rest.
//!
//! Ctrl-C (0x03) is counted on the way in and on the way out: while one sits in
//! the ring unread, [`InputRing::interrupt_pending`] is true and a long command
//! stops with `error: interrupted`. Typed ahead of a command or while it runs, it
//! interrupts that command; the line editor then swallows the byte.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Bytes the ring holds.
pub const RING_BYTES: usize = 4096;
/// Most bytes one H_GET_TERM_CHAR returns.
pub const VTY_CHUNK: usize = 16;
/// The interrupt character.
pub const CTRL_C: u8 = 0x03;

/// How a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// The vty reported no more input.
    Empty,
    /// The ring is nearly full; the vty may still hold input (a backlog).
    RingFull,
}

/// A single-producer, single-consumer byte ring with Ctrl-C accounting.
#[derive(Debug)]
pub struct InputRing {
    bytes: [AtomicU8; RING_BYTES],
    /// Bytes ever pushed (the producer's position).
    pushed: AtomicUsize,
    /// Bytes ever popped (the consumer's position).
    popped: AtomicUsize,
    ctrl_c_in: AtomicU64,
    ctrl_c_out: AtomicU64,
    backlog: AtomicBool,
}

impl Default for InputRing {
    fn default() -> Self {
        Self::new()
    }
}

impl InputRing {
    /// An empty ring.
    pub const fn new() -> Self {
        InputRing {
            bytes: [const { AtomicU8::new(0) }; RING_BYTES],
            pushed: AtomicUsize::new(0),
            popped: AtomicUsize::new(0),
            ctrl_c_in: AtomicU64::new(0),
            ctrl_c_out: AtomicU64::new(0),
            backlog: AtomicBool::new(false),
        }
    }

    /// Bytes waiting to be popped.
    pub fn len(&self) -> usize {
        self.pushed
            .load(Ordering::Acquire)
            .wrapping_sub(self.popped.load(Ordering::Acquire))
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room left.
    pub fn free(&self) -> usize {
        RING_BYTES.saturating_sub(self.len())
    }

    /// True when the last drain stopped on a full ring: the vty may hold input
    /// that will raise no interrupt, so the consumer must drain.
    pub fn backlog(&self) -> bool {
        self.backlog.load(Ordering::Acquire)
    }

    /// True while a Ctrl-C has arrived that the line editor has not consumed.
    pub fn interrupt_pending(&self) -> bool {
        self.ctrl_c_in.load(Ordering::Acquire) > self.ctrl_c_out.load(Ordering::Acquire)
    }

    /// Producer only: drains the vty through `read` (which fills up to 16 bytes
    /// and returns how many; 0 means empty) while the ring has room for a chunk.
    pub fn drain(&self, mut read: impl FnMut(&mut [u8; VTY_CHUNK]) -> usize) -> Drain {
        loop {
            if self.free() < VTY_CHUNK {
                self.backlog.store(true, Ordering::Release);
                return Drain::RingFull;
            }
            let mut chunk = [0u8; VTY_CHUNK];
            let n = read(&mut chunk).min(VTY_CHUNK);
            if n == 0 {
                self.backlog.store(false, Ordering::Release);
                return Drain::Empty;
            }
            for &b in &chunk[..n] {
                self.push(b);
            }
        }
    }

    /// Producer only; the caller checked there is room.
    fn push(&self, b: u8) {
        let at = self.pushed.load(Ordering::Relaxed);
        self.bytes[at % RING_BYTES].store(b, Ordering::Relaxed);
        if b == CTRL_C {
            self.ctrl_c_in.fetch_add(1, Ordering::Release);
        }
        self.pushed.store(at.wrapping_add(1), Ordering::Release);
    }

    /// Consumer only: the oldest byte, if any.
    pub fn pop(&self) -> Option<u8> {
        let at = self.popped.load(Ordering::Relaxed);
        if self.pushed.load(Ordering::Acquire) == at {
            return None;
        }
        let b = self.bytes[at % RING_BYTES].load(Ordering::Relaxed);
        if b == CTRL_C {
            self.ctrl_c_out.fetch_add(1, Ordering::Release);
        }
        self.popped.store(at.wrapping_add(1), Ordering::Release);
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// QEMU's spapr-vty as the kernel sees it: a 16-byte buffer fed from the
    /// host's backend when it has room, raising an interrupt (if enabled) only
    /// when bytes arrive into an empty buffer.
    struct Vty {
        host: VecDeque<u8>,
        buf: VecDeque<u8>,
        irq: bool,
    }

    impl Vty {
        fn feed(&mut self, max: usize) {
            let was_empty = self.buf.is_empty();
            let mut moved = 0;
            while self.buf.len() < 16 && moved < max {
                let Some(b) = self.host.pop_front() else {
                    break;
                };
                self.buf.push_back(b);
                moved += 1;
            }
            if was_empty && moved > 0 {
                self.irq = true;
            }
        }

        fn get(&mut self, out: &mut [u8; VTY_CHUNK]) -> usize {
            let n = self.buf.len().min(VTY_CHUNK);
            for o in out.iter_mut().take(n) {
                *o = self.buf.pop_front().unwrap();
            }
            n
        }
    }

    /// Runs the kernel's rules (drain on every interrupt; drain again after
    /// popping when a backlog is marked) against the vty model: every byte comes
    /// out once, in order, and input never stalls.
    fn run(input: &[u8], schedule: &[(u8, u8)]) -> Vec<u8> {
        let ring = InputRing::new();
        let mut vty = Vty {
            host: input.iter().copied().collect(),
            buf: VecDeque::new(),
            irq: false,
        };
        let mut out = Vec::new();
        let mut step = 0usize;
        while out.len() < input.len() {
            let (feed, pops) = schedule[step % schedule.len()];
            step += 1;
            assert!(step < 1_000_000, "input stalled after {} bytes", out.len());
            vty.feed(usize::from(feed % 40) + 1);
            if core::mem::take(&mut vty.irq) {
                ring.drain(|c| vty.get(c));
            }
            for _ in 0..(usize::from(pops) * 20) {
                match ring.pop() {
                    Some(b) => out.push(b),
                    None => break,
                }
            }
            if ring.backlog() {
                ring.drain(|c| vty.get(c));
            }
        }
        out
    }

    #[test]
    fn sixty_four_kib_typed_ahead_arrive_whole_and_in_order() {
        let input: Vec<u8> = (0..64 * 1024).map(|i| b"echo seq\r"[i % 9]).collect();
        // The consumer pops slowly at first (the ring fills, a backlog forms),
        // then fast.
        assert_eq!(run(&input, &[(39, 0), (39, 1), (5, 200)]), input);
    }

    #[test]
    fn a_full_ring_leaves_the_rest_in_the_vty() {
        let ring = InputRing::new();
        let mut supply = 0usize;
        let r = ring.drain(|c| {
            c.fill(b'x');
            supply += 16;
            16
        });
        assert_eq!(r, Drain::RingFull);
        assert!(ring.backlog());
        assert_eq!(ring.len(), supply);
        assert!(ring.free() < VTY_CHUNK);
        while ring.pop().is_some() {}
        assert_eq!(ring.drain(|_| 0), Drain::Empty);
        assert!(!ring.backlog());
    }

    #[test]
    fn ctrl_c_is_pending_until_the_editor_reads_it() {
        let ring = InputRing::new();
        let mut chunks =
            VecDeque::from([b"sleep 9\r".to_vec(), alloc::vec![CTRL_C], b"ok\r".to_vec()]);
        ring.drain(|c| match chunks.pop_front() {
            Some(v) => {
                c[..v.len()].copy_from_slice(&v);
                v.len()
            }
            None => 0,
        });
        assert!(ring.interrupt_pending());
        let mut seen = Vec::new();
        while let Some(b) = ring.pop() {
            seen.push(b);
        }
        assert_eq!(seen, b"sleep 9\r\x03ok\r");
        assert!(!ring.interrupt_pending());
    }

    proptest! {
        #[test]
        fn no_byte_lost_order_kept(
            input in proptest::collection::vec(any::<u8>(), 1..20_000),
            schedule in proptest::collection::vec((any::<u8>(), 0u8..4), 1..50),
        ) {
            let mut schedule = schedule;
            // At least one step must pop, or nothing could ever come out.
            schedule.push((0, 1));
            prop_assert_eq!(run(&input, &schedule), input);
        }
    }
}
