//! What the firmware hands back: system parameter 44 (and 20), H_GET_MPP and
//! H_GET_MPP_X registers, RTAS argument buffers.

use hcall::calls::{decode_mpp, decode_mpp_x, encode_mpp, encode_mpp_x};
use hcall::sysparm::{parse_des_mem, parse_des_mem_str, CmoCharacteristics};
use hcall::{rtas, HStatus, Hypervisor, Phyp, RawHcall};

use crate::input::Bytes;

/// A parameter-44 (or parameter-20) work area, length prefix and all: a parse
/// that succeeds prints back to a string that parses to the same values.
pub fn sysparm(data: &[u8]) {
    if let Ok(c) = CmoCharacteristics::parse(data) {
        let text = format!(
            "CMOPageSize={},PrPSP={},SecPSP={}",
            c.page_shift, c.primary_psp, c.secondary_psp
        );
        assert_eq!(CmoCharacteristics::parse_str(text.as_bytes()), Ok(c));
        assert!(c.page_size().is_power_of_two());
        let _ = c.enabled();
    }
    if let Ok(Some(mb)) = parse_des_mem(data) {
        let text = format!("DesMem={mb}");
        assert_eq!(parse_des_mem_str(text.as_bytes()), Ok(Some(mb)));
    }
}

/// H_GET_MPP's answer as the fuzzer says (status and registers).
struct Answer {
    status: HStatus,
    regs: [u64; 9],
}

impl RawHcall for Answer {
    /// Touches no memory.
    unsafe fn hcall(&mut self, _opcode: u64, _args: &[u64]) -> (HStatus, [u64; 9]) {
        (self.status, self.regs)
    }
}

/// Reads `name: value` rows back into numbers (`n/a` as `None`).
fn row_values(text: &str) -> Vec<(String, Option<i128>)> {
    text.lines()
        .map(|l| {
            let (name, value) = l.split_once(": ").expect("a `name: value` row");
            (name.to_string(), value.parse().ok())
        })
        .collect()
}

/// H_GET_MPP and H_GET_MPP_X registers with any status: only a success gives
/// data; decoded data packs back into the same registers (up to the bits the
/// format does not use), prints as rows that read back as the same numbers, and
/// is either refused as contradictory for a partition of the size the input
/// gives, or fits it.
pub fn mpp(data: &[u8]) {
    let mut b = Bytes::new(data);
    let status = HStatus::from_raw(i64::from(b.u16() as i16));
    let mut regs = [0u64; 9];
    for r in &mut regs {
        *r = b.u64();
    }
    // SAFETY: `Answer` touches no memory, and only H_GET_MPP(_X) are made.
    let mut phyp = unsafe { Phyp::new(Answer { status, regs }) };
    let got = phyp.get_mpp();
    assert_eq!(got.is_ok(), status == HStatus::Success);
    assert_eq!(phyp.get_mpp_x().is_ok(), status == HStatus::Success);

    let d = decode_mpp(&regs);
    assert_eq!(decode_mpp(&encode_mpp(&d)), d);
    let packed = encode_mpp(&d);
    // r6 carries only its low 32 bits (group and pool numbers); the rest whole.
    assert_eq!(packed[2], regs[2] & 0xffff_ffff);
    assert_eq!(packed[..2], regs[..2]);
    assert_eq!(packed[3..7], regs[3..7]);
    // Figures for a partition of any size: refused with a reason, or they fit.
    let logical = b.u64();
    match d.contradiction(logical) {
        Some(c) => assert!(!c.to_string().is_empty()),
        None => {
            assert!(d.entitled_mem <= logical && d.backing_mem <= logical);
            assert!(d.pool_size.is_none_or(|p| p >= d.entitled_mem));
            assert!(i128::from(d.loan_request) <= i128::from(logical));
        }
    }
    let x = decode_mpp_x(&regs);
    assert_eq!(encode_mpp_x(&x)[..5], regs[..5]);

    let mut text = String::new();
    d.write_rows(&mut text).expect("rows");
    let rows = row_values(&text);
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("row {name} missing"))
            .1
    };
    assert_eq!(get("entitled_mem"), Some(i128::from(d.entitled_mem)));
    assert_eq!(get("mapped_mem"), d.mapped_mem.map(i128::from));
    assert_eq!(get("pool_size"), d.pool_size.map(i128::from));
    assert_eq!(get("loan_request"), Some(i128::from(d.loan_request)));
    assert_eq!(get("backing_mem"), Some(i128::from(d.backing_mem)));
    assert_eq!(get("mem_weight"), Some(i128::from(d.mem_weight)));
    let mut lparcfg = String::new();
    hcall::lparcfg::render_mpp(&mut lparcfg, &d).expect("lparcfg");
    hcall::lparcfg::render_mpp_x(&mut lparcfg, &x).expect("lparcfg");
    assert!(lparcfg.lines().all(|l| l.contains('=')), "{lparcfg}");
}

/// An RTAS argument buffer as RTAS left it (any bytes, any length): the return
/// cells read never reach past the buffer or the caller's array, and a buffer
/// built for a call reads back its return area as zeros.
pub fn rtas(data: &[u8]) {
    let mut b = Bytes::new(data);
    let want = b.below(16);
    let buf = b.rest();
    let mut rets = vec![0u32; want];
    let n = rtas::read_rets(buf, &mut rets);
    assert!(n <= want && n <= buf.len() / rtas::CELL_BYTES);
    let _ = rtas::check_status(&rets[..n]);

    let args: Vec<u32> = buf
        .chunks_exact(rtas::CELL_BYTES)
        .take(8)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut out = vec![0xa5u8; buf.len()];
    match rtas::build(&mut out, 0x2a, &args, want) {
        Ok(()) => {
            let mut back = vec![1u32; want];
            assert_eq!(rtas::read_rets(&out, &mut back), want);
            assert!(back.iter().all(|&c| c == 0), "return cells not cleared");
            assert_eq!(rtas::check_status(&back), Ok(()));
        }
        Err(_) => assert!(out.len() / rtas::CELL_BYTES < 3 + args.len() + want),
    }
}
