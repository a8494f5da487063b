//! Host tests of the device-tree glue against QEMU's real tree (the fixture,
//! compiled with `dtc`) and against truncated and corrupted blobs.

// Random bytes and offsets are truncated from u64 on purpose.
#![allow(clippy::cast_possible_truncation)]

use std::path::PathBuf;
use std::process::Command;

use kernel::devtree::{self, Fdt, FdtError};

fn fixture_dtb() -> Vec<u8> {
    let dts = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/qemu-7.2-pseries-nodefaults.dts");
    assert!(dts.exists(), "fixture missing: {}", dts.display());
    let out = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb"])
        .arg(&dts)
        .output()
        .expect("dtc is installed (make setup)");
    assert!(
        out.status.success(),
        "dtc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `dts` source compiled with `dtc`.
fn dtb_of(dts: &str) -> Vec<u8> {
    let out = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(dts.as_bytes())?;
            c.wait_with_output()
        })
        .expect("dtc");
    out.stdout
}

#[test]
fn fixture_facts() {
    let blob = fixture_dtb();
    let fdt = Fdt::new(&blob).expect("fixture parses");
    let p = devtree::gather(&fdt);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(p.ram_bytes(), 512 << 20);
    assert_eq!(p.memory.len(), 1);
    assert_eq!(p.memory[0].base, 0);
    assert_eq!(p.cpus.len(), 1);
    assert_eq!(p.cpus[0].name, "PowerPC,POWER9@0");
    assert_eq!(p.timebase_hz, Some(512_000_000));
    assert_eq!(p.vty_unit, Some(0x7100_0000));
    assert_eq!(p.stdout_path.as_deref(), Some("/vdevice/vty@71000000"));
    assert_eq!(p.rtas_token("power-off"), Some(0x2003));
    assert_eq!(p.rtas_token("ibm,os-term"), Some(0x201f));
    assert_eq!(p.rtas_token("ibm,get-system-parameter"), Some(0x2008));
    assert!(!p.rtas_tokens.iter().any(|(n, _)| n.starts_with("rtas-")));
    // The registry takes every token the kernel uses from QEMU's /rtas (the
    // numbers as the dtc text above lists them).
    let t = kernel::rtas::Tokens::from_platform(&p);
    assert_eq!(t.routing(), Ok((0x200a, 0x200d)));
    assert_eq!(t.int_off, Some(0x200c));
    assert_eq!(t.pci_config(), Ok((0x2016, 0x2017)));
    assert_eq!(t.cpu_start(), Ok((0x2005, 0x2006)));
    assert_eq!(
        (t.power_off, t.os_term, t.get_system_parameter),
        (Some(0x2003), Some(0x201f), Some(0x2008))
    );
    let names: Vec<_> = p.vdevices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["vty@71000000", "nvram@71000001"]);
    assert!(p.vdevices.iter().all(|d| d.dma_window.is_none()));
    assert!(p.hypertas.iter().any(|h| h == "hcall-tce"));
    assert!(p.hypertas.iter().any(|h| h == "hcall-splpar"));
}

#[test]
fn a_blob_handed_over_in_r3_is_checked_before_it_is_copied() {
    use kernel::devtree::fdt::{blob_size, is_magic_word, plausible_blob_address, HEADER_LEN};
    assert!(plausible_blob_address(0x0100_0000));
    assert!(plausible_blob_address(1 << 40));
    assert!(!plausible_blob_address(0));
    assert!(!plausible_blob_address(0x0100_0002));
    assert!(!plausible_blob_address((1 << 40) + 4));
    let blob = fixture_dtb();
    let first = u32::from_ne_bytes(blob[..4].try_into().unwrap());
    assert!(is_magic_word(first), "the magic as the CPU loads it");
    assert!(!is_magic_word(first.swap_bytes()));
    assert_eq!(blob_size(&blob, 1 << 20), Ok(blob.len()));
    assert_eq!(
        blob_size(&blob, blob.len() - 1),
        Err("device tree size out of range")
    );
    let mut tiny = blob[..HEADER_LEN].to_vec();
    tiny[4..8].copy_from_slice(&8u32.to_be_bytes());
    assert_eq!(
        blob_size(&tiny, 1 << 20),
        Err("device tree size out of range")
    );
    tiny[0] ^= 0xff;
    assert_eq!(
        blob_size(&tiny, 1 << 20),
        Err("r3 does not point at a device tree")
    );
    assert_eq!(
        blob_size(&blob[..3], 1 << 20),
        Err("r3 does not point at a device tree")
    );
}

#[test]
fn every_node_is_walked() {
    let blob = fixture_dtb();
    let fdt = Fdt::new(&blob).unwrap();
    let names: Vec<_> = fdt.all_nodes().map(|n| n.name).collect();
    for want in [
        "",
        "chosen",
        "rtas",
        "cpus",
        "PowerPC,POWER9@0",
        "vdevice",
        "vty@71000000",
        "memory@0",
    ] {
        assert!(names.contains(&want), "{want} not walked: {names:?}");
    }
    assert!(fdt.find("/vdevice/vty@71000000").is_some());
    assert!(fdt.find("/cpus/PowerPC,POWER9").is_some());
    assert!(fdt.find("/nope").is_none());
}

#[test]
fn truncated_blobs_are_errors() {
    let blob = fixture_dtb();
    for len in 0..blob.len() {
        match Fdt::new(&blob[..len]) {
            Err(_) => {}
            Ok(_) => panic!("a blob truncated to {len} bytes was accepted"),
        }
    }
    assert_eq!(Fdt::new(&blob[..10]).err(), Some(FdtError::Truncated));
}

#[test]
fn bad_magic_and_version() {
    let mut blob = fixture_dtb();
    blob[0] = 0;
    assert!(matches!(Fdt::new(&blob), Err(FdtError::BadMagic(_))));
    let mut blob = fixture_dtb();
    blob[20..24].copy_from_slice(&15u32.to_be_bytes());
    assert!(matches!(Fdt::new(&blob), Err(FdtError::BadVersion(_))));
}

/// Corrupts bytes at random (a fixed-seed generator) and checks that parsing and
/// gathering never panic; when the blob is still accepted, the walk terminates.
#[test]
fn corrupted_blobs_never_panic() {
    let orig = fixture_dtb();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut b = orig.clone();
        for _ in 0..1 + rnd() % 4 {
            let p = (rnd() as usize) % b.len();
            b[p] = rnd() as u8;
        }
        if let Ok(fdt) = Fdt::new(&b) {
            accepted += 1;
            let p = devtree::gather(&fdt);
            let _ = p.ram_bytes();
            assert!(fdt.all_nodes().count() < 10_000);
        }
    }
    // Most single-byte changes land in property values and stay valid.
    assert!(accepted > 0);
}

#[test]
fn missing_nodes_are_problems_not_panics() {
    // A minimal tree with only a root node.
    let dts = "/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; };\n";
    let blob = dtb_of(dts);
    let fdt = Fdt::new(&blob).expect("minimal tree parses");
    let p = devtree::gather(&fdt);
    assert!(p.memory.is_empty());
    assert!(p.vty_unit.is_none());
    for want in [
        "no memory node",
        "no /cpus node",
        "no /chosen node",
        "no /rtas node",
        "no /vdevice node",
    ] {
        assert!(
            p.problems.iter().any(|x| x == want),
            "missing problem {want}: {:?}",
            p.problems
        );
    }
}

/// What `-smp 4,threads=2` gives (QEMU 7.2's TCG refuses more than one thread
/// per core on pseries, so this shape is only checked here): two cores, each
/// listing two interrupt servers; every thread is planned, the boot one first.
#[test]
fn smt_threads_come_from_interrupt_server_numbers() {
    let dts = r#"/dts-v1/;
/ { #address-cells = <2>; #size-cells = <2>;
    cpus { #address-cells = <1>; #size-cells = <0>;
        PowerPC,POWER9@0 { device_type = "cpu"; reg = <0>;
            ibm,ppc-interrupt-server#s = <0 1>; timebase-frequency = <512000000>; };
        PowerPC,POWER9@2 { device_type = "cpu"; reg = <2>;
            ibm,ppc-interrupt-server#s = <2 3>; };
        PowerPC,POWER9@4 { device_type = "cpu"; reg = <4>; };
    };
};
"#;
    let blob = dtb_of(dts);
    let fdt = Fdt::new(&blob).expect("tree parses");
    let p = devtree::gather(&fdt);
    let threads: Vec<Vec<u32>> = p.cpus.iter().map(|c| c.threads.clone()).collect();
    assert_eq!(threads, [vec![0, 1], vec![2, 3], vec![4]]);
    let plan = kernel::smp::plan(&p.cpus, 1, None);
    assert_eq!(plan.servers, [1, 0, 2, 3, 4]);
    assert_eq!(plan.present, 5);
}

/// The hash MMU's facts as QEMU's CPU node gives them, and the geometry chosen.
#[test]
fn the_cpu_node_gives_the_hash_mmu_geometry() {
    use kernel::mmu::cpu::CpuMmu;
    use kernel::mmu::SegmentSize;
    let blob = fixture_dtb();
    let fdt = Fdt::new(&blob).unwrap();
    let mmu = CpuMmu::from_fdt(&fdt).unwrap();
    assert_eq!(
        mmu.pft_shift, 22,
        "ibm,pft-size = <0 0x16>: 4 MiB at 512 MiB"
    );
    assert_eq!(mmu.slb_size, 32);
    assert!(mmu.one_t_segments, "ibm,processor-segment-sizes lists 40");
    let g = mmu.geometry();
    assert_eq!(g.page.bytes(), 64 << 10, "the largest page the node offers");
    assert_eq!(g.segment, SegmentSize::T1);
    assert_eq!(g.pft_shift, 22);
}

/// A CPU node without what the hash MMU needs is refused, naming the property.
#[test]
fn a_cpu_node_missing_mmu_facts_is_refused() {
    let node = |props: &str| {
        dtb_of(&format!(
            "/dts-v1/; / {{ cpus {{ cpu@0 {{ device_type = \"cpu\"; {props} }}; }}; }};"
        ))
    };
    let err =
        |blob: &[u8]| kernel::mmu::cpu::CpuMmu::from_fdt(&Fdt::new(blob).unwrap()).unwrap_err();
    assert!(err(&node("")).contains("ibm,pft-size"));
    assert!(err(&node("ibm,pft-size = <0 8>;")).contains("malformed"));
    assert!(err(&node("ibm,pft-size = <22>;")).contains("malformed"));
    assert!(err(&dtb_of("/dts-v1/; / { };")).contains("/cpus"));
    assert!(err(&dtb_of("/dts-v1/; / { cpus { }; };")).contains("cpu node"));
    // Without the optional properties: 32 SLB entries, 4 KiB pages, 256 MiB segments.
    let m = kernel::mmu::cpu::CpuMmu::from_fdt(&Fdt::new(&node("ibm,pft-size = <0 20>;")).unwrap())
        .unwrap();
    assert_eq!(m.slb_size, 32);
    assert!(!m.one_t_segments);
    assert_eq!(m.geometry().page.bytes(), 4096);
}
