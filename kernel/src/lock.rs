//! A spin lock for a shared-processor LPAR (docs/smp.md): interrupt-safe, and
//! its waiters give their time to a preempted holder instead of burning the
//! shared processor pool.
//!
//! - **Interrupt-safe**: taking the lock turns this CPU's external interrupts
//!   off until the guard drops, so no interrupt handler can run on the CPU that
//!   holds it (handlers take no lock anyway: docs/interrupts.md). A CPU that
//!   asks for a lock it already holds is a bug and panics at once instead of
//!   spinning forever.
//! - **Conferring**: the lock word holds the holder's CPU index. Every
//!   [`SPINS_PER_LOOK`] spins a waiter reads the holder's VPA yield count
//!   ([`LockEnv::yield_count`]); odd means the hypervisor has preempted that
//!   virtual processor, and the waiter confers (H_CONFER) its time to it at that
//!   count ([`confer_decision`]). When the holder's count cannot be read, it
//!   confers to every processor of the partition (H_CONFER(-1)). Waits and
//!   confers are counted per CPU.
//!
//! The machine is reached only through [`LockEnv`], so the lock and the
//! decision have host tests.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Spins between two looks at the holder.
pub const SPINS_PER_LOOK: u32 = 256;

/// What a waiter does after a look at the holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confer {
    /// The holder is running (even yield count): keep spinning.
    Spin,
    /// The holder is preempted (odd yield count): confer to it at this count.
    Holder {
        /// The holder's CPU index.
        cpu: usize,
        /// Its yield count as read.
        yield_count: u32,
    },
    /// The holder's state is unknown: confer to every processor.
    All,
}

/// The waiter's decision from the holder (`None`: the lock word named no valid
/// CPU) and the holder's yield count (`None`: no VPA to read it from).
pub fn confer_decision(holder: Option<usize>, yield_count: Option<u32>) -> Confer {
    match (holder, yield_count) {
        (Some(cpu), Some(y)) if !y.is_multiple_of(2) => Confer::Holder {
            cpu,
            yield_count: y,
        },
        (Some(_), Some(_)) => Confer::Spin,
        _ => Confer::All,
    }
}

/// The machine a lock runs on.
pub trait LockEnv {
    /// This CPU's index.
    fn cpu() -> usize;
    /// Turns this CPU's interrupts off; returns whether they were on.
    fn irq_off() -> bool;
    /// Turns them back on if `was_on`.
    fn irq_restore(was_on: bool);
    /// CPU `cpu`'s VPA yield count, if it has one.
    fn yield_count(cpu: usize) -> Option<u32>;
    /// Gives this CPU's time away as `to` says (never called with `Spin`).
    fn confer(to: Confer);
    /// Counts one acquisition that had to wait, on this CPU.
    fn count_wait();
    /// Counts one confer, on this CPU.
    fn count_confer();
}

/// The lock word when nobody holds the lock.
const FREE: usize = 0;

/// A spin lock over `T` for the environment `E`.
pub struct SpinLock<T, E: LockEnv> {
    /// `FREE`, or the holder's CPU index + 1.
    word: AtomicUsize,
    data: UnsafeCell<T>,
    _env: PhantomData<fn() -> E>,
}

// SAFETY: the lock hands out `&mut T` to one holder at a time (the word's
// compare-exchange with Acquire, the release store in the guard's drop), so
// sharing the lock between CPUs is sound when `T` may move between them.
unsafe impl<T: Send, E: LockEnv> Sync for SpinLock<T, E> {}
// SAFETY: as above; the lock owns its `T`.
unsafe impl<T: Send, E: LockEnv> Send for SpinLock<T, E> {}

impl<T, E: LockEnv> SpinLock<T, E> {
    /// A free lock around `value`.
    pub const fn new(value: T) -> Self {
        SpinLock {
            word: AtomicUsize::new(FREE),
            data: UnsafeCell::new(value),
            _env: PhantomData,
        }
    }

    /// The holder's CPU index, if the lock is held.
    pub fn holder(&self) -> Option<usize> {
        match self.word.load(Ordering::Relaxed) {
            FREE => None,
            w => Some(w - 1),
        }
    }

    /// Takes the lock (interrupts off until the guard drops), conferring to a
    /// preempted holder while it waits.
    pub fn lock(&self) -> SpinGuard<'_, T, E> {
        let was_on = E::irq_off();
        let me = E::cpu();
        let mine = me + 1;
        let mut waited = false;
        let mut spins = 0u32;
        loop {
            match self
                .word
                .compare_exchange_weak(FREE, mine, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(w) if w == mine => {
                    E::irq_restore(was_on);
                    panic!("CPU {me} takes a lock it already holds");
                }
                Err(w) => {
                    waited = true;
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(SPINS_PER_LOOK) && w != FREE {
                        let holder = w - 1;
                        let d = confer_decision(Some(holder), E::yield_count(holder));
                        // The holder may have changed since the look: only a
                        // confer about the same holder is useful.
                        if d != Confer::Spin && self.word.load(Ordering::Relaxed) == w {
                            E::confer(d);
                            E::count_confer();
                        }
                    }
                    core::hint::spin_loop();
                }
            }
        }
        if waited {
            E::count_wait();
        }
        SpinGuard { lock: self, was_on }
    }

    /// The value, through exclusive access to the lock (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// The held lock; dropping it releases the lock and restores interrupts.
pub struct SpinGuard<'a, T, E: LockEnv> {
    lock: &'a SpinLock<T, E>,
    was_on: bool,
}

impl<T, E: LockEnv> Deref for SpinGuard<'_, T, E> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this CPU holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T, E: LockEnv> DerefMut for SpinGuard<'_, T, E> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this CPU holds the lock, and the
        // `&mut self` borrow makes this reference the only one.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T, E: LockEnv> Drop for SpinGuard<'_, T, E> {
    fn drop(&mut self) {
        self.lock.word.store(FREE, Ordering::Release);
        E::irq_restore(self.was_on);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
    use std::sync::Arc;
    use std::vec::Vec;

    extern crate std;

    #[test]
    fn confer_only_to_a_preempted_holder_else_to_all() {
        assert_eq!(confer_decision(Some(2), Some(10)), Confer::Spin);
        assert_eq!(
            confer_decision(Some(2), Some(11)),
            Confer::Holder {
                cpu: 2,
                yield_count: 11
            }
        );
        assert_eq!(confer_decision(Some(2), None), Confer::All);
        assert_eq!(confer_decision(None, Some(11)), Confer::All);
        assert_eq!(
            confer_decision(Some(0), Some(u32::MAX)),
            Confer::Holder {
                cpu: 0,
                yield_count: u32::MAX
            }
        );
    }

    std::thread_local! {
        static CPU: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
        static IRQ_ON: core::cell::Cell<bool> = const { core::cell::Cell::new(true) };
    }
    /// Yield counts by CPU, as the fake hypervisor keeps them.
    static YIELD: [AtomicU32; 8] = [const { AtomicU32::new(0) }; 8];
    static WAITS: AtomicU64 = AtomicU64::new(0);
    static CONFERS_HOLDER: AtomicU64 = AtomicU64::new(0);
    static CONFERS_ALL: AtomicU64 = AtomicU64::new(0);
    static NO_VPA: AtomicBool = AtomicBool::new(false);

    struct Fake;
    impl LockEnv for Fake {
        fn cpu() -> usize {
            CPU.with(|c| c.get())
        }
        fn irq_off() -> bool {
            IRQ_ON.with(|c| c.replace(false))
        }
        fn irq_restore(was_on: bool) {
            IRQ_ON.with(|c| c.set(was_on));
        }
        fn yield_count(cpu: usize) -> Option<u32> {
            (!NO_VPA.load(Ordering::Relaxed)).then(|| YIELD[cpu].load(Ordering::Relaxed))
        }
        fn confer(to: Confer) {
            match to {
                Confer::Holder { cpu, yield_count } => {
                    assert_eq!(yield_count % 2, 1);
                    assert!(cpu < 8);
                    CONFERS_HOLDER.fetch_add(1, Ordering::Relaxed);
                }
                Confer::All => {
                    CONFERS_ALL.fetch_add(1, Ordering::Relaxed);
                }
                Confer::Spin => panic!("confer(Spin)"),
            }
            std::thread::yield_now();
        }
        fn count_wait() {
            WAITS.fetch_add(1, Ordering::Relaxed);
        }
        fn count_confer() {}
    }

    /// Four threads as four CPUs: the counter behind the lock is exact,
    /// interrupts are off exactly while the lock is held, and waiters confer
    /// to a holder whose yield count says it is preempted.
    #[test]
    fn mutual_exclusion_interrupts_off_and_confers_to_a_preempted_holder() {
        for y in &YIELD {
            y.store(1, Ordering::Relaxed); // everyone "preempted": odd
        }
        let lock: Arc<SpinLock<u64, Fake>> = Arc::new(SpinLock::new(0));
        // CPU 5 holds the lock until the four threads have all asked for it,
        // so each of them waits at least once.
        let waits0 = WAITS.load(Ordering::Relaxed);
        let asking = Arc::new(AtomicU64::new(0));
        CPU.with(|c| c.set(5));
        let first = lock.lock();
        let threads: Vec<_> = (0..4)
            .map(|cpu| {
                let lock = lock.clone();
                let asking = asking.clone();
                std::thread::spawn(move || {
                    CPU.with(|c| c.set(cpu));
                    asking.fetch_add(1, Ordering::Relaxed);
                    for _ in 0..20_000 {
                        let mut g = lock.lock();
                        assert!(!IRQ_ON.with(|c| c.get()), "interrupts on while held");
                        assert_eq!(lock.holder(), Some(cpu));
                        let v = *g;
                        core::hint::spin_loop();
                        *g = v + 1;
                        drop(g);
                        assert!(IRQ_ON.with(|c| c.get()), "interrupts not restored");
                    }
                })
            })
            .collect();
        while asking.load(Ordering::Relaxed) < 4 {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(first);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 80_000);
        assert!(
            WAITS.load(Ordering::Relaxed) - waits0 >= 3,
            "the threads that asked while the lock was held did not wait"
        );
    }

    #[test]
    fn a_waiter_confers_to_the_holder_or_to_all() {
        let lock: Arc<SpinLock<(), Fake>> = Arc::new(SpinLock::new(()));
        // CPU 3 holds the lock while "preempted" (odd count).
        YIELD[3].store(7, Ordering::Relaxed);
        CPU.with(|c| c.set(3));
        let g = lock.lock();
        let before = CONFERS_HOLDER.load(Ordering::Relaxed);
        let l2 = lock.clone();
        let waiter = std::thread::spawn(move || {
            CPU.with(|c| c.set(1));
            drop(l2.lock());
        });
        while CONFERS_HOLDER.load(Ordering::Relaxed) == before {
            std::thread::yield_now();
        }
        // Without a VPA to read, the waiter confers to all.
        NO_VPA.store(true, Ordering::Relaxed);
        let all = CONFERS_ALL.load(Ordering::Relaxed);
        while CONFERS_ALL.load(Ordering::Relaxed) == all {
            std::thread::yield_now();
        }
        NO_VPA.store(false, Ordering::Relaxed);
        drop(g);
        waiter.join().unwrap();
    }

    #[test]
    #[should_panic(expected = "already holds")]
    fn taking_a_held_lock_again_on_the_same_cpu_panics() {
        let lock: SpinLock<(), Fake> = SpinLock::new(());
        CPU.with(|c| c.set(2));
        let _g = lock.lock();
        let _again = lock.lock();
    }
}
