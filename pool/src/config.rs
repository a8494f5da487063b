//! The manager's configuration file (TOML), checked before anything starts.
//!
//! ```toml
//! pool = "768M"              # the shared pool (bytes, or K/M/G)
//! tick_ms = 1000             # one policy tick (default 1000)
//! headroom = "32M"           # added to a guest's used memory to make its demand
//! uncooperative_after = 10   # ticks a guest may lag behind its target
//!
//! [[partition]]
//! name = "web"
//! logical = "512M"           # its RAM (QEMU -m): the most it can be given
//! weight = 128               # 0-255 (default 128)
//! entitled = "64M"           # I/O entitlement: the least it is given (default 64M)
//! boot_args = "cmm.delay_ms=20"
//! # qmp = "/run/web.sock"    # attach to a running QEMU instead of starting one
//!
//! duration_s = 120           # stop after this long (default: run until killed)
//!
//! [[event]]                  # a scripted demo: at a time, a console line or a kill
//! at_s = 20
//! partition = "web"
//! console = "alloc 300M"     # or: kill = true
//! ```
//!
//! Sizes are a number of bytes or a string with a `K`, `M` or `G` suffix, and must
//! be whole 4 KiB pages. A configuration whose entitlements add up to more than
//! the pool is refused ([`crate::policy::Policy::new`] checks it again).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::{Params, Policy, PolicyError, PoolPolicy, Spec, PAGE_SIZE};

/// Default tick.
pub const DEFAULT_TICK_MS: u64 = 1000;
/// Default I/O entitlement (the in-guest model's own default).
pub const DEFAULT_ENTITLED: u64 = powervm_sim::SELF_DEFAULT_ENTITLED;
/// Default memory weight.
pub const DEFAULT_WEIGHT: u8 = powervm_sim::DEFAULT_WEIGHT;

/// A size as written in the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    pool: Size,
    tick_ms: Option<u64>,
    headroom: Option<Size>,
    uncooperative_after: Option<u32>,
    duration_s: Option<u64>,
    #[serde(default)]
    partition: Vec<RawPartition>,
    #[serde(default)]
    event: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at_s: f64,
    partition: String,
    console: Option<String>,
    #[serde(default)]
    kill: bool,
}

/// What a scripted event does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send a line to the guest's serial console.
    Console(String),
    /// Kill the guest's QEMU.
    Kill,
}

/// A scripted event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Milliseconds after the start.
    pub at_ms: u64,
    /// Index of the partition.
    pub partition: usize,
    /// What happens.
    pub action: Action,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    name: String,
    logical: Size,
    weight: Option<i64>,
    entitled: Option<Size>,
    boot_args: Option<String>,
    qmp: Option<PathBuf>,
}

/// One partition of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionConfig {
    /// Name (letters, digits, `-`, `_`; at most 32 bytes).
    pub name: String,
    /// Logical memory, bytes.
    pub logical: u64,
    /// Memory weight.
    pub weight: u8,
    /// I/O entitlement, bytes.
    pub entitled: u64,
    /// Boot arguments for a guest the manager starts.
    pub boot_args: String,
    /// The QMP socket of a running QEMU to attach to, instead of starting one.
    pub qmp: Option<PathBuf>,
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Pool size, bytes.
    pub pool: u64,
    /// Tick, milliseconds.
    pub tick_ms: u64,
    /// Policy tunables.
    pub params: Params,
    /// The partitions, in file order.
    pub partitions: Vec<PartitionConfig>,
    /// Run length, milliseconds (None: until killed).
    pub duration_ms: Option<u64>,
    /// Scripted events, in time order.
    pub events: Vec<Event>,
}

/// Why a configuration is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: String) -> Result<T, ConfigError> {
    Err(ConfigError(msg))
}

fn size(what: &str, s: &Size) -> Result<u64, ConfigError> {
    let bytes = match s {
        Size::Bytes(b) => *b,
        Size::Text(t) => match lpar_units::parse_size(t.trim()) {
            Ok(b) => b,
            Err(e) => return err(format!("{what}: `{t}`: {e}")),
        },
    };
    if bytes % PAGE_SIZE != 0 {
        return err(format!(
            "{what}: {bytes} is not a whole number of 4 KiB pages"
        ));
    }
    Ok(bytes)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= powervm_sim::MAX_NAME_LEN
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses and checks a configuration's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        let pool = size("pool", &raw.pool)?;
        let tick_ms = raw.tick_ms.unwrap_or(DEFAULT_TICK_MS);
        if tick_ms == 0 {
            return err("tick_ms: must be at least 1".into());
        }
        let mut params = Params::default();
        if let Some(h) = &raw.headroom {
            params.headroom = size("headroom", h)? / PAGE_SIZE;
        }
        if let Some(u) = raw.uncooperative_after {
            params.uncooperative_after = u;
        }
        if raw.partition.is_empty() {
            return err("no [[partition]]".into());
        }
        let mut partitions = Vec::with_capacity(raw.partition.len());
        for p in &raw.partition {
            let n = &p.name;
            if !valid_name(n) {
                return err(format!(
                    "partition name `{n}`: use 1-32 letters, digits, `-` or `_`"
                ));
            }
            let logical = size(&format!("partition {n}: logical"), &p.logical)?;
            if logical == 0 {
                return err(format!("partition {n}: logical memory is 0"));
            }
            let weight = match p.weight {
                None => DEFAULT_WEIGHT,
                Some(w) => match u8::try_from(w) {
                    Ok(w) => w,
                    Err(_) => return err(format!("partition {n}: weight {w} is not 0-255")),
                },
            };
            let entitled = match &p.entitled {
                Some(e) => size(&format!("partition {n}: entitled"), e)?,
                None => DEFAULT_ENTITLED.min(logical),
            };
            if entitled > logical {
                return err(format!(
                    "partition {n}: entitled {} MiB is above its logical memory {} MiB",
                    entitled >> 20,
                    logical >> 20
                ));
            }
            if partitions.iter().any(|q: &PartitionConfig| &q.name == n) {
                return err(format!("partition {n} is defined twice"));
            }
            partitions.push(PartitionConfig {
                name: n.clone(),
                logical,
                weight,
                entitled,
                boot_args: p.boot_args.clone().unwrap_or_default(),
                qmp: p.qmp.clone(),
            });
        }
        let entitled: u64 = partitions.iter().map(|p| p.entitled).sum();
        if entitled > pool {
            return err(format!(
                "the I/O entitlements add up to {} MiB, more than the pool's {} MiB",
                entitled >> 20,
                pool >> 20
            ));
        }
        let mut events = Vec::with_capacity(raw.event.len());
        for e in &raw.event {
            let Some(partition) = partitions.iter().position(|p| p.name == e.partition) else {
                return err(format!("event: no partition `{}`", e.partition));
            };
            if !(e.at_s.is_finite() && e.at_s >= 0.0 && e.at_s < 1e9) {
                return err(format!("event: at_s {} is not a time", e.at_s));
            }
            let action = match (&e.console, e.kill) {
                (Some(c), false) if !c.trim().is_empty() => Action::Console(c.trim().to_string()),
                (None, true) => Action::Kill,
                _ => return err("event: give either `console = \"...\"` or `kill = true`".into()),
            };
            events.push(Event {
                at_ms: u64::try_from(std::time::Duration::from_secs_f64(e.at_s).as_millis())
                    .unwrap_or(u64::MAX),
                partition,
                action,
            });
        }
        events.sort_by_key(|e| e.at_ms);
        Ok(Config {
            pool,
            tick_ms,
            params,
            partitions,
            duration_ms: raw.duration_s.map(|s| s.saturating_mul(1000)),
            events,
        })
    }

    /// The partitions as the policy sees them (pages).
    pub fn specs(&self) -> Vec<Spec> {
        self.partitions
            .iter()
            .map(|p| Spec {
                name: p.name.clone(),
                logical: p.logical / PAGE_SIZE,
                entitled: p.entitled / PAGE_SIZE,
                weight: p.weight,
            })
            .collect()
    }

    /// The pool policy for this configuration, with its initial allotments; refused
    /// when the entitlements do not fit the pool.
    pub fn policy(&self) -> Result<Box<dyn PoolPolicy>, PolicyError> {
        Ok(Box::new(Policy::new(
            self.pool / PAGE_SIZE,
            self.specs(),
            self.params,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
pool = "768M"
tick_ms = 200
headroom = 16777216
[[partition]]
name = "a"
logical = "512M"
weight = 200
entitled = "32M"
boot_args = "cmm.delay_ms=20"
[[partition]]
name = "b-2"
logical = 536870912
"#;

    #[test]
    fn parses_sizes_defaults_and_order() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.pool, 768 << 20);
        assert_eq!(c.tick_ms, 200);
        assert_eq!(c.params.headroom, 4096);
        assert_eq!(c.params.uncooperative_after, 10);
        assert_eq!(c.partitions[0].weight, 200);
        assert_eq!(c.partitions[0].entitled, 32 << 20);
        assert_eq!(c.partitions[0].boot_args, "cmm.delay_ms=20");
        assert_eq!(c.partitions[1].name, "b-2");
        assert_eq!(c.partitions[1].weight, 128);
        assert_eq!(c.partitions[1].entitled, 64 << 20);
        assert_eq!(c.partitions[1].qmp, None);
        assert_eq!(c.specs()[0].logical, 131072);
        let d = Config::parse("pool = \"1G\"\n[[partition]]\nname = \"x\"\nlogical = \"256M\"\n")
            .unwrap();
        assert_eq!(d.tick_ms, DEFAULT_TICK_MS);
    }

    fn refused(text: &str, needle: &str) {
        match Config::parse(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => assert!(e.0.contains(needle), "`{e}` lacks `{needle}`"),
        }
    }

    #[test]
    fn refuses_bad_files() {
        let p = "[[partition]]\nname = \"a\"\nlogical = \"256M\"\n";
        refused(&format!("pool = \"100M\"\n{p}{p}"), "defined twice");
        refused(
            &format!("pool = \"100M\"\n{}", p.replace("256M", "12345")),
            "4 KiB",
        );
        refused(&format!("pool = \"10Q\"\n{p}"), "pool");
        refused(&format!("pool = \"1G\"\nbogus = 1\n{p}"), "bogus");
        refused("pool = \"1G\"\n", "no [[partition]]");
        refused(&format!("pool = \"1G\"\ntick_ms = 0\n{p}"), "tick_ms");
        refused(&format!("pool = \"1G\"\n{p}weight = 256\n"), "weight 256");
        refused(&format!("pool = \"1G\"\n{p}weight = -1\n"), "weight -1");
        refused(
            &format!("pool = \"1G\"\n{p}entitled = \"512M\"\n"),
            "above its logical",
        );
        refused(
            &format!("pool = \"1G\"\n{}", p.replace("\"a\"", "\"a b\"")),
            "name",
        );
        refused(
            &format!("pool = \"1G\"\n{}", p.replace("\"a\"", "\"\"")),
            "name",
        );
    }

    #[test]
    fn events_are_checked_and_sorted() {
        let base =
            "pool = \"1G\"\nduration_s = 60\n[[partition]]\nname = \"a\"\nlogical = \"256M\"\n";
        let c = Config::parse(&format!(
            "{base}[[event]]\nat_s = 5\npartition = \"a\"\nkill = true\n[[event]]\nat_s = 1.5\npartition = \"a\"\nconsole = \"alloc 64M\"\n"
        ))
        .unwrap();
        assert_eq!(c.duration_ms, Some(60_000));
        assert_eq!(c.events[0].at_ms, 1500);
        assert_eq!(c.events[0].action, Action::Console("alloc 64M".into()));
        assert_eq!(c.events[1].action, Action::Kill);
        refused(
            &format!("{base}[[event]]\nat_s = 1\npartition = \"b\"\nkill = true\n"),
            "no partition `b`",
        );
        refused(
            &format!("{base}[[event]]\nat_s = 1\npartition = \"a\"\n"),
            "either",
        );
        refused(
            &format!("{base}[[event]]\nat_s = -1\npartition = \"a\"\nkill = true\n"),
            "not a time",
        );
    }

    #[test]
    fn refuses_entitlements_beyond_the_pool() {
        let text = r#"
pool = "100M"
[[partition]]
name = "a"
logical = "512M"
[[partition]]
name = "b"
logical = "512M"
"#;
        refused(
            text,
            "the I/O entitlements add up to 128 MiB, more than the pool's 100 MiB",
        );
    }
}
