//! Detection: does this partition have CMO? Decided as a real LPAR's kernel decides
//! it (docs/cmo.md §5.2): RTAS `ibm,get-system-parameter` 44 (CMO
//! characteristics) must name a paging service partition, and H_GET_MPP must then
//! answer. With CMO the kernel makes the real hcalls ([`Choice::Phyp`]); without it
//! (QEMU) the pool model answers them ([`Choice::Model`]).
//!
//! The platform is behind [`Probe`] (RTAS and one hcall in the glue, fakes in the
//! tests), so the decision is pure and host-tested.

use core::fmt::Display;
use hcall::sysparm::{self, CmoCharacteristics};
use hcall::{HcallError, MppData};

/// RTAS system parameter: SPLPAR characteristics (`DesMem`).
pub const SYSPARM_SPLPAR: u32 = 20;
/// RTAS system parameter: CMO characteristics.
pub const SYSPARM_CMO: u32 = sysparm::CMO_CHARACTERISTICS;
/// Bytes of an `ibm,get-system-parameter` work area (2-byte length, 1024 of value).
pub const AREA_BYTES: usize = 1026;

/// What detection asks the platform.
pub trait Probe {
    /// Why a system parameter could not be read.
    type Error: Display;
    /// Fills `area` with system parameter `param` (length prefix, then the value).
    fn system_parameter(&mut self, param: u32, area: &mut [u8]) -> Result<(), Self::Error>;
    /// Makes a real H_GET_MPP.
    fn get_mpp(&mut self) -> Result<MppData, HcallError>;
}

/// Which backend answers the CMO hcalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Real CMO hcalls (`phyp`).
    Phyp,
    /// The pool model (`model`).
    Model,
}

/// What detection found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The backend to build.
    pub choice: Choice,
    /// The CMO characteristics in force (the platform's, or the model's).
    pub cmo: CmoCharacteristics,
    /// `DesMem` in MB: parameter 20's, or for the model the RAM size.
    pub des_mem_mb: Option<u64>,
}

/// The characteristics the pool model presents: 4 KiB pages, paging service
/// partition 1.
pub const MODEL_CMO: CmoCharacteristics = CmoCharacteristics {
    page_shift: 12,
    primary_psp: 1,
    secondary_psp: -1,
};

/// Decides the backend; `ram_bytes` is the top of RAM (the model's `DesMem`
/// when parameter 20 has none). Never fails: anything unexpected means no CMO.
pub fn detect(probe: &mut impl Probe, ram_bytes: u64) -> Detection {
    let mut area = [0u8; AREA_BYTES];
    let des_mem_mb = match probe.system_parameter(SYSPARM_SPLPAR, &mut area) {
        Ok(()) => sysparm::parse_des_mem(&area).ok().flatten(),
        Err(_) => None,
    };
    let platform_cmo = match probe.system_parameter(SYSPARM_CMO, &mut area) {
        Ok(()) => match CmoCharacteristics::parse(&area) {
            Ok(c) => Some(c),
            Err(e) => {
                log::warn!("system parameter 44 is malformed: {e}");
                None
            }
        },
        Err(e) => {
            log::info!("system parameter 44 (CMO characteristics): {e}");
            None
        }
    };
    if let Some(cmo) = platform_cmo.filter(CmoCharacteristics::enabled) {
        match probe.get_mpp() {
            Ok(m) => {
                log::info!(
                    "CMO enabled by the platform (page size {}, primary PSP {}): entitled {} bytes, weight {}",
                    cmo.page_size(),
                    cmo.primary_psp,
                    m.entitled_mem,
                    m.mem_weight
                );
                return Detection {
                    choice: Choice::Phyp,
                    cmo,
                    des_mem_mb,
                };
            }
            Err(e) => log::warn!("system parameter 44 says CMO, but {e}"),
        }
    }
    log::info!("no CMO on this platform: the pool model answers the CMO hcalls");
    Detection {
        choice: Choice::Model,
        cmo: MODEL_CMO,
        des_mem_mb: des_mem_mb.or(Some(ram_bytes >> 20)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcall::HStatus;
    use std::vec::Vec;

    /// Scripted answers: each parameter a value string or an error; H_GET_MPP a
    /// result. Records what was asked.
    struct Fake {
        sp20: Option<&'static [u8]>,
        sp44: Option<&'static [u8]>,
        mpp: Result<MppData, HcallError>,
        asked: Vec<u32>,
        mpp_calls: u32,
    }

    impl Fake {
        fn new(sp20: Option<&'static [u8]>, sp44: Option<&'static [u8]>) -> Self {
            Fake {
                sp20,
                sp44,
                mpp: Ok(MppData {
                    entitled_mem: 64 << 20,
                    mem_weight: 128,
                    ..MppData::default()
                }),
                asked: Vec::new(),
                mpp_calls: 0,
            }
        }
    }

    impl Probe for Fake {
        type Error = &'static str;
        fn system_parameter(&mut self, param: u32, area: &mut [u8]) -> Result<(), &'static str> {
            self.asked.push(param);
            let v = match param {
                SYSPARM_SPLPAR => self.sp20,
                SYSPARM_CMO => self.sp44,
                _ => None,
            }
            .ok_or("not supported")?;
            area.fill(0);
            let len = u16::try_from(v.len()).unwrap();
            area[..2].copy_from_slice(&len.to_be_bytes());
            area[2..2 + v.len()].copy_from_slice(v);
            Ok(())
        }
        fn get_mpp(&mut self) -> Result<MppData, HcallError> {
            self.mpp_calls += 1;
            self.mpp
        }
    }

    const RAM: u64 = 512 << 20;

    #[test]
    fn qemu_without_parameters_gets_the_model() {
        let mut p = Fake::new(None, None);
        let d = detect(&mut p, RAM);
        assert_eq!(d.choice, Choice::Model);
        assert_eq!(d.cmo, MODEL_CMO);
        assert_eq!(
            d.des_mem_mb,
            Some(512),
            "the model's DesMem is the RAM size"
        );
        assert_eq!(p.asked, [SYSPARM_SPLPAR, SYSPARM_CMO]);
        assert_eq!(p.mpp_calls, 0, "no H_GET_MPP without parameter 44");
    }

    #[test]
    fn cmo_with_a_paging_partition_and_h_get_mpp_is_phyp() {
        let mut p = Fake::new(
            Some(b"DesMem=4096,DesProcs=2"),
            Some(b"CMOPageSize=12,PrPSP=1,SecPSP=-1"),
        );
        let d = detect(&mut p, RAM);
        assert_eq!(d.choice, Choice::Phyp);
        assert_eq!(d.cmo.primary_psp, 1);
        assert_eq!(d.des_mem_mb, Some(4096));
        assert_eq!(p.mpp_calls, 1);
    }

    #[test]
    fn parameter_44_without_a_paging_partition_is_no_cmo() {
        let mut p = Fake::new(None, Some(b"CMOPageSize=12,PrPSP=-1,SecPSP=-1"));
        let d = detect(&mut p, RAM);
        assert_eq!(d.choice, Choice::Model);
        assert_eq!(p.mpp_calls, 0);
    }

    #[test]
    fn a_failing_h_get_mpp_falls_back_to_the_model() {
        let mut p = Fake::new(Some(b"DesMem=2048"), Some(b"PrPSP=2"));
        p.mpp = Err(HcallError {
            call: "H_GET_MPP",
            status: HStatus::Function,
        });
        let d = detect(&mut p, RAM);
        assert_eq!(d.choice, Choice::Model);
        assert_eq!(d.cmo, MODEL_CMO);
        assert_eq!(d.des_mem_mb, Some(2048), "parameter 20 still counts");
        assert_eq!(p.mpp_calls, 1);
    }

    #[test]
    fn malformed_parameters_are_no_cmo_and_no_des_mem() {
        let mut p = Fake::new(Some(b"DesMem=lots"), Some(b"CMOPageSize=99,PrPSP=1"));
        let d = detect(&mut p, RAM);
        assert_eq!(d.choice, Choice::Model);
        assert_eq!(d.des_mem_mb, Some(512));
        assert_eq!(p.mpp_calls, 0, "a malformed parameter 44 is not CMO");
    }
}
