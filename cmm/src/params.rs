//! The balloon's tunables (`cmm set <param> <value>`, boot argument `cmm.<param>=`).
//!
//! Linux's CMM module parameters (`disable`, `debug`, `min_mem_mb`, `oom_kb`,
//! `delay`) with Linux's defaults, plus this kernel's own: `delay_ms` (finer poll
//! interval), `policy`, the AIX-style free-list thresholds `minfree`/`maxfree`, and
//! `poison`. [`Params::set`] validates and changes nothing on error; unlike Linux,
//! a zero poll interval is refused (it would be a busy loop).

use alloc::string::ToString;
use core::fmt;

use crate::error::CmmError;
use crate::units::PAGES_PER_MB;

/// How the balloon answers the hypervisor's loan request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Linux's CMM: loan any free frame, down to the `min_mem_mb` floor.
    #[default]
    Aggressive,
    /// The AIX VMM free-list discipline: loan only while more than `maxfree` frames
    /// are free; when fewer than `minfree` are, return loaned pages until `maxfree`
    /// are free again.
    Conservative,
    /// Loan nothing, return everything.
    Off,
}

impl Policy {
    /// The name used on the console.
    pub const fn name(self) -> &'static str {
        match self {
            Policy::Aggressive => "aggressive",
            Policy::Conservative => "conservative",
            Policy::Off => "off",
        }
    }

    /// Parses a console name.
    pub fn parse(s: &str) -> Option<Policy> {
        [Policy::Aggressive, Policy::Conservative, Policy::Off]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A parameter name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Param {
    /// `disable` (0/1).
    Disable,
    /// `debug`.
    Debug,
    /// `min_mem_mb`.
    MinMemMb,
    /// `oom_kb`.
    OomKb,
    /// `delay` (seconds).
    Delay,
    /// `delay_ms`.
    DelayMs,
    /// `policy`.
    Policy,
    /// `minfree` (pages).
    Minfree,
    /// `maxfree` (pages).
    Maxfree,
    /// `poison` (0/1).
    Poison,
}

impl Param {
    /// Every parameter, in the order they are printed (Linux's first).
    pub const ALL: [Param; 10] = [
        Param::Disable,
        Param::Debug,
        Param::MinMemMb,
        Param::OomKb,
        Param::Delay,
        Param::DelayMs,
        Param::Policy,
        Param::Minfree,
        Param::Maxfree,
        Param::Poison,
    ];

    /// The parameters Linux's CMM has, in amsstat's order.
    pub const LINUX: [Param; 5] = [
        Param::Disable,
        Param::Debug,
        Param::MinMemMb,
        Param::OomKb,
        Param::Delay,
    ];

    /// The parameter's name.
    pub const fn name(self) -> &'static str {
        match self {
            Param::Disable => "disable",
            Param::Debug => "debug",
            Param::MinMemMb => "min_mem_mb",
            Param::OomKb => "oom_kb",
            Param::Delay => "delay",
            Param::DelayMs => "delay_ms",
            Param::Policy => "policy",
            Param::Minfree => "minfree",
            Param::Maxfree => "maxfree",
            Param::Poison => "poison",
        }
    }

    /// Looks a parameter up by name.
    pub fn from_name(s: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// A parameter's value, for printing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// A number.
    Num(u64),
    /// A policy name.
    Policy(Policy),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Num(n) => fmt::Display::fmt(n, f),
            ParamValue::Policy(p) => fmt::Display::fmt(p, f),
        }
    }
}

/// The tunables. Fields are private so every change goes through [`Params::set`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    disable: bool,
    debug: u32,
    min_mem_mb: u64,
    oom_kb: u64,
    delay_ms: u64,
    policy: Policy,
    minfree: u64,
    maxfree: u64,
    poison: bool,
}

impl Default for Params {
    /// Linux's CMM defaults (delay 1 s, oom_kb 1024, min_mem_mb 256), the AIX 5.3
    /// free-list defaults (minfree 960, maxfree 1088), aggressive policy, no poison.
    fn default() -> Self {
        Params {
            disable: false,
            debug: 0,
            min_mem_mb: 256,
            oom_kb: 1024,
            delay_ms: 1000,
            policy: Policy::Aggressive,
            minfree: 960,
            maxfree: 1088,
            poison: false,
        }
    }
}

fn invalid(param: Param, reason: &'static str) -> CmmError {
    CmmError::InvalidValue {
        param: param.name(),
        reason,
    }
}

fn number(param: Param, s: &str) -> Result<u64, CmmError> {
    lpar_units::parse_number(s).map_err(|reason| CmmError::BadNumber {
        param: param.name(),
        reason,
    })
}

fn flag(param: Param, s: &str) -> Result<bool, CmmError> {
    match number(param, s)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(invalid(param, "must be 0 or 1")),
    }
}

impl Params {
    /// Sets parameter `name` from its console text. On error nothing changes.
    /// Returns which parameter changed.
    pub fn set(&mut self, name: &str, value: &str) -> Result<Param, CmmError> {
        let param = Param::from_name(name).ok_or(CmmError::UnknownParam(name.to_string()))?;
        let mut next = *self;
        match param {
            Param::Disable => next.disable = flag(param, value)?,
            Param::Poison => next.poison = flag(param, value)?,
            Param::Debug => {
                next.debug = u32::try_from(number(param, value)?)
                    .map_err(|_| invalid(param, "too large"))?;
            }
            Param::MinMemMb => {
                let mb = number(param, value)?;
                if mb.checked_mul(PAGES_PER_MB).is_none() {
                    return Err(invalid(param, "too large"));
                }
                next.min_mem_mb = mb;
            }
            Param::OomKb => next.oom_kb = number(param, value)?,
            Param::Delay => {
                let s = number(param, value)?;
                if s == 0 {
                    return Err(invalid(
                        param,
                        "must be at least 1 (0 would be a busy loop)",
                    ));
                }
                next.delay_ms = s.checked_mul(1000).ok_or(invalid(param, "too large"))?;
            }
            Param::DelayMs => {
                let ms = number(param, value)?;
                if ms == 0 {
                    return Err(invalid(
                        param,
                        "must be at least 1 (0 would be a busy loop)",
                    ));
                }
                next.delay_ms = ms;
            }
            Param::Policy => {
                next.policy = Policy::parse(value)
                    .ok_or(invalid(param, "must be aggressive, conservative or off"))?;
            }
            Param::Minfree => next.minfree = number(param, value)?,
            Param::Maxfree => next.maxfree = number(param, value)?,
        }
        if next.minfree > next.maxfree {
            return Err(invalid(param, "minfree must not exceed maxfree"));
        }
        *self = next;
        Ok(param)
    }

    /// The current value of `param`.
    pub fn get(&self, param: Param) -> ParamValue {
        use ParamValue::Num;
        match param {
            Param::Disable => Num(u64::from(self.disable)),
            Param::Debug => Num(u64::from(self.debug)),
            Param::MinMemMb => Num(self.min_mem_mb),
            Param::OomKb => Num(self.oom_kb),
            Param::Delay => Num(self.delay_ms / 1000),
            Param::DelayMs => Num(self.delay_ms),
            Param::Policy => ParamValue::Policy(self.policy),
            Param::Minfree => Num(self.minfree),
            Param::Maxfree => Num(self.maxfree),
            Param::Poison => Num(u64::from(self.poison)),
        }
    }

    /// True when the balloon is stopped (`disable 1`).
    pub fn disabled(&self) -> bool {
        self.disable
    }
    /// The debug level.
    pub fn debug(&self) -> u32 {
        self.debug
    }
    /// The floor in MiB.
    pub fn min_mem_mb(&self) -> u64 {
        self.min_mem_mb
    }
    /// The floor in pages.
    pub fn min_pages(&self) -> u64 {
        crate::units::mb_to_pages(self.min_mem_mb)
    }
    /// KiB returned per OOM notification.
    pub fn oom_kb(&self) -> u64 {
        self.oom_kb
    }
    /// Pages returned per OOM notification.
    pub fn oom_pages(&self) -> u64 {
        crate::units::kb_to_pages(self.oom_kb)
    }
    /// The poll interval in milliseconds (never 0).
    pub fn delay_ms(&self) -> u64 {
        self.delay_ms.max(1)
    }
    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }
    /// Free-list low-water mark (pages).
    pub fn minfree(&self) -> u64 {
        self.minfree
    }
    /// Free-list high-water mark (pages).
    pub fn maxfree(&self) -> u64 {
        self.maxfree
    }
    /// True in poison mode.
    pub fn poison(&self) -> bool {
        self.poison
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_linux_and_aix() {
        let p = Params::default();
        assert_eq!(p.get(Param::MinMemMb), ParamValue::Num(256));
        assert_eq!(p.get(Param::OomKb), ParamValue::Num(1024));
        assert_eq!(p.get(Param::Delay), ParamValue::Num(1));
        assert_eq!(p.oom_pages(), 256);
        assert_eq!(p.min_pages(), 65536);
        assert_eq!(p.get(Param::Policy).to_string(), "aggressive");
    }

    #[test]
    fn set_validates_and_changes_nothing_on_error() {
        let mut p = Params::default();
        let before = p;
        for (name, value) in [
            ("disable", "2"),
            ("disable", "-1"),
            ("poison", "yes"),
            ("delay", "0"),
            ("delay_ms", "0"),
            ("delay", "18446744073709551615"),
            ("debug", "4294967296"),
            ("min_mem_mb", "0xffffffffffffffff"),
            ("policy", "greedy"),
            ("minfree", "2000"),
            ("maxfree", "10"),
            ("oom_kb", ""),
            ("oom_kb", "0x"),
            ("oom_kb", "+5"),
        ] {
            assert!(p.set(name, value).is_err(), "{name}={value}");
            assert_eq!(p, before);
        }
        assert_eq!(
            p.set("nope", "1"),
            Err(CmmError::UnknownParam("nope".into()))
        );
        assert!(p.set("nope", "1").unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn a_bad_number_is_refused_in_the_consoles_words() {
        let mut p = Params::default();
        assert_eq!(
            p.set("min_mem_mb", "12a").unwrap_err().to_string(),
            "invalid value for min_mem_mb: not a number"
        );
        assert_eq!(
            p.set("oom_kb", "18446744073709551616")
                .unwrap_err()
                .to_string(),
            "invalid value for oom_kb: number too large"
        );
        assert_eq!(p, Params::default());
    }

    #[test]
    fn set_accepts_good_values() {
        let mut p = Params::default();
        assert_eq!(p.set("delay_ms", "20"), Ok(Param::DelayMs));
        assert_eq!(p.get(Param::Delay), ParamValue::Num(0));
        assert_eq!(p.delay_ms(), 20);
        p.set("delay", "3").unwrap();
        assert_eq!(p.delay_ms(), 3000);
        p.set("maxfree", "0x1000").unwrap();
        p.set("minfree", "4096").unwrap();
        assert_eq!((p.minfree(), p.maxfree()), (4096, 4096));
        p.set("policy", "conservative").unwrap();
        assert_eq!(p.policy(), Policy::Conservative);
        p.set("disable", "1").unwrap();
        assert!(p.disabled());
        p.set("poison", "1").unwrap();
        assert!(p.poison());
        p.set("oom_kb", "0").unwrap();
        assert_eq!(p.oom_pages(), 0);
    }
}
