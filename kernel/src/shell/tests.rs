//! Host tests of the command table: every command's arguments, good and bad, with
//! the exact typed result or the exact error text the console prints after `error: `.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use cmm::Workload;
use powervm_sim::HvCommand;

use super::*;

/// Lines that parse, and what they parse into.
fn good() -> Vec<(&'static str, Command<'static>)> {
    use Command as C;
    vec![
        ("help", C::Help),
        ("version", C::Version),
        ("meminfo", C::Meminfo),
        ("devtree", C::Devtree { dump: false }),
        ("devtree dump", C::Devtree { dump: true }),
        ("sleep 0", C::Sleep { ms: 0 }),
        ("sleep 0x10", C::Sleep { ms: 16 }),
        ("sleep 3600000", C::Sleep { ms: 3_600_000 }),
        ("echo", C::Echo(vec![])),
        ("echo  still   here ", C::Echo(vec!["still", "here"])),
        ("poweroff", C::Poweroff),
        ("panic", C::Panic),
        ("time sleep 5", C::Time(Box::new(C::Sleep { ms: 5 }))),
        (
            "time time echo x",
            C::Time(Box::new(C::Time(Box::new(C::Echo(vec!["x"]))))),
        ),
        ("fault program", C::Fault(FaultKind::Program)),
        ("fault loaned", C::Fault(FaultKind::Loaned)),
        ("fault unmapped", C::Fault(FaultKind::Unmapped)),
        ("cmm", C::Cmm(CmmCommand::Show)),
        (
            "cmm set delay_ms 20",
            C::Cmm(CmmCommand::Set {
                param: "delay_ms",
                value: "20",
            }),
        ),
        // The balloon's parameter table checks names and values, not the parser.
        (
            "cmm set nonsense banana",
            C::Cmm(CmmCommand::Set {
                param: "nonsense",
                value: "banana",
            }),
        ),
        ("cmm reset-oom", C::Cmm(CmmCommand::ResetOom)),
        ("cmm wait", C::Cmm(CmmCommand::Wait { ms: 10_000 })),
        ("cmm wait 250", C::Cmm(CmmCommand::Wait { ms: 250 })),
        (
            "alloc 300M",
            C::Alloc {
                pages: 76_800,
                kind: Workload::Working,
            },
        ),
        (
            "alloc 8K cache",
            C::Alloc {
                pages: 2,
                kind: Workload::Cache,
            },
        ),
        (
            "free 0x2000",
            C::Free {
                pages: Some(2),
                kind: Workload::Working,
            },
        ),
        (
            "free all cache",
            C::Free {
                pages: None,
                kind: Workload::Cache,
            },
        ),
        ("verify", C::Verify),
        ("trace on", C::Trace(true)),
        ("trace off", C::Trace(false)),
        ("hv", C::Hv(HvCommand::Show)),
        ("hv target 128M", C::Hv(HvCommand::Target(128 << 20))),
        ("hv host", C::Hv(HvCommand::Host)),
        ("hv step", C::Hv(HvCommand::Step(1))),
        (
            "hv lpar add web mem=1G weight=200 demand=512M",
            C::Hv(HvCommand::LparAdd {
                name: "web",
                params: powervm_sim::LparParams {
                    mem: Some(1 << 30),
                    weight: Some(200),
                    demand: Some(512 << 20),
                    entitled: None,
                },
            }),
        ),
        ("mpp", C::Mpp(MppCommand::Show)),
        ("mpp weight 0", C::Mpp(MppCommand::Weight(0))),
        ("mpp weight 255", C::Mpp(MppCommand::Weight(255))),
        ("mpp entitle 96M", C::Mpp(MppCommand::Entitle(96 << 20))),
        ("lparcfg", C::Lparcfg),
        ("vio", C::Vio(VioCommand::Show)),
        (
            "vio map v-scsi@71000002 64K",
            C::Vio(VioCommand::Map {
                unit: "v-scsi@71000002",
                bytes: 65_536,
            }),
        ),
        (
            "vio unmap 71000002 3",
            C::Vio(VioCommand::Unmap {
                unit: "71000002",
                which: UnmapWhich::One(3),
            }),
        ),
        (
            "vio unmap 71000002 all",
            C::Vio(VioCommand::Unmap {
                unit: "71000002",
                which: UnmapWhich::All,
            }),
        ),
        (
            "vio tce 71000002 0x1",
            C::Vio(VioCommand::Tce {
                unit: "71000002",
                id: 1,
            }),
        ),
        (
            "vio desired 71000002 1M",
            C::Vio(VioCommand::Desired {
                unit: "71000002",
                bytes: 1 << 20,
            }),
        ),
        (
            "vio remove 71000002",
            C::Vio(VioCommand::Remove { unit: "71000002" }),
        ),
        (
            "vio probe 71000002",
            C::Vio(VioCommand::Probe { unit: "71000002" }),
        ),
        ("amsstat", C::Amsstat),
        ("sysfs", C::Sysfs),
        ("bench loan 32768", C::Bench(BenchCommand::Loan(32_768))),
        ("bench hcall 1", C::Bench(BenchCommand::Hcall(1))),
        ("bench store 1", C::Bench(BenchCommand::Store(1))),
        ("cpu", C::Cpu),
        (
            "stress 20000",
            C::Stress {
                ms: 20_000,
                cpus: None,
            },
        ),
        ("busy 3", C::Busy { cpus: 3, ms: None }),
        ("busy 0", C::Busy { cpus: 0, ms: None }),
        (
            "busy 2 300",
            C::Busy {
                cpus: 2,
                ms: Some(300),
            },
        ),
        (
            "stress 100 2",
            C::Stress {
                ms: 100,
                cpus: Some(2),
            },
        ),
    ]
}

/// Lines that are refused, and the exact reason printed after `error: `.
const BAD: &[(&str, &str)] = &[
    (
        "frobnicate now",
        "unknown command `frobnicate` (try `help`)",
    ),
    ("HELP", "unknown command `HELP` (try `help`)"),
    ("help me", "this command takes no arguments"),
    ("version 2", "this command takes no arguments"),
    ("meminfo -a", "this command takes no arguments"),
    ("devtree frob", "usage: devtree [dump]"),
    ("devtree dump dump", "usage: devtree [dump]"),
    ("sleep", "usage: sleep <ms>"),
    ("stress", "usage: stress <ms> [cpus]"),
    ("busy", "usage: busy <n> [ms]"),
    ("busy 1 2 3", "usage: busy <n> [ms]"),
    ("busy 1 0", "[ms] must be 1..3600000"),
    ("busy 1 3600001", "[ms] must be 1..3600000"),
    ("stress 1 2 3", "usage: stress <ms> [cpus]"),
    ("stress 100 0", "[cpus] must be at least 1"),
    ("stress 3600001", "stress is limited to one hour"),
    ("sleep 1 2", "usage: sleep <ms>"),
    ("sleep banana", "bad <ms> `banana`: not a number"),
    ("sleep -1", "bad <ms> `-1`: not a number"),
    ("sleep 1K", "bad <ms> `1K`: not a number"),
    (
        "sleep 99999999999999999999",
        "bad <ms> `99999999999999999999`: number too large",
    ),
    ("sleep 3600001", "sleep is limited to one hour"),
    ("poweroff now", "this command takes no arguments"),
    ("panic please", "this command takes no arguments"),
    ("cpu 0", "this command takes no arguments"),
    ("time", "usage: time <command...>"),
    ("time frob", "unknown command `frob` (try `help`)"),
    ("time sleep x", "bad <ms> `x`: not a number"),
    ("time time", "usage: time <command...>"),
    ("fault", "usage: fault program|loaned|unmapped"),
    ("fault beyond", "usage: fault program|loaned|unmapped"),
    (
        "fault program loaned",
        "usage: fault program|loaned|unmapped",
    ),
    (
        "cmm set delay_ms",
        "usage: cmm [set <param> <value> | reset-oom | wait [<ms>]]",
    ),
    (
        "cmm frob",
        "usage: cmm [set <param> <value> | reset-oom | wait [<ms>]]",
    ),
    (
        "cmm wait 1 2",
        "usage: cmm [set <param> <value> | reset-oom | wait [<ms>]]",
    ),
    ("cmm wait soon", "bad <ms> `soon`: not a number"),
    ("cmm wait 3600001", "wait is limited to one hour"),
    ("alloc", "usage: alloc <size> [cache]"),
    ("alloc 4K cache extra", "usage: alloc <size> [cache]"),
    ("alloc 4K working", "expected `cache`, got `working`"),
    (
        "alloc 100",
        "bad <size> `100`: size is not a multiple of 4 KiB",
    ),
    ("alloc lots", "bad <size> `lots`: not a number"),
    (
        "alloc 99999999999G",
        "bad <size> `99999999999G`: number too large",
    ),
    // The workload word is checked before the size, as before the table existed.
    ("alloc lots hot", "expected `cache`, got `hot`"),
    ("free", "usage: free <size>|all [cache]"),
    ("free all cache now", "usage: free <size>|all [cache]"),
    ("free all warm", "expected `cache`, got `warm`"),
    (
        "free 6K",
        "bad <size> `6K`: size is not a multiple of 4 KiB",
    ),
    ("verify all", "this command takes no arguments"),
    ("trace", "usage: trace on|off"),
    ("trace yes", "usage: trace on|off"),
    ("trace on off", "usage: trace on|off"),
    ("hv frob", HV_USAGE_ERROR),
    ("hv target", HV_USAGE_ERROR),
    ("hv target 12Q", "bad number '12Q': not a number"),
    ("hv fail frob 1 H_BUSY", "unknown hcall 'frob'"),
    ("hv lpar add x colour=red", "unknown argument 'colour'"),
    ("mpp weight", "usage: mpp [weight <0-255> | entitle <size>]"),
    ("mpp frob 1", "usage: mpp [weight <0-255> | entitle <size>]"),
    ("mpp weight 256", "weight must be 0-255"),
    ("mpp weight -1", "bad <weight> `-1`: not a number"),
    (
        "mpp entitle 1000",
        "entitlement must be a multiple of 4 KiB",
    ),
    ("mpp entitle big", "bad <size> `big`: not a number"),
    ("lparcfg x", "this command takes no arguments"),
    ("vio map 71000002", VIO_USAGE),
    ("vio frob", VIO_USAGE),
    ("vio remove", VIO_USAGE),
    ("vio probe a b", VIO_USAGE),
    ("vio map 71000002 lots", "bad <size> `lots`: not a number"),
    ("vio unmap 71000002 some", "bad <id> `some`: not a number"),
    ("vio tce 71000002 all", "bad <id> `all`: not a number"),
    ("vio desired 71000002 x", "bad <size> `x`: not a number"),
    ("amsstat -v", "this command takes no arguments"),
    ("sysfs x", "this command takes no arguments"),
    ("bench", BENCH_USAGE),
    ("bench loan", BENCH_USAGE),
    ("bench frob 1", BENCH_USAGE),
    ("bench loan 0", "<n> must be at least 1"),
    ("bench hcall 0", "<n> must be at least 1"),
    ("bench store 0", "<n> must be at least 1"),
    ("bench loan many", "bad <n> `many`: not a number"),
    ("bench store x", "bad <n> `x`: not a number"),
];

const VIO_USAGE: &str = "usage: vio [map <unit> <size> | unmap <unit> <id>|all | tce <unit> <id> | desired <unit> <size> | remove <unit> | probe <unit>]";
const BENCH_USAGE: &str = "usage: bench loan <n> | bench hcall <n> | bench store <n>";

/// Commands whose parser takes any words (nothing to refuse).
const ANY_WORDS: &[&str] = &["echo"];

const HV_USAGE_ERROR: &str =
    "usage: hv [target <size> | auto | host | pool <size> | lpar add <name> \
mem=<size> [weight=<n>] [demand=<size>] [entitled=<size>] | lpar set <name> key=value... | \
lpar del <name> | fail <hcall> <count> <rc> | step [<n>] | step_us <n>]";

fn first_word(line: &str) -> &str {
    line.split_ascii_whitespace().next().unwrap_or("")
}

#[test]
fn good_lines_parse_into_typed_commands() {
    for (line, want) in good() {
        match parse_line(line) {
            Some(Ok(got)) => assert_eq!(got, want, "{line}"),
            other => panic!("`{line}`: {other:?}"),
        }
    }
}

#[test]
fn bad_lines_get_the_contract_errors() {
    for &(line, want) in BAD {
        match parse_line(line) {
            Some(Err(e)) => assert_eq!(e.to_string(), want, "{line}"),
            other => panic!("`{line}` was not refused: {other:?}"),
        }
    }
}

#[test]
fn blank_lines_are_not_commands() {
    assert_eq!(parse_line(""), None);
    assert_eq!(parse_line(" \t "), None);
    assert_eq!(parse(&[]), Err(ParseError::Empty));
    assert_eq!(ParseError::Empty.to_string(), "no command");
}

#[test]
fn every_command_has_good_and_bad_lines() {
    let good = good();
    for spec in COMMANDS {
        assert!(
            good.iter().any(|(l, _)| first_word(l) == spec.name),
            "no good line for `{}`",
            spec.name
        );
        if !ANY_WORDS.contains(&spec.name) {
            assert!(
                BAD.iter().any(|(l, _)| first_word(l) == spec.name),
                "no bad line for `{}`",
                spec.name
            );
        }
    }
}

#[test]
fn help_is_the_table() {
    let lines: Vec<String> = help_lines().collect();
    assert_eq!(lines.len(), COMMANDS.len());
    assert_eq!(lines[0], "help: list commands");
    assert!(lines.contains(&"sleep <ms>: let time pass while background work runs".to_string()));
    for (spec, line) in COMMANDS.iter().zip(&lines) {
        assert!(
            line.starts_with(spec.usage) && line[spec.usage.len()..].starts_with(": "),
            "{line}"
        );
        assert!(
            spec.usage == spec.name || spec.usage.starts_with(&alloc::format!("{} ", spec.name)),
            "usage of `{}` does not start with its name: {}",
            spec.name,
            spec.usage
        );
        assert!(!spec.about.is_empty() && !spec.about.contains('\n'));
    }
}

#[test]
fn names_are_unique_and_found() {
    for (i, spec) in COMMANDS.iter().enumerate() {
        assert!(
            COMMANDS[..i].iter().all(|s| s.name != spec.name),
            "`{}` twice",
            spec.name
        );
        assert!(core::ptr::eq(lookup(spec.name).unwrap(), spec));
    }
    assert!(lookup("frobnicate").is_none());
}

#[test]
fn usage_errors_quote_the_commands_row() {
    // A shape error always quotes the usage string of the command's own row.
    let mut seen = 0;
    for &(line, want) in BAD {
        let words = words(line);
        if let Err(ParseError::Args {
            usage,
            error: ArgError::Usage,
        }) = parse(&words)
        {
            assert_eq!(usage, lookup(words[0]).unwrap().usage);
            assert_eq!(want, alloc::format!("usage: {usage}"));
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} usage errors checked");
}

proptest::proptest! {
    #[test]
    fn any_line_parses_or_is_refused_without_panicking(line in ".{0,64}") {
        let _ = parse_line(&line).map(|r| r.map_err(|e| e.to_string()));
    }

    #[test]
    fn known_commands_with_any_words_never_panic(
        i in 0..64usize,
        args in proptest::collection::vec("[a-z0-9@x-]{0,8}|0x[0-9a-f]{1,20}|[0-9]{1,22}[KMG]?", 0..5),
    ) {
        let spec = &COMMANDS[i % COMMANDS.len()];
        let mut words = vec![spec.name];
        words.extend(args.iter().map(String::as_str));
        if let Err(e) = parse(&words) {
            proptest::prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn time_parses_what_it_times(args in proptest::collection::vec("[a-z0-9]{1,6}", 1..4)) {
        let inner: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut words = vec!["time"];
        words.extend(&inner);
        match (parse(&words), parse(&inner)) {
            (Ok(Command::Time(t)), Ok(c)) => proptest::prop_assert_eq!(*t, c),
            (Err(e), Err(f)) => proptest::prop_assert_eq!(e.to_string(), f.to_string()),
            (a, b) => proptest::prop_assert!(false, "time: {:?}, alone: {:?}", a, b),
        }
    }

    #[test]
    fn echo_takes_any_words(args in proptest::collection::vec("[ -~]{1,8}", 0..6)) {
        let args: Vec<String> = args.iter().flat_map(|a| a.split_ascii_whitespace()).map(String::from).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut words = vec!["echo"];
        words.extend(&args);
        proptest::prop_assert_eq!(parse(&words), Ok(Command::Echo(args)));
    }
}
