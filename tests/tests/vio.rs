//! VIO entitled-memory accounting, per device, with real DMA mappings.

use std::collections::BTreeMap;

use lpar_cmm_tests::{reply::parse_rows, Qemu, Reply};

const MIN_ENT: i64 = 1_562_624;
const VSCSI: &str = "v-scsi@71000002";
const VLAN: &str = "l-lan@71000003";

fn vm() -> Qemu {
    Qemu::builder().vscsi().vlan().boot()
}

/// `vio` rows: unit name → (desired, entitled, allocated, allocs_failed).
fn devices(r: &Reply) -> BTreeMap<String, [i64; 4]> {
    r.lines
        .iter()
        .filter_map(|l| {
            let (name, rest) = l.split_once(": ")?;
            let mut v = [0i64; 4];
            for kv in rest.split_whitespace() {
                let (k, n) = kv.split_once('=')?;
                let i = ["desired", "entitled", "allocated", "allocs_failed"]
                    .iter()
                    .position(|x| *x == k)?;
                v[i] = n.parse().ok()?;
            }
            Some((name.to_string(), v))
        })
        .collect()
}

/// The VIO Bus Statistics rows of `amsstat`.
fn bus(vm: &mut Qemu) -> BTreeMap<String, i64> {
    let t = vm.ok("amsstat").text();
    let sec: Vec<String> = t
        .split("VIO Bus Statistics:")
        .nth(1)
        .unwrap()
        .split("VIO Device Statistics:")
        .next()
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    parse_rows(&sec)
}

#[test]
fn both_devices_get_at_least_the_minimum_entitlement() {
    let mut vm = vm();
    let d = devices(&vm.ok("vio"));
    for unit in [VSCSI, VLAN] {
        let [desired, entitled, allocated, failed] = d[unit];
        assert!(entitled >= MIN_ENT, "{unit}: entitled {entitled}");
        assert!(entitled <= desired, "{unit}");
        assert_eq!((allocated, failed), (0, 0));
    }
    let b = bus(&mut vm);
    assert_eq!(
        b["cmo_reserve_size"] + b["cmo_excess_size"],
        b["cmo_entitled"]
    );
    assert_eq!(b["cmo_spare"], MIN_ENT);
    assert_eq!(b["cmo_entitled"], vm.ok("mpp").get("entitled_mem"));
}

#[test]
fn a_mapping_within_entitlement_is_entered_and_reads_back() {
    let mut vm = vm();
    let before = bus(&mut vm);
    let id = vm.ok(&format!("vio map {VSCSI} 64K")).get("id");
    let t = vm.ok(&format!("vio tce {VSCSI} {id}"));
    assert_eq!(t.get("pages"), 16);
    assert_eq!(t.get("mismatches"), 0, "{}", t.text());
    let d = devices(&vm.ok("vio"));
    assert_eq!(d[VSCSI][2], 65536);
    assert_eq!(
        vm.ok("mpp").get("mapped_mem"),
        65536,
        "the hypervisor counts the mapped bytes"
    );
    let b = bus(&mut vm);
    assert_eq!(b["cmo_curr"], 65536);
    assert!(b["cmo_high"] >= 65536);

    vm.ok(&format!("vio unmap {VSCSI} {id}"));
    let after = bus(&mut vm);
    for (k, v) in &before {
        if k != "cmo_high" {
            assert_eq!(after[k], *v, "{k} not restored by unmap");
        }
    }
    assert_eq!(devices(&vm.ok("vio"))[VSCSI][2], 0);
    assert_eq!(vm.ok("mpp").get("mapped_mem"), 0);
    // The TCEs are gone.
    assert!(vm
        .err(&format!("vio tce {VSCSI} {id}"))
        .contains("no mapping"));
}

#[test]
fn a_mapping_beyond_entitlement_fails_counts_and_changes_nothing_else() {
    let mut vm = vm();
    let before_bus = bus(&mut vm);
    let before = devices(&vm.ok("vio"));
    let free_before = vm.ok("meminfo").get("MemFree");
    let e = vm.err(&format!("vio map {VLAN} 200M"));
    assert!(e.contains("209715200 bytes exceed"), "{e}");
    let after = devices(&vm.ok("vio"));
    assert_eq!(
        after[VLAN][3],
        before[VLAN][3] + 1,
        "allocs_failed not counted"
    );
    assert_eq!(&after[VLAN][..3], &before[VLAN][..3]);
    assert_eq!(after[VSCSI], before[VSCSI]);
    assert_eq!(bus(&mut vm), before_bus);
    assert_eq!(
        vm.ok("meminfo").get("MemFree"),
        free_before,
        "a page was lost"
    );
}

#[test]
fn entitlement_changes_rebalance_and_too_small_is_refused() {
    let mut vm = vm();
    let e0 = bus(&mut vm)["cmo_entitled"];
    let r = vm.ok("mpp entitle 128M");
    assert_eq!(r.get("entitled"), 128 << 20);
    let b = bus(&mut vm);
    assert_eq!(b["cmo_entitled"], 128 << 20);
    assert_eq!(
        b["cmo_reserve_size"] + b["cmo_excess_size"],
        b["cmo_entitled"]
    );
    assert_eq!(vm.ok("mpp").get("entitled_mem"), 128 << 20);

    vm.ok(&format!("mpp entitle {e0}"));
    let b = bus(&mut vm);
    assert_eq!(b["cmo_entitled"], e0);
    assert_eq!(
        b["cmo_reserve_size"] + b["cmo_excess_size"],
        b["cmo_entitled"]
    );

    let before = bus(&mut vm);
    let dev_before = devices(&vm.ok("vio"));
    let e = vm.err("mpp entitle 1M");
    assert!(e.contains("below") && e.contains("VIO needs"), "{e}");
    assert_eq!(
        bus(&mut vm),
        before,
        "a refused entitlement changed the bus"
    );
    assert_eq!(devices(&vm.ok("vio")), dev_before);
    assert_eq!(
        vm.ok("mpp").get("entitled_mem"),
        e0,
        "a refused entitlement reached the hypervisor"
    );

    // A failing H_SET_MPP is rolled back.
    vm.ok("hv fail set_mpp 1 H_HARDWARE");
    assert!(vm.err("mpp entitle 96M").contains("H_HARDWARE"));
    assert_eq!(
        bus(&mut vm),
        before,
        "a failed H_SET_MPP was not rolled back"
    );
}

#[test]
fn a_device_with_mappings_cannot_be_removed() {
    let mut vm = vm();
    let id = vm.ok(&format!("vio map {VLAN} 8K")).get("id");
    let e = vm.err(&format!("vio remove {VLAN}"));
    assert!(e.contains("still has 8192 bytes mapped"), "{e}");
    vm.ok(&format!("vio unmap {VLAN} {id}"));
    vm.ok(&format!("vio remove {VLAN}"));
    vm.ok(&format!("vio probe {VLAN}"));
    assert!(devices(&vm.ok("vio"))[VLAN][1] >= MIN_ENT);
}

#[test]
fn desired_changes_and_amsstat_layout() {
    let mut vm = vm();
    vm.ok(&format!("vio desired {VSCSI} 4M"));
    let d = devices(&vm.ok("vio"));
    assert_eq!(d[VSCSI][0], 4 << 20);
    let t = vm.ok("amsstat").text();
    let lines: Vec<&str> = t.lines().collect();
    let bus_at = lines
        .iter()
        .position(|l| *l == "VIO Bus Statistics:")
        .expect("bus section");
    let dev_at = lines
        .iter()
        .position(|l| *l == "VIO Device Statistics:")
        .expect("device section");
    assert!(bus_at < dev_at);
    assert!(
        lines[bus_at + 1].starts_with("     cmo_entitled:"),
        "{}",
        lines[bus_at + 1]
    );
    let scsi_at = lines
        .iter()
        .position(|l| *l == format!("   {VSCSI}:"))
        .expect("device header");
    assert!(scsi_at > dev_at);
    assert!(
        lines[scsi_at + 1].trim_start().starts_with("cmo_"),
        "{}",
        lines[scsi_at + 1]
    );
    // amsstat's printf layout: "%-4s %-30s %-30s" with " " first.
    let row = lines[scsi_at + 1];
    assert_eq!(&row[..5], "     ");
    assert_eq!(row.len(), 5 + 30 + 1 + 30);
    let s = vm.ok("sysfs");
    assert!(s
        .lines
        .iter()
        .any(|l| l == "/sys/bus/vio/devices/71000002/devspec=/vdevice/v-scsi@71000002"));
    assert!(s
        .lines
        .iter()
        .any(|l| l.starts_with("/sys/bus/vio/cmo_entitled=")));
    assert!(s
        .lines
        .iter()
        .any(|l| l == "/sys/bus/vio/devices/71000002/cmo_desired=4194304"));
}
