//! The driver seam: what a driver is to the kernel ([`Driver`]), what its probe
//! gets ([`Probe`]), and what the kernel does with the list of them (probe each
//! in order, give each its turn in the main loop, ask whether one has work
//! waiting, name their interrupt counters).
//!
//! The glue keeps the list (`glue/drivers/mod.rs`, `DRIVERS`) with one file per
//! device; a driver attaches its interrupt source in its probe to the
//! controller's handler table ([`crate::irq::HandlerTable`]), so the controller,
//! the main loop and the `cpu` reply's counters take a new driver from the list
//! alone. Generic over the state the main loop lends (`S`, the kernel's
//! `System`) and the balloon device a probe may hand over (`D`), so a host test
//! registers a fake driver end to end.

use crate::devtree::Platform;
use crate::xics::Sources;

/// What a probe gets, and where it hands over a device the kernel uses
/// elsewhere.
pub struct Probe<'a, D> {
    /// Facts from the device tree.
    pub platform: &'a Platform,
    /// Interrupt sources from the device tree.
    pub sources: &'a Sources,
    /// The hypervisor backend takes a balloon device (the pool model).
    pub balloon_wanted: bool,
    /// The balloon device, for the backend.
    pub balloon: Option<D>,
}

/// One driver: what the kernel calls it for.
pub struct Driver<S, D> {
    /// Its name (log lines, its timer).
    pub name: &'static str,
    /// The label its interrupts are counted under (the `cpu` reply's
    /// `interrupts_external_<label>` row, shown whether or not it attached).
    pub irq_label: Option<&'static str>,
    /// Finds its device in what boot found and attaches its interrupt; a device
    /// another part of the kernel uses is handed over in [`Probe`].
    pub probe: fn(&mut Probe<'_, D>),
    /// Its turn in the main loop, before the background work: acts on what its
    /// interrupt recorded, or polls and arms its timer. True when it left work
    /// that should go on at once.
    pub service: fn(&mut S) -> bool,
    /// True when its interrupt recorded something [`Driver::service`] must act
    /// on (the main loop does not sleep then).
    pub pending: Option<fn() -> bool>,
}

/// Probes every driver of `list` in order.
pub fn probe_all<S, D>(list: &[Driver<S, D>], p: &mut Probe<'_, D>) {
    for d in list {
        (d.probe)(p);
    }
}

/// Every driver's turn in the main loop, each one every time; true when one
/// left work to go on at once.
pub fn service_all<S, D>(list: &[Driver<S, D>], state: &mut S) -> bool {
    list.iter().fold(false, |more, d| (d.service)(state) | more)
}

/// True when a driver's interrupt recorded something to act on.
pub fn pending<S, D>(list: &[Driver<S, D>]) -> bool {
    list.iter().any(|d| d.pending.is_some_and(|p| p()))
}

/// The labels of every driver's interrupts, in list order.
pub fn irq_labels<S, D>(list: &[Driver<S, D>]) -> impl Iterator<Item = &'static str> + '_ {
    list.iter().filter_map(|d| d.irq_label)
}

#[cfg(test)]
mod tests {
    //! A fake device, "beeper", added as a new driver would be: its probe finds
    //! it in the tree's VIO devices, attaches its source to the controller's
    //! table; its interrupt records a beep; its turn acts on it.
    use super::*;
    use crate::irq::HandlerTable;
    use crate::xics::Source;
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    const UNIT: u32 = 0x3000_0001;
    const SOURCE: u32 = 0x1005;

    /// The controller's table, as the glue's `irq::attach` fills it.
    static TABLE: HandlerTable<fn(), 4> = HandlerTable::new();
    static BEEPED: AtomicBool = AtomicBool::new(false);
    static PROBED: AtomicU32 = AtomicU32::new(0);

    /// The state the main loop lends (the kernel's `System`).
    #[derive(Default)]
    struct State {
        beeps: u32,
        log: Vec<String>,
    }

    fn on_interrupt() {
        BEEPED.store(true, Ordering::Release);
    }

    fn probe(p: &mut Probe<'_, ()>) {
        PROBED.fetch_add(1, Ordering::Relaxed);
        if !p.platform.vdevices.iter().any(|d| d.unit == UNIT) {
            return;
        }
        if let Some(s) = p.sources.vio_source(UNIT) {
            TABLE.register(s.number, "beeper", on_interrupt).unwrap();
        }
    }

    fn service(s: &mut State) -> bool {
        if BEEPED.swap(false, Ordering::AcqRel) {
            s.beeps += 1;
            s.log.push(String::from("beep"));
        }
        false
    }

    fn pending() -> bool {
        BEEPED.load(Ordering::Acquire)
    }

    /// The beeper's whole registration: one entry.
    const BEEPER: Driver<State, ()> = Driver {
        name: "beeper",
        irq_label: Some("beeper"),
        probe,
        service,
        pending: Some(pending),
    };

    /// A driver that polls and has no interrupt, before it in the list.
    const POLLED: Driver<State, ()> = Driver {
        name: "polled",
        irq_label: None,
        probe: |_| {},
        service: |s| {
            s.log.push(String::from("polled"));
            true
        },
        pending: None,
    };

    #[test]
    fn a_new_driver_is_one_entry_in_the_list() {
        let list = [POLLED, BEEPER];
        let mut platform = Platform::default();
        platform.vdevices.push(crate::devtree::platform::VDevice {
            name: String::from("beeper@30000001"),
            unit: UNIT,
            compatible: String::from("beeper"),
            device_type: String::from("beeper"),
            dma_window: None,
        });
        let mut sources = Sources::default();
        sources.vio.push((
            UNIT,
            Source {
                number: SOURCE,
                level: false,
            },
        ));
        let mut p = Probe {
            platform: &platform,
            sources: &sources,
            balloon_wanted: false,
            balloon: None,
        };
        probe_all(&list, &mut p);
        assert_eq!(PROBED.load(Ordering::Relaxed), 1);
        // Its counter row is there before any interrupt, in list order.
        let labels: Vec<_> = irq_labels(&list).collect();
        assert_eq!(labels, ["beeper"]);
        assert_eq!(
            TABLE.rows(&labels, 0).iter().collect::<Vec<_>>(),
            [("beeper", 0)]
        );
        // The controller dispatches its source to its handler and counts it.
        let mut state = State::default();
        assert!(!super::pending(&list));
        let (_, handler) = TABLE.dispatch(SOURCE, 1).unwrap();
        handler();
        assert!(super::pending(&list), "the main loop does not sleep");
        assert!(service_all(&list, &mut state), "the polled driver has more");
        assert_eq!(state.beeps, 1);
        assert_eq!(state.log, ["polled", "beep"], "every driver, in list order");
        assert!(!super::pending(&list));
        assert_eq!(
            TABLE.rows(&labels, 1).iter().collect::<Vec<_>>(),
            [("beeper", 1)]
        );
        assert_eq!(TABLE.unknown(1), 0);
    }
}
