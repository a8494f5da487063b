//! Every structure the kernel exchanges with firmware, the hypervisor or a
//! device, encoded by the library accessors the two images share and compared
//! with bytes worked out by hand (docs/little-endian.md).
//!
//! Two kinds of boundary:
//! - **fixed by the platform** (FDT cells, RTAS buffer, OF argument block, VPA
//!   fields, console characters in registers): the same bytes in the big- and
//!   the little-endian image. The accessors build them from values, never from
//!   the image's own memory layout, so each test runs once per image order
//!   ([`IMAGES`]) and must see identical bytes;
//! - **the guest's order** (virtio descriptors and rings, PFN arrays,
//!   statistics entries): the bytes differ between the images, and each order
//!   is checked against its own hand-worked bytes.

use hcall::endian::{ByteOrder, FIRMWARE};
use kernel::devtree::argblock::ArgBlock;
use kernel::devtree::fdt::be32;
use kernel::devtree::writer::FdtWriter;
use kernel::devtree::Fdt;
use kernel::virtio_balloon::stats::MemoryStats;
use kernel::virtio_balloon::store_pfns;
use proptest::prelude::*;

/// The two images' byte orders.
const IMAGES: [ByteOrder; 2] = [ByteOrder::Big, ByteOrder::Little];

#[test]
fn firmware_order_is_big_endian() {
    assert_eq!(FIRMWARE, ByteOrder::Big);
}

#[test]
fn fdt_cells() {
    // A blob with one property `reg = <0x1 0x80000000 0x0 0x10000000>`.
    let mut w = FdtWriter::new(4096);
    w.begin_node(b"").unwrap();
    w.property(b"#address-cells", &[0, 0, 0, 2]).unwrap();
    w.begin_node(b"memory@180000000").unwrap();
    let reg = [
        0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
    ];
    w.property(b"reg", &reg).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    let blob = w.finish().unwrap();
    for _image in IMAGES {
        // The header starts with the magic d00dfeed, then the total size.
        assert_eq!(&blob[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
        assert_eq!(be32(&blob, 0), Some(0xd00d_feed));
        assert_eq!(be32(&blob, 4), Some(u32::try_from(blob.len()).unwrap()));
        let fdt = Fdt::new(&blob).unwrap();
        let cells: Vec<u32> = fdt
            .find("/memory@180000000")
            .unwrap()
            .property("reg")
            .unwrap()
            .cells()
            .unwrap()
            .collect();
        assert_eq!(cells, [1, 0x8000_0000, 0, 0x1000_0000]);
    }
    // The same bytes read little-endian would be wrong: the accessor is the
    // only reader and it is big-endian.
    assert_eq!(ByteOrder::Little.get::<u32>(&blob), Some(0xedfe_0dd0));
    assert_eq!(be32(&blob, blob.len() - 3), None);
}

#[test]
fn rtas_buffer() {
    for _image in IMAGES {
        // ibm,set-xive(source 0x1100, server 0, priority 5), one status cell.
        let mut buf = [0u8; 28];
        hcall::rtas::build(&mut buf, 0x2009, &[0x1100, 0, 5], 1).unwrap();
        assert_eq!(
            buf,
            [
                0, 0, 0x20, 0x09, // token
                0, 0, 0, 3, // nargs
                0, 0, 0, 1, // nret
                0, 0, 0x11, 0x00, // source
                0, 0, 0, 0, // server
                0, 0, 0, 5, // priority
                0, 0, 0, 0, // status, filled by RTAS
            ]
        );
        // RTAS answers -2 ("busy"): ff ff ff fe.
        buf[24..].copy_from_slice(&[0xff, 0xff, 0xff, 0xfe]);
        let mut rets = [0u32; 1];
        assert_eq!(hcall::rtas::read_rets(&buf, &mut rets), 1);
        assert_eq!(rets[0] as i32, -2);
    }
}

#[test]
fn of_argument_block() {
    for _image in IMAGES {
        // finddevice("/rtas" at 0x1234): one argument, one result.
        let mut b = ArgBlock::new(0x0040_2000, &[0x1234], 1).unwrap();
        assert_eq!(
            &b.as_bytes()[..20],
            &[0, 0x40, 0x20, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x12, 0x34, 0, 0, 0, 0]
        );
        b.as_mut_bytes()[16..20].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let mut r = [0u32; 1];
        b.rets(&mut r);
        assert_eq!(r[0], 0xdead_beef);
    }
}

#[test]
fn vpa_fields() {
    use hcall::vpa::{cmo_faults, init_area, VPA_SIZE};
    for _image in IMAGES {
        let mut a = [0u8; VPA_SIZE];
        init_area(&mut a);
        assert_eq!(&a[..6], &[0xD3, 0x97, 0xD7, 0x81, 0x04, 0x00]);
        // The hypervisor's CMO counters: 0x0102 faults, 0x030405 us.
        a[0x108..0x110].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0x01, 0x02]);
        a[0x110..0x118].copy_from_slice(&[0, 0, 0, 0, 0, 0x03, 0x04, 0x05]);
        let f = cmo_faults(&a);
        assert_eq!((f.faults, f.fault_time_usec), (0x0102, 0x03_0405));
    }
}

#[test]
fn console_characters_in_registers() {
    for _image in IMAGES {
        // "ok\n": the first character is the most significant byte of r6.
        let (hi, lo, n) = hcall::term::pack_term_chars(b"ok\n");
        assert_eq!((hi, lo, n), (0x6F6B_0A00_0000_0000, 0, 3));
        let mut out = [0u8; 16];
        assert_eq!(hcall::term::unpack_term_chars(3, hi, lo, &mut out), 3);
        assert_eq!(&out[..3], b"ok\n");
    }
}

#[test]
fn virtio_pfn_arrays() {
    let pfns = [0x0008_0001u32];
    let mut words = [0u32; 1];
    store_pfns(ByteOrder::Big, &pfns, &mut words);
    assert_eq!(words[0].to_ne_bytes(), [0x00, 0x08, 0x00, 0x01]);
    store_pfns(ByteOrder::Little, &pfns, &mut words);
    assert_eq!(words[0].to_ne_bytes(), [0x01, 0x00, 0x08, 0x00]);
}

#[test]
fn virtio_statistics_entries() {
    let s = MemoryStats {
        total: 0x2000_0000,
        ..MemoryStats::default()
    };
    // Entry 3 is MEMTOT (tag 5) = 512 MiB.
    let be = s.encode(ByteOrder::Big);
    assert_eq!(&be[30..40], &[0, 5, 0, 0, 0, 0, 0x20, 0, 0, 0]);
    let le = s.encode(ByteOrder::Little);
    assert_eq!(&le[30..40], &[5, 0, 0, 0, 0, 0x20, 0, 0, 0, 0]);
}

proptest! {
    #[test]
    fn boundary_structures_round_trip(args in proptest::collection::vec(any::<u32>(), 0..6),
                                      chars in proptest::collection::vec(any::<u8>(), 0..16),
                                      pfns in proptest::collection::vec(any::<u32>(), 0..8),
                                      big in any::<bool>()) {
        let order = if big { ByteOrder::Big } else { ByteOrder::Little };
        // RTAS: what the kernel writes as arguments reads back as results when
        // the firmware echoes them.
        let mut buf = [0u8; 4 * 16];
        hcall::rtas::build(&mut buf, 1, &args, args.len()).unwrap();
        let (head, tail) = buf.split_at_mut(4 * (3 + args.len()));
        tail[..4 * args.len()].copy_from_slice(&head[12..]);
        let mut rets = vec![0u32; args.len()];
        hcall::rtas::read_rets(&buf, &mut rets);
        prop_assert_eq!(&rets, &args);
        // Console packing.
        let (hi, lo, n) = hcall::term::pack_term_chars(&chars);
        let mut out = [0u8; 16];
        let m = hcall::term::unpack_term_chars(n as u64, hi, lo, &mut out);
        prop_assert_eq!(&out[..m], &chars[..]);
        // PFN arrays in the guest's order.
        let mut words = vec![0u32; pfns.len()];
        store_pfns(order, &pfns, &mut words);
        let back: Vec<u32> = words.iter().map(|w| order.loaded(*w)).collect();
        prop_assert_eq!(back, pfns);
    }
}
