//! The interrupt handler table: which handler an interrupt source goes to, and how
//! many interrupts each source raised on each CPU.
//!
//! The interrupt controller's glue owns one table. A driver registers its source
//! at probe ([`HandlerTable::register`]) with a handler and a counter label; the
//! controller's external-interrupt handler asks the table for the handler of the
//! source it accepted ([`HandlerTable::dispatch`]), which counts the interrupt for
//! that source and CPU, or counts it as unknown when no live handler has it. The
//! controller knows nothing about the devices behind the sources, and no
//! per-device counter lives anywhere else: the `cpu` reply sums the table's
//! counters by label ([`HandlerTable::rows`]).
//!
//! Dispatch is lock-free so the interrupt handler may use it: registration (under
//! a lock of its own, never taken in interrupt context) claims a free slot, writes
//! the handler once, and only then publishes the slot as live (release); dispatch
//! reads the state (acquire) before the handler. A slot is never reused: a source
//! turned off (routing failed, an interrupt storm) stays in its slot, off, with its
//! counts, until it is turned on again ([`HandlerTable::turn_on`], after a storm's
//! back-off).

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::cpustats::DeviceRows;
use crate::smp::MAX_CPUS;

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const LIVE: u8 = 2;
const OFF: u8 = 3;

/// Why a source could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Another live handler has this source.
    Duplicate(u32),
    /// Every slot is taken.
    Full,
    /// `u32::MAX` is no source.
    NoSource,
    /// Only a source turned off can be turned on again.
    NotOff,
}

impl core::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RegisterError::Duplicate(s) => write!(f, "source {s:#x} already has a handler"),
            RegisterError::Full => f.write_str("the interrupt handler table is full"),
            RegisterError::NoSource => f.write_str("no interrupt source"),
            RegisterError::NotOff => f.write_str("the source is not turned off"),
        }
    }
}

/// A registered source: its slot in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq(usize);

struct Slot<H> {
    state: AtomicU8,
    source: AtomicU32,
    label: spin::Once<&'static str>,
    handler: spin::Once<H>,
    counts: [AtomicU64; MAX_CPUS],
}

impl<H> Slot<H> {
    const fn new() -> Self {
        Slot {
            state: AtomicU8::new(FREE),
            source: AtomicU32::new(u32::MAX),
            label: spin::Once::new(),
            handler: spin::Once::new(),
            counts: [const { AtomicU64::new(0) }; MAX_CPUS],
        }
    }

    fn count(&self, cpu: usize) -> u64 {
        self.counts
            .get(cpu)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Up to `N` sources and their handlers (`H`: what the controller's glue calls,
/// typically a `fn`), with per-source, per-CPU counters.
pub struct HandlerTable<H, const N: usize> {
    register_lock: spin::Mutex<()>,
    slots: [Slot<H>; N],
    unknown: [AtomicU64; MAX_CPUS],
}

impl<H, const N: usize> Default for HandlerTable<H, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H, const N: usize> HandlerTable<H, N> {
    /// An empty table.
    pub const fn new() -> Self {
        HandlerTable {
            register_lock: spin::Mutex::new(()),
            slots: [const { Slot::new() }; N],
            unknown: [const { AtomicU64::new(0) }; MAX_CPUS],
        }
    }

    /// Registers `handler` for `source`, its interrupts counted under `label`.
    /// A source that a live handler already has is refused.
    pub fn register(
        &self,
        source: u32,
        label: &'static str,
        handler: H,
    ) -> Result<Irq, RegisterError> {
        if source == u32::MAX {
            return Err(RegisterError::NoSource);
        }
        let _one_at_a_time = self.register_lock.lock();
        if self.find_live(source).is_some() {
            return Err(RegisterError::Duplicate(source));
        }
        let i = self
            .slots
            .iter()
            .position(|s| s.state.load(Ordering::Acquire) == FREE)
            .ok_or(RegisterError::Full)?;
        let slot = &self.slots[i];
        slot.state.store(CLAIMED, Ordering::Relaxed);
        slot.label.call_once(|| label);
        slot.handler.call_once(|| handler);
        slot.source.store(source, Ordering::Relaxed);
        slot.state.store(LIVE, Ordering::Release);
        Ok(Irq(i))
    }

    fn find_live(&self, source: u32) -> Option<Irq> {
        self.slots
            .iter()
            .position(|s| {
                s.state.load(Ordering::Acquire) == LIVE
                    && s.source.load(Ordering::Relaxed) == source
            })
            .map(Irq)
    }

    /// The handler for `source`, the interrupt counted for it on `cpu`; `None`
    /// (counted as unknown) when no live handler has it.
    pub fn dispatch(&self, source: u32, cpu: usize) -> Option<(Irq, &H)> {
        let found = self
            .find_live(source)
            .and_then(|irq| Some((irq, self.slots[irq.0].handler.get()?)));
        let counter = match found {
            Some((irq, _)) => self.slots[irq.0].counts.get(cpu),
            None => self.unknown.get(cpu),
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Turns `irq` off: its source is no longer dispatched (its interrupts count
    /// as unknown); its counts stay. Returns the source.
    pub fn turn_off(&self, irq: Irq) -> u32 {
        let slot = &self.slots[irq.0];
        slot.state.store(OFF, Ordering::Release);
        slot.source.load(Ordering::Relaxed)
    }

    /// Turns `irq` on again after [`HandlerTable::turn_off`]: its source is
    /// dispatched to its handler again. Refused when another live handler has
    /// the source meanwhile, and for a slot that is not off. Returns the source.
    pub fn turn_on(&self, irq: Irq) -> Result<u32, RegisterError> {
        let _one_at_a_time = self.register_lock.lock();
        let slot = &self.slots[irq.0];
        let source = slot.source.load(Ordering::Relaxed);
        if slot.state.load(Ordering::Acquire) != OFF {
            return Err(RegisterError::NotOff);
        }
        if self.find_live(source).is_some() {
            return Err(RegisterError::Duplicate(source));
        }
        slot.state.store(LIVE, Ordering::Release);
        Ok(source)
    }

    /// True while `irq` is dispatched.
    pub fn is_live(&self, irq: Irq) -> bool {
        self.slots[irq.0].state.load(Ordering::Acquire) == LIVE
    }

    /// The source `irq` was registered for.
    pub fn source(&self, irq: Irq) -> u32 {
        self.slots[irq.0].source.load(Ordering::Relaxed)
    }

    /// Interrupts counted for `irq` on `cpu`.
    pub fn count(&self, irq: Irq, cpu: usize) -> u64 {
        self.slots[irq.0].count(cpu)
    }

    /// Interrupts on `cpu` whose source had no live handler.
    pub fn unknown(&self, cpu: usize) -> u64 {
        self.unknown
            .get(cpu)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// `cpu`'s counts summed by label, one row per label of `labels` in that
    /// order (registered or not, so the rows are always the same), then any
    /// other label registered.
    pub fn rows(&self, labels: &[&'static str], cpu: usize) -> DeviceRows {
        let mut rows = DeviceRows::default();
        for l in labels {
            rows.add(l, 0);
        }
        for s in &self.slots {
            if matches!(s.state.load(Ordering::Acquire), LIVE | OFF) {
                if let Some(l) = s.label.get() {
                    rows.add(l, s.count(cpu));
                }
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Table = HandlerTable<u8, 4>;

    #[test]
    fn dispatch_finds_the_registered_handler_and_counts_per_cpu() {
        let t = Table::new();
        let vty = t.register(0x1000, "vty", 1).unwrap();
        let pci = t.register(0x1200, "pci", 2).unwrap();
        assert_eq!(t.dispatch(0x1000, 0), Some((vty, &1)));
        assert_eq!(t.dispatch(0x1000, 0), Some((vty, &1)));
        assert_eq!(t.dispatch(0x1200, 3), Some((pci, &2)));
        assert_eq!(t.count(vty, 0), 2);
        assert_eq!(t.count(vty, 3), 0);
        assert_eq!(t.count(pci, 3), 1);
        assert_eq!(t.source(pci), 0x1200);
        assert_eq!(t.unknown(0), 0);
    }

    #[test]
    fn a_duplicate_source_is_refused_and_the_first_handler_stays() {
        let t = Table::new();
        let a = t.register(7, "vty", 1).unwrap();
        assert_eq!(t.register(7, "other", 2), Err(RegisterError::Duplicate(7)));
        assert_eq!(t.dispatch(7, 0), Some((a, &1)));
    }

    #[test]
    fn an_unknown_source_is_counted_as_unknown_and_dispatches_nothing() {
        let t = Table::new();
        t.register(7, "vty", 1).unwrap();
        assert_eq!(t.dispatch(8, 1), None);
        assert_eq!(t.dispatch(8, 1), None);
        assert_eq!(t.unknown(1), 2);
        assert_eq!(t.unknown(0), 0);
        // A CPU index past the counters is not counted, and does not panic.
        assert_eq!(t.dispatch(8, MAX_CPUS), None);
        assert_eq!(t.unknown(MAX_CPUS), 0);
    }

    #[test]
    fn a_full_table_refuses_and_u32_max_is_no_source() {
        let t = HandlerTable::<u8, 2>::new();
        t.register(1, "a", 1).unwrap();
        t.register(2, "b", 2).unwrap();
        assert_eq!(t.register(3, "c", 3), Err(RegisterError::Full));
        assert_eq!(t.register(u32::MAX, "d", 4), Err(RegisterError::NoSource));
        assert_eq!(
            alloc::format!("{}", RegisterError::Duplicate(0x10)),
            "source 0x10 already has a handler"
        );
    }

    #[test]
    fn a_source_turned_off_counts_as_unknown_and_may_be_registered_again() {
        let t = Table::new();
        let a = t.register(9, "pci", 1).unwrap();
        t.dispatch(9, 0);
        assert_eq!(t.turn_off(a), 9);
        assert!(!t.is_live(a));
        assert_eq!(t.dispatch(9, 0), None);
        assert_eq!(t.unknown(0), 1);
        assert_eq!(t.count(a, 0), 1, "its counts stay");
        let b = t.register(9, "pci", 2).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.dispatch(9, 0), Some((b, &2)));
    }

    #[test]
    fn a_source_turned_off_is_turned_on_again_with_its_counts() {
        let t = Table::new();
        let a = t.register(9, "pci", 1).unwrap();
        assert_eq!(t.turn_on(a), Err(RegisterError::NotOff), "a live slot");
        t.dispatch(9, 0);
        t.turn_off(a);
        assert_eq!(t.dispatch(9, 0), None);
        assert_eq!(t.turn_on(a), Ok(9));
        assert!(t.is_live(a));
        assert_eq!(t.dispatch(9, 0), Some((a, &1)));
        assert_eq!(t.count(a, 0), 2, "the counts went on");
        assert_eq!(t.unknown(0), 1);
        // Not while another handler has taken the source meanwhile.
        t.turn_off(a);
        let b = t.register(9, "pci", 2).unwrap();
        assert_eq!(t.turn_on(a), Err(RegisterError::Duplicate(9)));
        assert_eq!(t.dispatch(9, 0), Some((b, &2)));
    }

    #[test]
    fn rows_sum_by_label_and_always_show_the_listed_labels() {
        let t = Table::new();
        let a = t.register(1, "pci", 1).unwrap();
        let _b = t.register(2, "pci", 2).unwrap();
        t.register(3, "extra", 3).unwrap();
        t.dispatch(1, 0);
        t.dispatch(2, 0);
        t.dispatch(2, 0);
        t.dispatch(3, 1);
        t.turn_off(a);
        let rows = t.rows(&["vty", "pci"], 0);
        let v: alloc::vec::Vec<_> = rows.iter().collect();
        assert_eq!(v, [("vty", 0), ("pci", 3), ("extra", 0)]);
        let v1: alloc::vec::Vec<_> = t.rows(&["vty", "pci"], 1).iter().collect();
        assert_eq!(v1, [("vty", 0), ("pci", 0), ("extra", 1)]);
    }
}
