//! Booting through Open Firmware: SLOF and VOF enter the kernel with
//! the client interface in r5; the kernel negotiates with CAS, flattens the
//! firmware's tree, leaves the firmware and reaches `lpar-cmm ready` with the
//! same facts as the fast path (boot ROM, device tree in r3) on the same QEMU
//! command line. Its flattened tree, dumped with `devtree dump` and decoded by
//! `dtc`, equals QEMU's own (`dumpdtb`) in every node and property, except what
//! the firmware adds or changes itself (listed below).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use lpar_cmm_tests::dts::{self, DtsNode};
use lpar_cmm_tests::{fdt_dump, Builder, Firmware, Qemu, Reply};

/// The command line under test: default RAM plus a v-scsi and a v-lan, so the
/// tree has VIO devices with DMA windows. SLOF probes both devices and takes
/// tens of seconds under TCG on a busy machine, hence the long timeouts.
fn builder(fw: Firmware) -> Builder {
    Qemu::builder()
        .firmware(fw)
        .vscsi()
        .vlan()
        .reply_timeout(Duration::from_secs(240))
        .timeout(Duration::from_secs(600))
}

/// Properties QEMU puts in its tree whose values the firmware or CAS change, as
/// (node path, or `*` for any node, property). Compared for presence only.
const CHANGED: &[(&str, &str, &str)] = &[
    (
        "/chosen",
        "rng-seed",
        "random: QEMU draws a new seed on every run and at CAS",
    ),
    (
        "/chosen",
        "stdout",
        "VOF: an instance handle, reopened when QEMU rebuilds the tree at CAS",
    ),
    ("/chosen", "stdin", "VOF: an instance handle, as stdout"),
    ("/chosen", "ibm,architecture-vec-5", "the CAS result"),
    (
        "/memory@0",
        "available",
        "VOF: its free list, which claiming the RTAS area changes",
    ),
    (
        "*",
        "cpu-version",
        "the compatibility mode CAS negotiated (a logical PVR)",
    ),
];

/// Properties the firmware removes from QEMU's nodes.
const REMOVED: &[(&str, &str)] = &[
    // SLOF keeps its own phandles (node addresses) and drops QEMU's `phandle`
    // and `linux,phandle`; the kernel's flattener gives every node a `phandle`
    // again, compared below through the phandle mapping.
    ("SLOF", "linux,phandle"),
];

/// Properties whose values hold phandles: compared after mapping QEMU's
/// phandles to the kernel's (the same node, found by path).
const PHANDLE_REFS: &[&str] = &["phandle", "interrupt-parent", "interrupt-map"];

// Nodes and properties only the firmware has are not compared; for the record,
// SLOF adds `/aliases`, `/options`, `/openprom`, `/packages/*`, `/mmu`, disk
// nodes under v-scsi, `/chosen` instance handles (`stdout`, `stdin`, `mmu`,
// `memory`, `cpu`), `available` in `/memory@0` and `slof,from-fdt` everywhere;
// VOF adds `available`, `bootargs`, `stdout`, `stdin` and a `phandle` on every
// node (also in QEMU's dump, which is taken after VOF set up the tree).

fn changed_why(path: &str, prop: &str) -> Option<&'static str> {
    CHANGED
        .iter()
        .find(|(p, n, _)| (*p == "*" || *p == path) && *n == prop)
        .map(|(_, _, why)| *why)
}

/// The `<...>` cells of a dts value, or None for other kinds of values.
fn cells(v: &str) -> Option<Vec<u64>> {
    let inner = v.trim().strip_prefix('<')?.strip_suffix('>')?;
    inner
        .split_whitespace()
        .map(|c| u64::from_str_radix(c.trim_start_matches("0x"), 16).ok())
        .collect()
}

/// Compares QEMU's tree with the kernel's; returns every difference found.
fn tree_differences(fw: Firmware, qemu: &[DtsNode], kernel: &[DtsNode]) -> Vec<String> {
    let by_path: HashMap<&str, &DtsNode> = kernel.iter().map(|n| (n.path.as_str(), n)).collect();
    // QEMU's phandle → the kernel's phandle of the node at the same path.
    let mut map: HashMap<u64, u64> = HashMap::new();
    let mut problems = Vec::new();
    for n in qemu {
        let Some(old) = n.cells("phandle").and_then(|c| c.first().copied()) else {
            continue;
        };
        match by_path
            .get(n.path.as_str())
            .and_then(|k| k.cells("phandle"))
        {
            Some(c) if c.len() == 1 => {
                map.insert(old, c[0]);
            }
            _ => problems.push(format!("{}: has no phandle in the kernel's tree", n.path)),
        }
    }
    let fw_name = if fw == Firmware::Slof { "SLOF" } else { "VOF" };
    for n in qemu {
        let Some(k) = by_path.get(n.path.as_str()) else {
            problems.push(format!("{}: node missing", n.path));
            continue;
        };
        for (prop, want) in &n.props {
            let Some(got) = k.props.get(prop) else {
                if !REMOVED.contains(&(fw_name, prop.as_str())) {
                    problems.push(format!("{}: property {prop} missing", n.path));
                }
                continue;
            };
            if changed_why(&n.path, prop).is_some() {
                continue;
            }
            let same = if PHANDLE_REFS.contains(&prop.as_str()) {
                match (cells(want), cells(got)) {
                    (Some(w), Some(g)) => w.iter().map(|c| map.get(c).copied().unwrap_or(*c)).eq(g),
                    _ => want == got,
                }
            } else {
                want == got
            };
            if !same {
                problems.push(format!("{}: {prop} is {got}, QEMU says {want}", n.path));
            }
        }
    }
    problems
}

/// The `/memreserve/` lines of a dts.
fn memreserve(dts: &str) -> Vec<String> {
    dts.lines()
        .filter(|l| l.starts_with("/memreserve/"))
        .map(str::to_string)
        .collect()
}

/// The facts of `devtree` that must not depend on the boot path, in a form
/// where order does not matter.
fn facts(r: &Reply) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in &r.lines {
        let Some((key, value)) = l.split_once(": ") else {
            continue;
        };
        if key == "fdt_bytes" {
            continue; // the firmware's tree has more in it
        }
        out.entry(key.to_string())
            .or_default()
            .insert(value.to_string());
    }
    out
}

fn boots_through(fw: Firmware) {
    let b = builder(fw);
    let qemu_dts = b.qemu_dts();
    let mut fast = builder(Firmware::BootRom).boot();
    let fast_facts = facts(&fast.ok("devtree"));

    let mut vm = b.boot();
    let t = vm.boot_time().expect("ready seen");
    eprintln!("{fw:?} boot-to-ready: {:.3} s", t.as_secs_f64());

    let v = vm.ok("version");
    assert_eq!(v.field("boot_mode").as_deref(), Some("of"), "{}", v.text());
    for line in [
        "CAS: asking for",
        "CAS: firmware granted ibm,architecture-vec-5",
        "left the firmware (quiesce)",
    ] {
        assert!(
            vm.log_contains(line),
            "no log line `{line}`:\n{}",
            vm.transcript()
        );
    }
    // RTAS was instantiated in the RMA and every RTAS call (system parameters 20
    // and 44 during detection included) went through it, none through the hcall.
    assert_eq!(
        v.field("rtas").as_deref(),
        Some("instantiated"),
        "{}",
        v.text()
    );
    let calls = v.field("rtas_calls").expect("rtas_calls");
    assert!(calls.ends_with(" hcall=0"), "{calls}");
    assert!(!calls.starts_with("instantiated=0 "), "{calls}");
    assert!(
        vm.log_contains("system parameter 44 (CMO characteristics): RTAS status -3"),
        "parameter 44 through instantiated RTAS:\n{}",
        vm.transcript()
    );
    let area = v.field("rtas_area").expect("rtas_area");
    // QEMU has no CMO, so CAS cannot grant it.
    assert!(vm.log_contains("CMO not granted"), "{}", vm.transcript());

    // The facts match the fast path's on the same command line.
    let of_facts = facts(&vm.ok("devtree"));
    for key in [
        "ram_bytes",
        "memory",
        "vty",
        "stdout_path",
        "rtas",
        "vdevice",
        "cpus",
        "timebase_hz",
        "hypertas",
    ] {
        // A fact missing from both paths would compare equal: require it.
        let want = fast_facts
            .get(key)
            .unwrap_or_else(|| panic!("the fast path's `devtree` has no `{key}`"));
        assert_eq!(
            of_facts.get(key),
            Some(want),
            "`{key}` differs from the fast path"
        );
    }
    assert_eq!(of_facts, fast_facts);
    assert!(of_facts["vdevice"]
        .iter()
        .any(|d| d.starts_with("v-scsi@") && d.contains("liobn=")));
    assert!(of_facts["rtas"].iter().any(|t| t.starts_with("power-off ")));

    // The flattened tree, decoded by dtc, equals QEMU's in every node and property
    // the firmware does not add or change itself.
    let (blob, kernel_dts) = fdt_dump::dump(&mut vm);
    assert_eq!(
        u32::from_be_bytes(blob[20..24].try_into().unwrap()),
        17,
        "FDT version"
    );
    let problems = tree_differences(fw, &dts::parse(&qemu_dts), &dts::parse(&kernel_dts));
    assert!(
        problems.is_empty(),
        "{fw:?}: the flattened tree differs from QEMU's:\n{}\n----- kernel's tree -----\n{kernel_dts}",
        problems.join("\n")
    );
    // The reservation map: QEMU reserves the kernel image; so does the kernel,
    // and it adds the RTAS area it instantiated.
    let ours = memreserve(&kernel_dts);
    let theirs = memreserve(&qemu_dts);
    assert!(
        !theirs.is_empty(),
        "QEMU's tree reserves nothing:\n{qemu_dts}"
    );
    let extra: Vec<&String> = ours.iter().filter(|l| !theirs.contains(l)).collect();
    assert_eq!(extra.len(), 1, "{ours:?} vs {theirs:?}");
    assert_eq!(ours.len(), theirs.len() + 1, "{ours:?} vs {theirs:?}");
    let nums: Vec<u64> = extra[0]
        .trim_start_matches("/memreserve/")
        .trim_end_matches(';')
        .split_whitespace()
        .map(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).unwrap())
        .collect();
    assert_eq!(
        area,
        format!("base={:#x} size={:#x}", nums[0], nums[1]) + &area[area.find(" entry=").unwrap()..],
        "the reserved range is the RTAS area"
    );

    assert_eq!(vm.poweroff(), 0);
    let fv = fast.ok("version");
    assert_eq!(fv.field("rtas").as_deref(), Some("hcall"), "{}", fv.text());
    assert!(fv
        .field("rtas_calls")
        .unwrap()
        .starts_with("instantiated=0 "));
    assert_eq!(fast.poweroff(), 0);
}

#[test]
fn boots_through_slof() {
    boots_through(Firmware::Slof);
}

#[test]
fn boots_through_vof() {
    boots_through(Firmware::Vof);
}

#[test]
fn the_fast_path_dump_equals_qemus_tree() {
    // `devtree dump` on the fast path is QEMU's blob itself, byte for byte.
    let b = builder(Firmware::BootRom);
    let qemu_dts = b.qemu_dts();
    let mut vm = b.boot();
    let (_, kernel_dts) = fdt_dump::dump(&mut vm);
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("rng-seed"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&kernel_dts), strip(&qemu_dts));
    assert!(vm.err("devtree frob").contains("usage"));
}

/// `ibm,os-term` through instantiated RTAS: a panic under SLOF and VOF ends with
/// QEMU's `OS terminated` and exit status 1.
fn os_term_through_instantiated_rtas(fw: Firmware) {
    let mut vm = Qemu::builder()
        .firmware(fw)
        .reply_timeout(Duration::from_secs(240))
        .timeout(Duration::from_secs(600))
        .boot();
    let v = vm.ok("version");
    assert_eq!(
        v.field("rtas").as_deref(),
        Some("instantiated"),
        "{}",
        v.text()
    );
    vm.send(b"panic\r");
    assert_eq!(vm.wait_exit(), 1);
    assert!(vm.stderr().contains("OS terminated"), "{}", vm.stderr());
}

#[test]
fn os_term_through_instantiated_rtas_slof() {
    os_term_through_instantiated_rtas(Firmware::Slof);
}

#[test]
fn os_term_through_instantiated_rtas_vof() {
    os_term_through_instantiated_rtas(Firmware::Vof);
}
