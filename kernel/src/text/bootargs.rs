//! Boot arguments: space-separated `key=value` pairs from `/chosen/bootargs`,
//! parsed ([`parse`]) and typed ([`plan`]): what boot takes before the memory
//! manager exists (`rma=`, `mmu=`, `smp=`) and what it applies to the running
//! kernel afterwards, in order (`cmm.<param>=`, `hv.<setting>=`, `log=`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The parsed arguments and the tokens that were not `key=value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootArgs<'a> {
    /// Well-formed pairs, in order.
    pub pairs: Vec<(&'a str, &'a str)>,
    /// Malformed tokens, each with the reason, for a warning.
    pub malformed: Vec<(&'a str, String)>,
}

/// Splits a bootargs string into pairs; malformed tokens are collected, not fatal.
pub fn parse(s: &str) -> BootArgs<'_> {
    let mut out = BootArgs::default();
    for tok in s.split_ascii_whitespace() {
        match tok.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => out.pairs.push((k, v)),
            Some(("", _)) => out.malformed.push((tok, "empty key".into())),
            Some(_) => out.malformed.push((tok, "empty value".into())),
            None => out.malformed.push((tok, "expected key=value".into())),
        }
    }
    out
}

/// Whether the kernel turns address translation on (`mmu=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Translation {
    /// `mmu=hash` (the default): the hash MMU with the linear map.
    Hash,
    /// `mmu=off`: real mode, only the RMA.
    Off,
}

/// An argument applied to the running kernel, in the order given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Late<'a> {
    /// `cmm.<param>=<value>`: a balloon parameter.
    Cmm {
        /// The parameter's name (after `cmm.`).
        param: &'a str,
        /// Its value, as given.
        value: &'a str,
    },
    /// `hv.<setting>=<value>`: a setting of the pool model.
    Hv {
        /// The setting's name (after `hv.`).
        setting: &'a str,
        /// Its value, as given.
        value: &'a str,
    },
    /// `log=<level>`.
    Log(log::LevelFilter),
}

/// What boot does with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<'a> {
    /// `rma=`: the RMA size asked for, as given (`glue::rma::init` checks it).
    pub rma: Option<&'a str>,
    /// `mmu=`.
    pub translation: Translation,
    /// `smp=`: at most this many CPUs.
    pub smp: Option<usize>,
    /// The rest, applied after the memory manager is built, in order, each with
    /// its key and value as given (what `version`/logs show).
    pub late: Vec<(&'a str, &'a str, Late<'a>)>,
    /// One warning per argument ignored: `boot argument ... ignored: why` or, for
    /// `smp=`, `boot argument smp=...: why; every CPU runs`.
    pub warnings: Vec<String>,
}

/// The `log=` levels by name.
fn log_level(v: &str) -> Option<log::LevelFilter> {
    Some(match v {
        "error" => log::LevelFilter::Error,
        "warn" => log::LevelFilter::Warn,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        _ => return None,
    })
}

/// Types the arguments in `s`. An early argument (`rma`, `mmu`, `smp`) is taken
/// from its first occurrence; every other well-formed one is a [`Late`] in the
/// order given, or a warning when its key or value is unknown. Nothing here
/// fails: a bad argument is a warning and changes nothing.
pub fn plan(s: &str) -> Plan<'_> {
    let parsed = parse(s);
    let mut p = Plan {
        rma: None,
        translation: Translation::Hash,
        smp: None,
        late: Vec::new(),
        warnings: Vec::new(),
    };
    for (tok, why) in &parsed.malformed {
        p.warnings
            .push(format!("boot argument `{tok}` ignored: {why}"));
    }
    let (mut rma_seen, mut mmu_seen, mut smp_seen) = (false, false, false);
    for &(k, v) in &parsed.pairs {
        match k {
            "rma" => {
                if !rma_seen {
                    p.rma = Some(v);
                }
                rma_seen = true;
            }
            "mmu" => {
                if !mmu_seen {
                    match v {
                        "hash" => p.translation = Translation::Hash,
                        "off" => p.translation = Translation::Off,
                        other => p.warnings.push(format!(
                            "boot argument mmu={other} ignored: not hash or off"
                        )),
                    }
                }
                mmu_seen = true;
            }
            "smp" => {
                if !smp_seen {
                    match crate::smp::parse_limit(v) {
                        Ok(n) => p.smp = Some(n),
                        Err(e) => p
                            .warnings
                            .push(format!("boot argument {e}; every CPU runs")),
                    }
                }
                smp_seen = true;
            }
            "log" => match log_level(v) {
                Some(l) => p.late.push((k, v, Late::Log(l))),
                None => p.warnings.push(format!(
                    "boot argument `{k}={v}` ignored: unknown log level `{v}`"
                )),
            },
            _ => {
                if let Some(param) = k.strip_prefix("cmm.") {
                    p.late.push((k, v, Late::Cmm { param, value: v }));
                } else if let Some(setting) = k.strip_prefix("hv.") {
                    p.late.push((k, v, Late::Hv { setting, value: v }));
                } else {
                    p.warnings.push(format!(
                        "boot argument `{k}={v}` ignored: unknown parameter `{k}`"
                    ));
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_malformed() {
        let a = parse("  cmm.delay_ms=20 junk hv.pool=1G =x y=  ");
        assert_eq!(a.pairs, [("cmm.delay_ms", "20"), ("hv.pool", "1G")]);
        let bad: Vec<_> = a.malformed.iter().map(|(t, _)| *t).collect();
        assert_eq!(bad, ["junk", "=x", "y="]);
    }

    #[test]
    fn early_arguments_are_typed_and_the_rest_kept_in_order() {
        let p = plan("cmm.delay_ms=20 rma=256M log=debug mmu=off hv.pool=1G smp=2");
        assert_eq!(p.rma, Some("256M"));
        assert_eq!(p.translation, Translation::Off);
        assert_eq!(p.smp, Some(2));
        assert_eq!(
            p.late,
            [
                (
                    "cmm.delay_ms",
                    "20",
                    Late::Cmm {
                        param: "delay_ms",
                        value: "20"
                    }
                ),
                ("log", "debug", Late::Log(log::LevelFilter::Debug)),
                (
                    "hv.pool",
                    "1G",
                    Late::Hv {
                        setting: "pool",
                        value: "1G"
                    }
                ),
            ]
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn without_arguments_translation_is_on_and_nothing_else_is_set() {
        let p = plan("");
        assert_eq!(
            p,
            Plan {
                rma: None,
                translation: Translation::Hash,
                smp: None,
                late: Vec::new(),
                warnings: Vec::new(),
            }
        );
        assert_eq!(plan("mmu=hash").translation, Translation::Hash);
    }

    #[test]
    fn the_first_early_argument_wins() {
        let p = plan("rma=128M rma=512M mmu=off mmu=hash smp=1 smp=4");
        assert_eq!(p.rma, Some("128M"));
        assert_eq!(p.translation, Translation::Off);
        assert_eq!(p.smp, Some(1));
        assert!(p.late.is_empty());
    }

    #[test]
    fn every_bad_argument_is_one_warning_and_changes_nothing() {
        let p = plan("junk =x y= mmu=radix smp=0 smp=2 log=loud nonsense=1 cmm.x=1");
        assert_eq!(
            p.warnings,
            [
                "boot argument `junk` ignored: expected key=value",
                "boot argument `=x` ignored: empty key",
                "boot argument `y=` ignored: empty value",
                "boot argument mmu=radix ignored: not hash or off",
                "boot argument smp=0: at least the boot CPU runs; every CPU runs",
                "boot argument `log=loud` ignored: unknown log level `loud`",
                "boot argument `nonsense=1` ignored: unknown parameter `nonsense`",
            ]
        );
        assert_eq!(p.translation, Translation::Hash);
        assert_eq!(
            p.smp, None,
            "a bad first smp= is not replaced by a later one"
        );
        // `cmm.x` is a cmm parameter: the balloon's own parser refuses it later.
        assert_eq!(
            p.late,
            [(
                "cmm.x",
                "1",
                Late::Cmm {
                    param: "x",
                    value: "1"
                }
            )]
        );
        let p = plan("smp=abc");
        assert_eq!(p.smp, None);
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].starts_with("boot argument smp=abc: "),
            "{:?}",
            p.warnings
        );
    }
}
