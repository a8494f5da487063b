//! Bringing the legacy balloon up, in the order the legacy virtio interface asks
//! (docs/virtio-balloon.md): reset (status 0, which also fixes the device's byte
//! order to the CPU's), ACKNOWLEDGE, DRIVER, read the host's features, write the
//! accepted ones ([`accepted_features`]), set up every queue they give
//! ([`queue_count`]: inflate, deflate, then statistics and reporting when
//! negotiated), let the driver prepare its buffers, and only then DRIVER_OK. Any
//! failure after the reset sets FAILED and DRIVER_OK is never written.
//!
//! The registers and queue memory are the glue's ([`Handshake`]); the order and
//! the failure rule are here, host-tested with a recording fake.

use alloc::string::String;

use crate::pci::{Bar, BarKind};

use super::legacy::{BAR_LEN, STATUS_ACK, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FAILED};
use super::reporting::{accepted_features, queue_count, reporting_queue};
use super::stats::F_STATS_VQ;

/// The device as the handshake reaches it.
pub trait Handshake {
    /// A set-up virtqueue.
    type Queue;
    /// Writes the device status register.
    fn set_status(&mut self, status: u8);
    /// Reads the host's feature bits.
    fn host_features(&mut self) -> u32;
    /// Writes the guest's feature bits.
    fn set_guest_features(&mut self, features: u32);
    /// Selects queue `index`, gives it memory and hands it to the device.
    fn setup_queue(&mut self, index: u16) -> Result<Self::Queue, &'static str>;
}

/// The queues the accepted features gave, by role.
#[derive(Debug)]
pub struct Queues<Q> {
    /// Queue 0.
    pub inflate: Q,
    /// Queue 1.
    pub deflate: Q,
    /// Queue 2, when statistics were negotiated.
    pub stats: Option<Q>,
    /// The reporting queue (its index, 2 or 3), when reporting was negotiated.
    pub report: Option<(u16, Q)>,
}

/// What the handshake agreed.
#[derive(Debug)]
pub struct Negotiated<Q> {
    /// The host's offer.
    pub host_features: u32,
    /// What the driver accepted.
    pub accepted: u32,
    /// The queues, by role.
    pub queues: Queues<Q>,
}

/// Runs the handshake: `prepare` turns what was agreed into the driver's state
/// (its buffers) before DRIVER_OK is written. Returns that state and the host's
/// features, or why the device cannot be used (FAILED written).
pub fn bring_up<H: Handshake, T>(
    h: &mut H,
    prepare: impl FnOnce(Negotiated<H::Queue>) -> Result<T, String>,
) -> Result<(T, u32), String> {
    h.set_status(0);
    h.set_status(STATUS_ACK);
    h.set_status(STATUS_ACK | STATUS_DRIVER);
    let host_features = h.host_features();
    let accepted = accepted_features(host_features);
    h.set_guest_features(accepted);
    let r = queues(h, accepted)
        .map_err(String::from)
        .and_then(|queues| {
            prepare(Negotiated {
                host_features,
                accepted,
                queues,
            })
        });
    match r {
        Ok(t) => {
            h.set_status(STATUS_ACK | STATUS_DRIVER | STATUS_DRIVER_OK);
            Ok((t, host_features))
        }
        Err(e) => {
            h.set_status(STATUS_FAILED);
            Err(e)
        }
    }
}

/// Sets up queues 0..[`queue_count`] in order and gives them their roles.
fn queues<H: Handshake>(h: &mut H, accepted: u32) -> Result<Queues<H::Queue>, &'static str> {
    let inflate = h.setup_queue(0)?;
    let deflate = h.setup_queue(1)?;
    let mut stats = None;
    let mut report = None;
    for index in 2..queue_count(accepted) {
        let q = h.setup_queue(index)?;
        if Some(index) == reporting_queue(accepted) {
            report = Some((index, q));
        } else if accepted & F_STATS_VQ != 0 && index == 2 {
            stats = Some(q);
        }
    }
    Ok(Queues {
        inflate,
        deflate,
        stats,
        report,
    })
}

/// The legacy register block's BAR: BAR0, an I/O BAR at least
/// [`BAR_LEN`] long, inside one of the bridge's windows. Its CPU address and
/// length, or why the device cannot be driven.
pub fn legacy_io_bar(bar0: Option<Bar>) -> Result<(u64, u64), &'static str> {
    let bar = bar0.ok_or("no BAR0")?;
    if bar.kind != BarKind::Io || bar.size < BAR_LEN {
        return Err("BAR0 is not the legacy I/O BAR");
    }
    let io = bar
        .cpu_addr
        .ok_or("BAR0 is outside the bridge's I/O window")?;
    Ok((io, bar.size))
}

#[cfg(test)]
mod tests {
    use super::super::reporting::F_REPORTING;
    use super::*;
    use alloc::vec::Vec;

    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Step {
        Status(u8),
        HostFeatures,
        GuestFeatures(u32),
        Queue(u16),
    }

    struct Fake {
        offer: u32,
        steps: Vec<Step>,
        refuse_queue: Option<u16>,
    }

    impl Handshake for Fake {
        type Queue = u16;
        fn set_status(&mut self, status: u8) {
            self.steps.push(Step::Status(status));
        }
        fn host_features(&mut self) -> u32 {
            self.steps.push(Step::HostFeatures);
            self.offer
        }
        fn set_guest_features(&mut self, features: u32) {
            self.steps.push(Step::GuestFeatures(features));
        }
        fn setup_queue(&mut self, index: u16) -> Result<u16, &'static str> {
            self.steps.push(Step::Queue(index));
            if self.refuse_queue == Some(index) {
                return Err("queue size is not a power of two");
            }
            Ok(index)
        }
    }

    fn fake(offer: u32) -> Fake {
        Fake {
            offer,
            steps: Vec::new(),
            refuse_queue: None,
        }
    }

    type Roles = (u16, u16, Option<u16>, Option<(u16, u16)>);

    fn roles(n: Negotiated<u16>) -> Result<Roles, String> {
        let q = n.queues;
        Ok((q.inflate, q.deflate, q.stats, q.report))
    }

    #[test]
    fn only_a_long_enough_io_bar0_in_a_window_is_the_register_block() {
        let io = Bar {
            kind: BarKind::Io,
            pci_addr: 0x1000,
            size: 0x40,
            cpu_addr: Some(0x2000_8000_1000),
        };
        assert_eq!(legacy_io_bar(Some(io)), Ok((0x2000_8000_1000, 0x40)));
        assert_eq!(legacy_io_bar(None), Err("no BAR0"));
        let short = Bar {
            size: BAR_LEN - 1,
            ..io
        };
        assert_eq!(
            legacy_io_bar(Some(short)),
            Err("BAR0 is not the legacy I/O BAR")
        );
        let mem = Bar {
            kind: BarKind::Mem32,
            ..io
        };
        assert_eq!(
            legacy_io_bar(Some(mem)),
            Err("BAR0 is not the legacy I/O BAR")
        );
        let outside = Bar {
            cpu_addr: None,
            ..io
        };
        assert_eq!(
            legacy_io_bar(Some(outside)),
            Err("BAR0 is outside the bridge's I/O window")
        );
    }

    #[test]
    fn the_handshake_runs_in_the_legacy_order_and_ends_with_driver_ok() {
        // QEMU 7.2's offer with statistics and reporting (and page poisoning,
        // which is not accepted).
        let offer = 0x7900_0032;
        let mut f = fake(offer);
        let (r, host) = bring_up(&mut f, roles).unwrap();
        assert_eq!(host, offer);
        assert_eq!(r, (0, 1, Some(2), Some((3, 3))));
        let accepted = F_STATS_VQ | F_REPORTING;
        assert_eq!(
            f.steps,
            [
                Step::Status(0),
                Step::Status(STATUS_ACK),
                Step::Status(STATUS_ACK | STATUS_DRIVER),
                Step::HostFeatures,
                Step::GuestFeatures(accepted),
                Step::Queue(0),
                Step::Queue(1),
                Step::Queue(2),
                Step::Queue(3),
                Step::Status(STATUS_ACK | STATUS_DRIVER | STATUS_DRIVER_OK),
            ]
        );
    }

    #[test]
    fn queue_roles_follow_the_features() {
        let mut f = fake(0);
        assert_eq!(bring_up(&mut f, roles).unwrap().0, (0, 1, None, None));
        assert!(!f.steps.contains(&Step::Queue(2)));
        let mut f = fake(F_REPORTING);
        assert_eq!(
            bring_up(&mut f, roles).unwrap().0,
            (0, 1, None, Some((2, 2)))
        );
        let mut f = fake(F_STATS_VQ);
        assert_eq!(bring_up(&mut f, roles).unwrap().0, (0, 1, Some(2), None));
    }

    #[test]
    fn a_failure_writes_failed_and_never_driver_ok() {
        let driver_ok = Step::Status(STATUS_ACK | STATUS_DRIVER | STATUS_DRIVER_OK);
        // A queue the device gives a bad size: no later queue is set up.
        let mut f = fake(F_STATS_VQ | F_REPORTING);
        f.refuse_queue = Some(2);
        let e = bring_up(&mut f, roles).unwrap_err();
        assert_eq!(e, "queue size is not a power of two");
        assert!(!f.steps.contains(&Step::Queue(3)));
        assert_eq!(f.steps.last(), Some(&Step::Status(STATUS_FAILED)));
        assert!(!f.steps.contains(&driver_ok));
        // The driver's own preparation failing (no memory): FAILED too.
        let mut f = fake(0);
        let e = bring_up(&mut f, |_| -> Result<(), String> {
            Err("no memory for the PFN buffer".into())
        })
        .unwrap_err();
        assert_eq!(e, "no memory for the PFN buffer");
        assert_eq!(f.steps.last(), Some(&Step::Status(STATUS_FAILED)));
        assert!(!f.steps.contains(&driver_ok));
    }
}
