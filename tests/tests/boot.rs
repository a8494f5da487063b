//! Boot, console contract and exit paths on QEMU pseries.

use lpar_cmm_tests::{dts, Endian, Qemu};

#[test]
fn boots_to_ready_and_powers_off_with_status_0() {
    let vm = Qemu::boot_default();
    let t = vm.boot_time().expect("ready seen");
    eprintln!("boot-to-ready: {:.3} s", t.as_secs_f64());
    assert_eq!(vm.poweroff(), 0);
}

#[test]
fn version_names_the_boot_mode_and_backend() {
    let mut vm = Qemu::boot_default();
    let r = vm.ok("version");
    assert_eq!(r.field("name").as_deref(), Some("lpar-cmm"));
    let image = Endian::from_env();
    assert_eq!(r.field("target").as_deref(), Some(image.target()));
    assert_eq!(r.field("endian").as_deref(), Some(image.name()));
    assert_eq!(r.field("boot_mode").as_deref(), Some("fdt"));
    assert_eq!(r.field("hypervisor").as_deref(), Some("model"));
}

/// Compares what the kernel reports with QEMU's own blob (dumpdtb, decoded by dtc).
fn facts_match_qemu(mem: &str) {
    let b = Qemu::builder().mem(mem).vscsi().vlan();
    let nodes = dts::parse(&b.qemu_dts());
    let mut vm = b.boot();
    let r = vm.ok("devtree");

    assert_eq!(
        r.get("ram_bytes") as u64,
        dts::ram_bytes(&nodes),
        "RAM size"
    );

    let vty = nodes
        .iter()
        .find(|n| n.path.starts_with("/vdevice/vty@"))
        .and_then(|n| n.cells("reg"))
        .expect("QEMU's tree has a vty")[0];
    assert_eq!(r.field("vty"), Some(format!("{vty:x}")), "vty unit address");

    let want_tokens = dts::rtas_tokens(&nodes);
    let got_tokens: std::collections::BTreeMap<String, u64> = r
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("rtas: "))
        .map(|l| {
            let (n, t) = l.split_once(' ').expect("rtas: <name> <token>");
            (
                n.to_string(),
                u64::from_str_radix(t.trim_start_matches("0x"), 16).unwrap(),
            )
        })
        .collect();
    assert_eq!(got_tokens, want_tokens, "RTAS tokens");
    assert!(want_tokens.contains_key("power-off"));

    let want_vdev: Vec<(String, u64)> = dts::vdevices(&nodes);
    let got_vdev: Vec<(String, u64)> = r
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("vdevice: "))
        .map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next().unwrap().to_string();
            let unit = w.next().unwrap().strip_prefix("unit=").unwrap();
            (name, u64::from_str_radix(unit, 16).unwrap())
        })
        .collect();
    let mut a = want_vdev.clone();
    let mut b2 = got_vdev.clone();
    a.sort();
    b2.sort();
    assert_eq!(b2, a, "VIO devices");
    assert!(got_vdev.iter().any(|(n, _)| n.starts_with("v-scsi@")));
    assert!(got_vdev.iter().any(|(n, _)| n.starts_with("l-lan@")));
    // Devices with a DMA window report it.
    for l in r
        .lines
        .iter()
        .filter(|l| l.starts_with("vdevice: v-scsi") || l.starts_with("vdevice: l-lan"))
    {
        assert!(l.contains("liobn="), "{l}");
    }
}

#[test]
fn facts_match_qemu_dumpdtb_512m() {
    facts_match_qemu("512M");
}

#[test]
fn facts_match_qemu_dumpdtb_2g() {
    facts_match_qemu("2G");
}

#[test]
fn panic_exits_1_and_shows_the_location() {
    let mut vm = Qemu::boot_default();
    vm.send(b"panic\r");
    assert_eq!(vm.wait_exit(), 1);
    let t = vm.transcript();
    assert!(t.contains("KERNEL PANIC: deliberate panic"), "{t}");
    assert!(
        t.contains("kernel/src/glue/shell/"),
        "panic location missing:\n{t}"
    );
    assert!(vm.stderr().contains("OS terminated"), "{}", vm.stderr());
}

#[test]
fn bad_input_gets_errors_and_the_kernel_keeps_answering() {
    let mut vm = Qemu::builder().append("cmm.nonsense=1 junk =x").boot();
    assert!(vm.log_contains("boot argument `junk` ignored"));
    assert!(vm.log_contains("boot argument `cmm.nonsense=1` ignored"));
    assert!(vm.log_contains("boot argument `=x` ignored"));

    let e = vm.err("frobnicate now");
    assert!(e.contains("unknown command"), "{e}");

    let long = "x".repeat(1500);
    let e = vm.err(&long);
    assert_eq!(e, "line too long");

    let e = vm.err("sleep banana");
    assert!(e.contains("bad <ms>"), "{e}");
    let e = vm.err("help me");
    assert!(e.contains("no arguments"), "{e}");

    // Still alive and answering in order.
    let r = vm.ok("echo still here");
    assert_eq!(r.lines, ["still here"]);
    assert_eq!(vm.poweroff(), 0);
}

#[test]
fn editing_keys_work() {
    let mut vm = Qemu::boot_default();
    vm.send(b"echo abX\x08c\x7f\x7fbc\r");
    let r = vm.next_reply("echo");
    assert_eq!(r.lines, ["abc"]);
    // CR LF is one line end, LF alone is one too.
    vm.send(b"echo one\r\necho two\n");
    assert_eq!(vm.next_reply("echo one").lines, ["one"]);
    assert_eq!(vm.next_reply("echo two").lines, ["two"]);
}

#[test]
fn sixty_four_kib_of_commands_at_once_are_all_answered_in_order() {
    let mut vm = Qemu::boot_default();
    let mut input = Vec::new();
    let mut n = 0;
    while input.len() < 64 * 1024 {
        input.extend_from_slice(format!("echo seq-{n:05}\r").as_bytes());
        n += 1;
    }
    let h = vm.send_in_background(input);
    for i in 0..n {
        let r = vm.next_reply("echo");
        assert_eq!(r.status, Ok(()));
        assert_eq!(r.lines, [format!("seq-{i:05}")], "reply {i} of {n}");
    }
    vm.restore_stdin(h);
}

#[test]
fn a_program_interrupt_prints_a_register_dump_and_exits_1() {
    let mut vm = Qemu::boot_default();
    vm.send(b"fault program\r");
    assert_eq!(vm.wait_exit(), 1);
    let t = vm.transcript();
    let line = t
        .lines()
        .find(|l| l.contains("EXCEPTION vector=0x700"))
        .unwrap_or_else(|| panic!("no register dump:\n{t}"));
    for reg in ["SRR0=", "SRR1=", "DAR=", "DSISR=", "LR="] {
        assert!(line.contains(reg), "{reg} missing in {line}");
    }
    // SRR0 points into the kernel image (linked at 0x400000).
    let srr0 = line
        .split("SRR0=0x")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let srr0 = u64::from_str_radix(srr0, 16).unwrap();
    assert!((0x40_0000..0x1000_0000).contains(&srr0), "SRR0 {srr0:#x}");
}
