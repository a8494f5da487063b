//! `hv ...` as a typed command: the one parse of the words after `hv`, with the
//! one usage string ([`HV_USAGE`]). The kernel's command table, its boot arguments
//! (`hv.target=`, `hv.mode=`, `hv.lpar.<name>=`) and the model itself all go
//! through [`HvCommand::parse`]. `host` is parsed here too; it needs a virtio
//! balloon behind the model, so the model alone refuses it.
//!
//! Numbers and sizes are read by [`lpar_units`] (decimal or `0x` hex, sizes with
//! an optional `K`, `M` or `G` suffix) and refused in its words.

use alloc::string::ToString;

use super::{FailKind, ModelError};
use hcall::status::HStatus;
use lpar_units::NumberError;

/// Parses `<n>` (decimal or `0x` hex, [`lpar_units::parse_number`]).
pub(crate) fn parse_number(s: &str) -> Result<u64, ModelError> {
    lpar_units::parse_number(s).map_err(|reason| ModelError::bad_number(s, reason))
}

/// Parses `<size>` (a number with an optional `K`, `M` or `G` suffix,
/// [`lpar_units::parse_size`]).
pub(crate) fn parse_size(s: &str) -> Result<u64, ModelError> {
    lpar_units::parse_size(s).map_err(|reason| ModelError::bad_number(s, reason))
}

/// The `key=value` arguments of `hv lpar add/set`; sizes in bytes. The model checks
/// the values (weight ≤ 255, whole pages, ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LparParams {
    /// `mem=<size>`: logical memory.
    pub mem: Option<u64>,
    /// `entitled=<size>` (or `ent=`): I/O entitlement.
    pub entitled: Option<u64>,
    /// `weight=<n>`: memory weight.
    pub weight: Option<u64>,
    /// `demand=<size>`: memory the partition would use.
    pub demand: Option<u64>,
}

impl LparParams {
    /// Parses `key=value` words; a later key overrides an earlier one.
    pub fn parse(words: &[&str]) -> Result<Self, ModelError> {
        let mut p = LparParams::default();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| ModelError::UnknownKey(w.to_string()))?;
            match k {
                "mem" => p.mem = Some(parse_size(v)?),
                "entitled" | "ent" => p.entitled = Some(parse_size(v)?),
                "weight" => p.weight = Some(parse_number(v)?),
                "demand" => p.demand = Some(parse_size(v)?),
                _ => return Err(ModelError::UnknownKey(k.to_string())),
            }
        }
        Ok(p)
    }
}

/// Most steps one `hv step <n>` runs.
pub const MAX_COMMAND_STEPS: u64 = 100_000;

/// The usage of `hv`, as `help` and every usage error print it.
pub const HV_USAGE: &str = "hv [target <size> | auto | host | pool <size> | lpar add <name> \
mem=<size> [weight=<n>] [demand=<size>] [entitled=<size>] | lpar set <name> key=value... | \
lpar del <name> | fail <hcall> <count> <rc> | step [<n>] | step_us <n>]";

/// One `hv` command; `'a` is the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HvCommand<'a> {
    /// `hv`: the model's rows.
    Show,
    /// `hv target <size>`: steer the loan to exactly this many bytes.
    Target(u64),
    /// `hv auto`: the loan request comes from the pool again.
    Auto,
    /// `hv host`: the loan target comes from the host's balloon request.
    Host,
    /// `hv pool <size>`: the pool size.
    Pool(u64),
    /// `hv lpar add <name> key=value...`: another partition.
    LparAdd {
        /// Its name.
        name: &'a str,
        /// Its values.
        params: LparParams,
    },
    /// `hv lpar set <name> key=value...`: change another partition.
    LparSet {
        /// Its name.
        name: &'a str,
        /// The values to change.
        params: LparParams,
    },
    /// `hv lpar del <name>`: remove another partition.
    LparDel(&'a str),
    /// `hv fail <hcall> <count> <rc>`: the next `count` calls fail with `status`.
    Fail {
        /// Which calls.
        kind: FailKind,
        /// How many (0 cancels).
        count: u32,
        /// With what.
        status: HStatus,
    },
    /// `hv step [<n>]`: run `n` steps by hand (1 without `n`).
    Step(u64),
    /// `hv step_us <n>`: the length of a step in µs.
    StepUs(u64),
}

impl<'a> HvCommand<'a> {
    /// Parses the words after `hv`. Values the model checks against its state
    /// (a target above memory, a weight above 255, whole pages) are checked when
    /// the command is applied.
    pub fn parse(words: &[&'a str]) -> Result<Self, ModelError> {
        Ok(match *words {
            [] => HvCommand::Show,
            ["target", size] => HvCommand::Target(parse_size(size)?),
            ["auto"] => HvCommand::Auto,
            ["host"] => HvCommand::Host,
            ["pool", size] => HvCommand::Pool(parse_size(size)?),
            ["lpar", "add", name, ref rest @ ..] => HvCommand::LparAdd {
                name,
                params: LparParams::parse(rest)?,
            },
            ["lpar", "set", name, ref rest @ ..] => HvCommand::LparSet {
                name,
                params: LparParams::parse(rest)?,
            },
            ["lpar", "del", name] => HvCommand::LparDel(name),
            ["fail", hcall, count, rc] => HvCommand::Fail {
                kind: FailKind::parse(hcall)
                    .ok_or_else(|| ModelError::UnknownHcall(hcall.to_string()))?,
                count: u32::try_from(parse_number(count)?)
                    .map_err(|_| ModelError::bad_number(count, NumberError::Overflow))?,
                status: HStatus::parse(rc).ok_or_else(|| ModelError::BadStatus(rc.to_string()))?,
            },
            ["step"] => HvCommand::Step(1),
            ["step", n] => {
                let steps = parse_number(n)?;
                if steps > MAX_COMMAND_STEPS {
                    return Err(ModelError::bad_number(n, NumberError::Overflow));
                }
                HvCommand::Step(steps)
            }
            ["step_us", n] => HvCommand::StepUs(parse_number(n)?),
            _ => return Err(ModelError::Usage(HV_USAGE)),
        })
    }

    /// The command a boot argument `hv.<key>=<value>` stands for:
    /// `hv.target=<size>`, `hv.pool=<size>`, `hv.step_us=<n>`,
    /// `hv.mode=auto|host`, `hv.lpar.<name>=key=value,...`. `None` for a key that
    /// is not one of these.
    pub fn from_boot_arg(key: &'a str, value: &'a str) -> Option<Result<Self, ModelError>> {
        let mut words: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
        match key.split_once('.') {
            Some(("lpar", name)) => {
                words.extend(["lpar", "add", name]);
                words.extend(value.split(','));
            }
            Some(_) => return None,
            None => match (key, value) {
                ("target" | "pool" | "step_us", v) => words.extend([key, v]),
                ("mode", "auto") => words.push("auto"),
                ("mode", "host") => words.push("host"),
                ("mode", _) => return Some(Err(ModelError::Usage("hv.mode=auto|host"))),
                _ => return None,
            },
        }
        Some(HvCommand::parse(&words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn every_form_parses() {
        let p = |s: &'static str| {
            let words: alloc::vec::Vec<&str> = s.split_ascii_whitespace().collect();
            HvCommand::parse(&words)
        };
        assert_eq!(p(""), Ok(HvCommand::Show));
        assert_eq!(p("target 128M"), Ok(HvCommand::Target(128 * MIB)));
        assert_eq!(p("target 0"), Ok(HvCommand::Target(0)));
        assert_eq!(p("auto"), Ok(HvCommand::Auto));
        assert_eq!(p("host"), Ok(HvCommand::Host));
        assert_eq!(p("pool 0x20000000"), Ok(HvCommand::Pool(512 * MIB)));
        assert_eq!(
            p("lpar add web mem=1G weight=200 demand=512M"),
            Ok(HvCommand::LparAdd {
                name: "web",
                params: LparParams {
                    mem: Some(1 << 30),
                    weight: Some(200),
                    demand: Some(512 * MIB),
                    entitled: None,
                },
            })
        );
        assert_eq!(
            p("lpar set db ent=32M"),
            Ok(HvCommand::LparSet {
                name: "db",
                params: LparParams {
                    entitled: Some(32 * MIB),
                    ..LparParams::default()
                },
            })
        );
        assert_eq!(p("lpar del db"), Ok(HvCommand::LparDel("db")));
        assert_eq!(
            p("fail page_init 2 H_BUSY"),
            Ok(HvCommand::Fail {
                kind: FailKind::PageInit,
                count: 2,
                status: HStatus::Busy,
            })
        );
        assert_eq!(
            p("fail H_GET_MPP 1 -2"),
            Ok(HvCommand::Fail {
                kind: FailKind::GetMpp,
                count: 1,
                status: HStatus::Function,
            })
        );
        assert_eq!(p("step"), Ok(HvCommand::Step(1)));
        assert_eq!(p("step 100000"), Ok(HvCommand::Step(100_000)));
        assert_eq!(p("step_us 20000"), Ok(HvCommand::StepUs(20_000)));
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let p = |s: &'static str| {
            let words: alloc::vec::Vec<&str> = s.split_ascii_whitespace().collect();
            HvCommand::parse(&words)
        };
        let bad = |s: &str| ModelError::bad_number(s, NumberError::Invalid);
        let big = |s: &str| ModelError::bad_number(s, NumberError::Overflow);
        for (line, err) in [
            ("target", ModelError::Usage(HV_USAGE)),
            ("target 1M 2M", ModelError::Usage(HV_USAGE)),
            ("frob", ModelError::Usage(HV_USAGE)),
            ("host now", ModelError::Usage(HV_USAGE)),
            ("lpar", ModelError::Usage(HV_USAGE)),
            ("lpar del", ModelError::Usage(HV_USAGE)),
            ("lpar del a b", ModelError::Usage(HV_USAGE)),
            ("fail page_init 2", ModelError::Usage(HV_USAGE)),
            ("target 12Q", bad("12Q")),
            ("pool -1", bad("-1")),
            ("step 100001", big("100001")),
            ("step_us x", bad("x")),
            ("fail get_mpp 99999999999 H_BUSY", big("99999999999")),
            ("target 99999999999G", big("99999999999G")),
            (
                "fail frob 1 H_BUSY",
                ModelError::UnknownHcall("frob".into()),
            ),
            (
                "fail get_mpp 1 H_FROB",
                ModelError::BadStatus("H_FROB".into()),
            ),
            ("lpar add x mem", ModelError::UnknownKey("mem".into())),
            (
                "lpar add x colour=red",
                ModelError::UnknownKey("colour".into()),
            ),
            ("lpar set x mem=lots", bad("lots")),
        ] {
            assert_eq!(p(line), Err(err), "hv {line}");
        }
        assert!(HV_USAGE.contains("| host |"), "the usage names host");
        assert_eq!(
            ModelError::Usage(HV_USAGE).to_string(),
            alloc::format!("usage: {HV_USAGE}")
        );
    }

    #[test]
    fn boot_arguments_are_the_same_commands() {
        let b = HvCommand::from_boot_arg;
        assert_eq!(b("target", "128M"), Some(Ok(HvCommand::Target(128 * MIB))));
        assert_eq!(b("pool", "1G"), Some(Ok(HvCommand::Pool(1 << 30))));
        assert_eq!(b("step_us", "500"), Some(Ok(HvCommand::StepUs(500))));
        assert_eq!(b("mode", "host"), Some(Ok(HvCommand::Host)));
        assert_eq!(b("mode", "auto"), Some(Ok(HvCommand::Auto)));
        assert_eq!(
            b("mode", "manual"),
            Some(Err(ModelError::Usage("hv.mode=auto|host")))
        );
        assert_eq!(
            b("lpar.web", "mem=1G,weight=200"),
            Some(Ok(HvCommand::LparAdd {
                name: "web",
                params: LparParams {
                    mem: Some(1 << 30),
                    weight: Some(200),
                    ..LparParams::default()
                },
            }))
        );
        assert_eq!(
            b("target", "x"),
            Some(Err(ModelError::bad_number("x", NumberError::Invalid)))
        );
        assert_eq!(b("colour", "red"), None);
        assert_eq!(b("lpar", "mem=1G"), None);
        assert_eq!(b("a.b", "1"), None);
    }
}
