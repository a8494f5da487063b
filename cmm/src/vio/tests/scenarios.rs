//! Hand-worked scenarios of the whole bus: mapping with TCEs, every failure path of
//! a mapping, the entitlement change around H_SET_MPP, and the exact output text.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use hcall::{HStatus, SetMppOutcome};

use super::fake::{FakeHv, FakePages, MppReply};
use crate::vio::{DmaWindow, VioBus, VioDevice, VioError, MIN_ENT};

const VSCSI: u32 = 0x7100_0002;
const VLAN: u32 = 0x7100_0003;
const VTY: u32 = 0x7100_0000;

fn devices() -> Vec<VioDevice> {
    let dev = |name: &str, unit, compat: &str, window: Option<u64>| VioDevice {
        name: name.into(),
        unit_address: unit,
        compatible: compat.into(),
        dma_window: window.map(|size| DmaWindow {
            liobn: unit,
            offset: 0,
            size,
        }),
    };
    vec![
        dev("vty@71000000", VTY, "hvterm1", None),
        dev("v-scsi@71000002", VSCSI, "IBM,v-scsi", Some(8 << 20)),
        dev("l-lan@71000003", VLAN, "IBM,l-lan", Some(64 << 20)),
    ]
}

/// E = 16 MiB, all three devices probed with their defaults.
fn probed() -> (VioBus, FakeHv, FakePages) {
    let mut bus = VioBus::new(16 << 20, devices()).unwrap();
    assert!(bus.probe_all().is_empty());
    (bus, FakeHv::new(16 << 20), FakePages::new(100_000))
}

#[test]
fn vio_bus_probe_defaults() {
    let (bus, _, _) = probed();
    let scsi = bus.device_stats(VSCSI).unwrap();
    let lan = bus.device_stats(VLAN).unwrap();
    assert_eq!((scsi.desired, scsi.entitled), (2_125_824, 2_125_824));
    assert_eq!((lan.desired, lan.entitled), (4_243_456, 4_243_456));
    let b = bus.stats();
    assert_eq!(b.desired, MIN_ENT + 2_125_824 + 4_243_456);
    assert_eq!(b.reserve_size, b.desired);
    assert_eq!(b.excess_free, (16 << 20) - b.desired);
    bus.accounting().check_invariants().unwrap();
}

#[test]
fn vio_bus_map_enters_and_clears_tces() {
    let (mut bus, mut hv, mut pages) = probed();
    let id = bus.map(&mut hv, &mut pages, VSCSI, 10_000).unwrap();
    // 10000 bytes charge 3 pages.
    assert_eq!(bus.device_stats(VSCSI).unwrap().allocated, 3 * 4096);
    let m = bus.mappings().next().unwrap().clone();
    assert_eq!((m.id, m.ioba, m.size, m.pages.len()), (id, 0, 3 * 4096, 3));
    for (i, p) in m.pages.iter().enumerate() {
        assert_eq!(hv.tces[&(VSCSI, 4096 * i as u64)], p | 3);
    }
    let id2 = bus.map(&mut hv, &mut pages, VSCSI, 4096).unwrap();
    assert_eq!(bus.mappings().nth(1).unwrap().ioba, 3 * 4096);
    bus.unmap(&mut hv, &mut pages, VSCSI, id).unwrap();
    assert_eq!(hv.tces.len(), 1);
    assert_eq!(pages.out.len(), 1);
    assert_eq!(
        bus.unmap(&mut hv, &mut pages, VLAN, id2),
        Err(VioError::NoSuchMapping {
            unit: VLAN,
            id: id2
        })
    );
    assert_eq!(bus.unmap_all(&mut hv, &mut pages, VSCSI), Ok(1));
    assert!(hv.tces.is_empty() && pages.out.is_empty());
    assert_eq!(bus.stats().curr, 0);
    assert_eq!(bus.stats().high, 4 * 4096);
}

#[test]
fn mapping_tces_are_the_entered_values() {
    let (mut bus, mut hv, mut pages) = probed();
    bus.map(&mut hv, &mut pages, VSCSI, 3 * 4096).unwrap();
    let m = bus.mappings().next().unwrap();
    let tces: Vec<(u64, u64)> = m.tces().collect();
    assert_eq!(tces.len(), 3);
    for (i, &(ioba, value)) in tces.iter().enumerate() {
        assert_eq!(ioba, 4096 * i as u64);
        assert_eq!(value, m.pages[i] | 0b11);
        assert_eq!(hv.tces[&(VSCSI, ioba)], value);
    }
}

#[test]
fn pages_for_map_only_when_the_charge_fits() {
    let (bus, _, _) = probed();
    let available = bus.accounting().available(VSCSI).unwrap();
    assert_eq!(bus.pages_for_map(VSCSI, 1), 1);
    assert_eq!(bus.pages_for_map(VSCSI, 10_000), 3);
    // The charge is whole pages: the most that fits is the whole pages available.
    let whole = available / 4096 * 4096;
    assert!(whole > 0);
    assert_eq!(bus.pages_for_map(VSCSI, whole), available / 4096);
    assert_eq!(bus.pages_for_map(VSCSI, whole + 1), 0);
    assert_eq!(bus.pages_for_map(0x7777_0000, 4096), 0);
    assert_eq!(bus.pages_for_map(VSCSI, u64::MAX), 0);
    assert_eq!(bus.pages_for_map(VSCSI, 0), 0);
}

#[test]
fn vio_bus_map_beyond_entitlement_fails_cleanly() {
    let (mut bus, mut hv, mut pages) = probed();
    let available = bus.accounting().available(VLAN).unwrap();
    let before = bus.clone();
    let err = bus
        .map(&mut hv, &mut pages, VLAN, available + 1)
        .unwrap_err();
    assert!(matches!(err, VioError::EntitlementExceeded { .. }));
    // No page was asked for, nothing entered, only allocs_failed moved.
    assert_eq!(pages.allocs, 0);
    assert!(hv.tces.is_empty());
    assert_eq!(bus.device_stats(VLAN).unwrap().allocs_failed, 1);
    bus.reset_allocs_failed(VLAN).unwrap();
    assert_eq!(bus, before);
    // The available amount is not page aligned (MIN_ENT is not): its whole pages
    // fit (the window is 64 MiB).
    assert!(!crate::vio::units::is_page_aligned(available));
    bus.map(&mut hv, &mut pages, VLAN, available / 4096 * 4096)
        .unwrap();
}

#[test]
fn vio_bus_map_put_tce_failure_unwinds() {
    let (mut bus, mut hv, mut pages) = probed();
    let before = bus.clone();
    hv.fail_in(2); // the third page's H_PUT_TCE
    let err = bus.map(&mut hv, &mut pages, VLAN, 5 * 4096).unwrap_err();
    assert!(matches!(err, VioError::Hcall(e) if e.call == "H_PUT_TCE"));
    assert!(hv.tces.is_empty());
    assert!(pages.out.is_empty());
    assert_eq!(bus.device_stats(VLAN).unwrap().allocs_failed, 1);
    bus.reset_allocs_failed(VLAN).unwrap();
    assert_eq!(bus, before);
}

#[test]
fn vio_bus_map_unwind_failure_keeps_mapping() {
    let (mut bus, mut hv, mut pages) = probed();
    hv.fail_in(1); // second page fails...
    hv.fail_in(2); // ...and so does the first clearing call
    let err = bus.map(&mut hv, &mut pages, VLAN, 4 * 4096).unwrap_err();
    let VioError::UnwindFailed { id, .. } = err else {
        panic!("{err:?}");
    };
    // The first page's TCE is still entered: its page must not be free.
    assert_eq!(hv.tces.len(), 1);
    assert_eq!(pages.out.len(), 4);
    assert_eq!(bus.device_stats(VLAN).unwrap().allocated, 4 * 4096);
    assert_eq!(bus.device_stats(VLAN).unwrap().allocs_failed, 1);
    bus.unmap(&mut hv, &mut pages, VLAN, id).unwrap();
    assert!(hv.tces.is_empty() && pages.out.is_empty());
    assert_eq!(bus.stats().curr, 0);
}

#[test]
fn vio_bus_unmap_failure_keeps_mapping() {
    let (mut bus, mut hv, mut pages) = probed();
    let id = bus.map(&mut hv, &mut pages, VLAN, 2 * 4096).unwrap();
    hv.fail_in(0);
    assert!(bus.unmap(&mut hv, &mut pages, VLAN, id).is_err());
    assert_eq!(pages.out.len(), 2);
    assert_eq!(bus.mappings().count(), 1);
    bus.unmap(&mut hv, &mut pages, VLAN, id).unwrap();
    assert!(pages.out.is_empty() && hv.tces.is_empty());
}

#[test]
fn vio_bus_map_out_of_pages_and_window() {
    let (mut bus, mut hv, _) = probed();
    let mut few = FakePages::new(2);
    let before = bus.clone();
    assert_eq!(
        bus.map(&mut hv, &mut few, VLAN, 3 * 4096),
        Err(VioError::OutOfPages)
    );
    assert!(few.out.is_empty());
    // The v-scsi window holds 8 MiB; its desired can be raised past that.
    let mut pages = FakePages::new(100_000);
    bus.set_desired(VSCSI, 12 << 20).unwrap();
    let err = bus.map(&mut hv, &mut pages, VSCSI, 9 << 20).unwrap_err();
    assert_eq!(
        err,
        VioError::WindowFull {
            unit: VSCSI,
            pages: 9 * 256
        }
    );
    assert_eq!(bus.device_stats(VSCSI).unwrap().allocs_failed, 1);
    assert_eq!(before.device_stats(VLAN).unwrap().allocs_failed, 0);
    assert_eq!(bus.device_stats(VLAN).unwrap().allocs_failed, 1);
}

#[test]
fn vio_bus_refusals_change_nothing() {
    let (mut bus, mut hv, mut pages) = probed();
    let id = bus.map(&mut hv, &mut pages, VSCSI, 4096).unwrap();
    let before = bus.clone();
    assert!(matches!(
        bus.remove(VSCSI),
        Err(VioError::DeviceBusy { .. })
    ));
    assert_eq!(
        bus.map(&mut hv, &mut pages, VTY, 4096),
        Err(VioError::NoDmaWindow(VTY))
    );
    assert_eq!(
        bus.map(&mut hv, &mut pages, VSCSI, 0),
        Err(VioError::ZeroSize)
    );
    assert_eq!(
        bus.map(&mut hv, &mut pages, VSCSI, u64::MAX),
        Err(VioError::Overflow)
    );
    assert_eq!(bus.set_desired(VTY, 1), Err(VioError::NoDmaWindow(VTY)));
    assert!(matches!(
        bus.remove_device(VSCSI),
        Err(VioError::StillBound(_))
    ));
    assert_eq!(bus, before);
    bus.unmap(&mut hv, &mut pages, VSCSI, id).unwrap();
    bus.remove(VSCSI).unwrap();
    assert_eq!(
        bus.map(&mut hv, &mut pages, VSCSI, 4096),
        Err(VioError::NotBound(VSCSI))
    );
    bus.remove_device(VSCSI).unwrap();
    assert_eq!(bus.devices().len(), 2);
    bus.accounting().check_invariants().unwrap();
}

#[test]
fn vio_bus_set_entitlement_paths() {
    let (mut bus, mut hv, mut pages) = probed();
    bus.map(&mut hv, &mut pages, VLAN, 3 << 20).unwrap();

    // Refused by the accounting: no hcall at all.
    let floor = bus.accounting().min_entitlement();
    let before = bus.clone();
    hv.reply = MppReply::Fail(HStatus::Hardware);
    assert!(matches!(
        bus.set_entitlement(&mut hv, floor - 4096, 0),
        Err(VioError::EntitlementInUse { .. })
    ));
    assert_eq!(bus, before);
    assert_eq!(hv.reply, MppReply::Fail(HStatus::Hardware));

    // H_SET_MPP fails: rolled back exactly.
    assert!(matches!(
        bus.set_entitlement(&mut hv, 32 << 20, 0),
        Err(VioError::Hcall(_))
    ));
    assert_eq!(bus, before);

    // Success.
    assert_eq!(
        bus.set_entitlement(&mut hv, 32 << 20, 0),
        Ok(SetMppOutcome::Set)
    );
    assert_eq!(bus.stats().entitled, 32 << 20);

    // H_CONSTRAINED: the accounting follows what H_GET_MPP reports.
    hv.reply = MppReply::Constrain(20 << 20);
    assert_eq!(
        bus.set_entitlement(&mut hv, 40 << 20, 0),
        Ok(SetMppOutcome::Constrained)
    );
    assert_eq!(bus.stats().entitled, 20 << 20);

    // H_CONSTRAINED below what the accounting can hold: floor, and an error.
    let floor = bus.accounting().min_entitlement();
    hv.reply = MppReply::Constrain(MIN_ENT);
    assert_eq!(
        bus.set_entitlement(&mut hv, 18 << 20, 0),
        Err(VioError::EntitlementShortfall {
            granted: MIN_ENT,
            floor
        })
    );
    assert_eq!(bus.stats().entitled, floor);

    // H_CONSTRAINED and H_GET_MPP fails: the smaller of old and new.
    hv.reply = MppReply::ConstrainUnknown(0);
    let err = bus.set_entitlement(&mut hv, 24 << 20, 0).unwrap_err();
    assert!(matches!(err, VioError::EntitlementUnknown { assumed, .. } if assumed == floor));
    assert_eq!(bus.stats().entitled, floor);
    bus.accounting().check_invariants().unwrap();
}

#[test]
fn vio_bus_resolve_units() {
    let (bus, _, _) = probed();
    assert_eq!(bus.resolve("v-scsi@71000002"), Ok(VSCSI));
    assert_eq!(bus.resolve("71000003"), Ok(VLAN));
    assert_eq!(bus.resolve("0x71000000"), Ok(VTY));
    assert_eq!(
        bus.resolve("71000009"),
        Err(VioError::UnknownUnit("71000009".into()))
    );
    assert!(bus.resolve("").is_err());
}

fn render(f: impl Fn(&VioBus, &mut String) -> core::fmt::Result, bus: &VioBus) -> String {
    let mut s = String::new();
    f(bus, &mut s).unwrap();
    s
}

#[test]
fn vio_render_vio_rows() {
    let (bus, _, _) = probed();
    let out = render(|b, s| b.write_vio_rows(s), &bus);
    assert_eq!(
        out,
        "vty@71000000: desired=0 entitled=0 allocated=0 allocs_failed=0\n\
         v-scsi@71000002: desired=2125824 entitled=2125824 allocated=0 allocs_failed=0\n\
         l-lan@71000003: desired=4243456 entitled=4243456 allocated=0 allocs_failed=0\n"
    );
}

#[test]
fn vio_render_amsstat_exact() {
    let (mut bus, mut hv, mut pages) = probed();
    bus.map(&mut hv, &mut pages, VSCSI, 4096).unwrap();
    let out = render(|b, s| b.write_amsstat_bus(s), &bus);
    let first = out.lines().nth(1).unwrap();
    // printf "%-4s %-30s %-30s\n" " " "cmo_entitled:" "16777216"
    let expect = alloc::format!("{:<4} {:<30} {:<30}", " ", "cmo_entitled:", 16_777_216);
    assert_eq!(first, expect);
    assert_eq!(first.len(), 4 + 1 + 30 + 1 + 30);
    assert!(out.starts_with("VIO Bus Statistics:\n     cmo_entitled:"));
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cmo_entitled:",
            "cmo_reserve_size:",
            "cmo_excess_size:",
            "cmo_excess_free:",
            "cmo_spare:",
            "cmo_min:",
            "cmo_desired:",
            "cmo_curr:",
            "cmo_high:"
        ]
    );

    let out = render(|b, s| b.write_amsstat_devices(s), &bus);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "VIO Device Statistics:");
    assert_eq!(lines[1], "   v-scsi@71000002:");
    assert_eq!(
        lines[4],
        alloc::format!("{:<4} {:<30} {:<30}", " ", "cmo_allocated:", 4096)
    );
    assert_eq!(lines[6], "   l-lan@71000003:");
    assert_eq!(lines.len(), 11);
    // Every row parses as the console tests read it.
    for l in lines.iter().filter(|l| l.starts_with("     ")) {
        let mut parts = l.split_whitespace();
        let name = parts.next().unwrap();
        assert!(name.ends_with(':'));
        parts.next().unwrap().parse::<u64>().unwrap();
    }
}

#[test]
fn vio_render_no_ams_devices() {
    let bus = VioBus::new(16 << 20, devices()).unwrap();
    let mut none = bus.clone();
    none.remove_device(VSCSI).unwrap();
    none.remove_device(VLAN).unwrap();
    let out = render(|b, s| b.write_amsstat_devices(s), &none);
    assert_eq!(out, "VIO Device Statistics:\n     No AMS devices found.\n");
    // Unprobed DMA devices already hold their minimum, so they are listed.
    let out = render(|b, s| b.write_amsstat_devices(s), &bus);
    assert!(out.contains("   v-scsi@71000002:\n"));
    let off = VioBus::without_cmo(devices()).unwrap();
    let out = render(|b, s| b.write_amsstat_devices(s), &off);
    assert!(out.ends_with("No AMS devices found.\n"));
}

#[test]
fn vio_render_sysfs_lines() {
    let (mut bus, mut hv, mut pages) = probed();
    bus.map(&mut hv, &mut pages, VLAN, 8192).unwrap();
    let out = render(|b, s| b.write_sysfs(s), &bus);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/sys/bus/vio/cmo_entitled=16777216");
    assert!(lines.contains(&"/sys/bus/vio/cmo_curr=8192"));
    assert!(lines.contains(&"/sys/bus/vio/devices/71000002/devspec=/vdevice/v-scsi@71000002"));
    assert!(lines.contains(&"/sys/bus/vio/devices/71000003/cmo_allocated=8192"));
    assert!(lines.contains(&"/sys/bus/vio/devices/71000000/cmo_entitled=0"));
    assert_eq!(lines.len(), 9 + 3 * 5);
    for l in &lines {
        let (path, value) = l.split_once('=').unwrap();
        assert!(path.starts_with("/sys/bus/vio/"));
        assert!(value.parse::<u64>().is_ok() || value.starts_with("/vdevice/"));
    }
}

#[test]
fn vio_bus_reset_high() {
    let (mut bus, mut hv, mut pages) = probed();
    let id = bus.map(&mut hv, &mut pages, VLAN, 1 << 20).unwrap();
    bus.map(&mut hv, &mut pages, VLAN, 4096).unwrap();
    bus.unmap(&mut hv, &mut pages, VLAN, id).unwrap();
    assert_eq!(bus.stats().high, (1 << 20) + 4096);
    bus.reset_high();
    assert_eq!(bus.stats().high, 4096);
}

#[test]
fn vio_bus_without_cmo_maps_uncharged() {
    let mut bus = VioBus::without_cmo(devices()).unwrap();
    let (mut hv, mut pages) = (FakeHv::new(0), FakePages::new(100));
    assert!(bus.probe_all().is_empty());
    let id = bus.map(&mut hv, &mut pages, VSCSI, 8192).unwrap();
    assert_eq!(hv.tces.len(), 2);
    assert_eq!(bus.stats().curr, 0);
    assert!(matches!(
        bus.remove(VSCSI),
        Err(VioError::DeviceBusy { .. })
    ));
    assert_eq!(
        bus.set_entitlement(&mut hv, 1 << 30, 0),
        Err(VioError::CmoDisabled)
    );
    bus.unmap(&mut hv, &mut pages, VSCSI, id).unwrap();
    bus.accounting().check_invariants().unwrap();
}
