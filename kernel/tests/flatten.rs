//! Host tests of the FDT writer and of the Open Firmware flattener, against an
//! in-memory fake client interface built from QEMU's real tree (the fixture,
//! compiled with `dtc`): the blob the flattener produces, read back, equals the
//! input node for node and property for property; firmware that fails, lies,
//! loops or overflows a limit gives an error, never a panic.

use std::collections::HashMap;
use std::ffi::CStr;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use kernel::devtree::flatten::{
    self, CiError, ClientInterface, FlattenError, Limits, Options, Phandle, PROP_NAME_BUF,
};
use kernel::devtree::writer::{FdtWriter, WriteError};
use kernel::devtree::Fdt;

fn dtc(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("dtc")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dtc is installed (make setup)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dtc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn fixture_dtb() -> Vec<u8> {
    let dts = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/qemu-7.2-pseries-nodefaults.dts");
    assert!(dts.exists(), "fixture missing: {}", dts.display());
    dtc(
        &["-q", "-I", "dts", "-O", "dtb", "-"],
        &std::fs::read(&dts).unwrap(),
    )
}

fn dts_of(blob: &[u8]) -> String {
    String::from_utf8(dtc(&["-q", "-I", "dtb", "-O", "dts", "-"], blob)).unwrap()
}

/// One node of a tree: its path and properties in order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Flat {
    path: String,
    props: Vec<(String, Vec<u8>)>,
}

/// Every node of a blob, depth first, with full paths.
fn nodes_of(fdt: &Fdt<'_>) -> Vec<Flat> {
    fn walk(n: kernel::devtree::fdt::Node<'_>, path: String, out: &mut Vec<Flat>) {
        out.push(Flat {
            path: path.clone(),
            props: n
                .properties()
                .map(|p| (p.name.to_string(), p.value.to_vec()))
                .collect(),
        });
        for c in n.children() {
            let p = if path == "/" {
                format!("/{}", c.name)
            } else {
                format!("{path}/{}", c.name)
            };
            walk(c, p, out);
        }
    }
    let mut out = Vec::new();
    walk(fdt.root(), "/".to_string(), &mut out);
    out
}

// ---------------------------------------------------------------------------
// The fake firmware.

struct FakeNode {
    path: String,
    parent: Option<usize>,
    children: Vec<usize>,
    props: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A misbehaviour to inject.
#[derive(Clone, Debug, Default)]
struct Faults {
    /// The `n`th call (0-based) of `service` fails with `error`.
    fail: Option<(&'static str, usize, CiError)>,
    /// `getprop` of this property reports one byte more than `getproplen`.
    grow: Option<Vec<u8>>,
    /// `getproplen` denies this property although `nextprop` lists it.
    deny: Option<Vec<u8>>,
    /// `nextprop` fills the whole buffer without a NUL for this property.
    unterminated: Option<Vec<u8>>,
    /// `nextprop` never advances past this property.
    stuck: Option<Vec<u8>>,
    /// `peer` of the last child of the root returns the first child again.
    peer_loop: bool,
    /// `child` of this path returns the node itself.
    child_loop: Option<String>,
    /// `package-to-path` of this path returns this text instead.
    bad_path: Option<(String, Vec<u8>)>,
    /// `package-to-path` counts and writes a terminating NUL.
    path_with_nul: bool,
    /// `peer(0)` returns 0.
    no_root: bool,
}

struct Fake {
    nodes: Vec<FakeNode>,
    calls: HashMap<&'static str, usize>,
    faults: Faults,
}

const PHANDLE_BASE: u32 = 0x1000_0000;

impl Fake {
    fn from_blob(blob: &[u8]) -> Fake {
        let fdt = Fdt::new(blob).expect("input blob parses");
        let mut nodes = Vec::new();
        fn add(
            n: kernel::devtree::fdt::Node<'_>,
            path: String,
            parent: Option<usize>,
            nodes: &mut Vec<FakeNode>,
        ) {
            let idx = nodes.len();
            nodes.push(FakeNode {
                path: path.clone(),
                parent,
                children: Vec::new(),
                props: n
                    .properties()
                    .map(|p| (p.name.as_bytes().to_vec(), p.value.to_vec()))
                    .collect(),
            });
            if let Some(p) = parent {
                nodes[p].children.push(idx);
            }
            for c in n.children() {
                let cp = if path == "/" {
                    format!("/{}", c.name)
                } else {
                    format!("{path}/{}", c.name)
                };
                add(c, cp, Some(idx), nodes);
            }
        }
        add(fdt.root(), "/".into(), None, &mut nodes);
        Fake {
            nodes,
            calls: HashMap::new(),
            faults: Faults::default(),
        }
    }

    fn with(mut self, f: Faults) -> Fake {
        self.faults = f;
        self
    }

    fn index(&self, service: &'static str, ph: Phandle) -> Result<usize, CiError> {
        let i = ph
            .checked_sub(PHANDLE_BASE)
            .ok_or(CiError::Failed { service })? as usize;
        if i < self.nodes.len() {
            Ok(i)
        } else {
            Err(CiError::Failed { service })
        }
    }

    fn phandle(i: usize) -> Phandle {
        PHANDLE_BASE + u32::try_from(i).unwrap()
    }

    /// Counts the call and applies an injected failure.
    fn enter(&mut self, service: &'static str) -> Result<(), CiError> {
        let n = self.calls.entry(service).or_insert(0);
        let this = *n;
        *n += 1;
        match self.faults.fail {
            Some((s, at, e)) if s == service && at == this => Err(e),
            _ => Ok(()),
        }
    }

    fn prop(&self, i: usize, name: &CStr) -> Option<&[u8]> {
        self.nodes[i]
            .props
            .iter()
            .find(|(n, _)| n == name.to_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

impl ClientInterface for Fake {
    fn peer(&mut self, node: Phandle) -> Result<Phandle, CiError> {
        self.enter("peer")?;
        if node == 0 {
            return Ok(if self.faults.no_root {
                0
            } else {
                Self::phandle(0)
            });
        }
        let i = self.index("peer", node)?;
        let Some(parent) = self.nodes[i].parent else {
            return Ok(0);
        };
        let sibs = &self.nodes[parent].children;
        let pos = sibs
            .iter()
            .position(|&c| c == i)
            .ok_or(CiError::Failed { service: "peer" })?;
        match sibs.get(pos + 1) {
            Some(&n) => Ok(Self::phandle(n)),
            None if self.faults.peer_loop && parent == 0 => Ok(Self::phandle(sibs[0])),
            None => Ok(0),
        }
    }

    fn child(&mut self, node: Phandle) -> Result<Phandle, CiError> {
        self.enter("child")?;
        let i = self.index("child", node)?;
        if self.faults.child_loop.as_deref() == Some(self.nodes[i].path.as_str()) {
            return Ok(node);
        }
        Ok(self.nodes[i]
            .children
            .first()
            .map_or(0, |&c| Self::phandle(c)))
    }

    fn nextprop(
        &mut self,
        node: Phandle,
        previous: &CStr,
        buf: &mut [u8; PROP_NAME_BUF],
    ) -> Result<bool, CiError> {
        self.enter("nextprop")?;
        let i = self.index("nextprop", node)?;
        let props = &self.nodes[i].props;
        let next = if previous.to_bytes().is_empty() {
            0
        } else {
            let pos = props
                .iter()
                .position(|(n, _)| n == previous.to_bytes())
                .ok_or(CiError::Failed {
                    service: "nextprop",
                })?;
            if self.faults.stuck.as_deref() == Some(previous.to_bytes()) {
                pos
            } else {
                pos + 1
            }
        };
        let Some((name, _)) = props.get(next) else {
            return Ok(false);
        };
        buf.fill(0);
        if self.faults.unterminated.as_deref() == Some(name.as_slice()) {
            buf.fill(b'x');
            return Ok(true);
        }
        if name.len() >= PROP_NAME_BUF {
            return Err(CiError::Failed {
                service: "nextprop",
            });
        }
        buf[..name.len()].copy_from_slice(name);
        Ok(true)
    }

    fn getproplen(&mut self, node: Phandle, name: &CStr) -> Result<Option<usize>, CiError> {
        self.enter("getproplen")?;
        let i = self.index("getproplen", node)?;
        if self.faults.deny.as_deref() == Some(name.to_bytes()) {
            return Ok(None);
        }
        Ok(self.prop(i, name).map(<[u8]>::len))
    }

    fn getprop(
        &mut self,
        node: Phandle,
        name: &CStr,
        buf: &mut [u8],
    ) -> Result<Option<usize>, CiError> {
        self.enter("getprop")?;
        let i = self.index("getprop", node)?;
        let grow = self.faults.grow.as_deref() == Some(name.to_bytes());
        let Some(v) = self.prop(i, name) else {
            return Ok(None);
        };
        let n = v.len().min(buf.len());
        buf[..n].copy_from_slice(&v[..n]);
        Ok(Some(v.len() + usize::from(grow)))
    }

    fn package_to_path(&mut self, node: Phandle, buf: &mut [u8]) -> Result<usize, CiError> {
        self.enter("package-to-path")?;
        let i = self.index("package-to-path", node)?;
        let mut path = self.nodes[i].path.as_bytes().to_vec();
        if let Some((p, text)) = &self.faults.bad_path {
            if *p == self.nodes[i].path {
                path = text.clone();
            }
        }
        if self.faults.path_with_nul {
            path.push(0);
        }
        let n = path.len().min(buf.len());
        buf[..n].copy_from_slice(&path[..n]);
        Ok(path.len())
    }
}

fn flatten_fake(fake: &mut Fake, limits: Limits) -> Result<Vec<u8>, FlattenError> {
    let options = Options {
        limits,
        ..Options::default()
    };
    flatten::flatten(fake, &options).map(|(b, _)| b)
}

// ---------------------------------------------------------------------------
// Round trips.

#[test]
fn fixture_round_trips_node_for_node_and_property_for_property() {
    let input = fixture_dtb();
    let mut fake = Fake::from_blob(&input);
    let reserved = [(0x40_0000, 0x107_9000), (0x1000_0000, 0x1000)];
    let options = Options {
        reserved: &reserved,
        boot_cpu: 7,
        ..Options::default()
    };
    let (blob, stats) = flatten::flatten(&mut fake, &options).expect("flattens");

    let want_fdt = Fdt::new(&input).unwrap();
    let got_fdt = Fdt::new(&blob).expect("the produced blob validates");
    assert_eq!(got_fdt.version(), 17);
    let want = nodes_of(&want_fdt);
    let got = nodes_of(&got_fdt);
    assert_eq!(got.len(), want.len(), "node count");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "node {}", w.path);
    }
    assert_eq!(stats.nodes, want.len());
    assert_eq!(
        stats.properties,
        want.iter().map(|n| n.props.len()).sum::<usize>()
    );
    assert!(stats.calls > stats.properties * 3);
    assert_eq!(got_fdt.reserved_memory().collect::<Vec<_>>(), reserved);
    assert_eq!(got_fdt.boot_cpu(), 7);
    assert_eq!(stats.phandles_added, 0);

    // dtc decodes it to the same source as the input (no reservations this time).
    let mut fake = Fake::from_blob(&input);
    let plain = flatten_fake(&mut fake, Limits::default()).unwrap();
    assert_eq!(dts_of(&plain), dts_of(&input));
    // Platform facts agree too.
    let a = kernel::devtree::gather(&Fdt::new(&plain).unwrap());
    let b = kernel::devtree::gather(&want_fdt);
    assert_eq!(a.memory, b.memory);
    assert_eq!(a.rtas_tokens, b.rtas_tokens);
    assert_eq!(a.vdevices, b.vdevices);
    assert_eq!(a.vty_unit, b.vty_unit);
}

#[test]
fn name_properties_are_left_out() {
    // Open Firmware gives every node a `name`; the FDT carries it in the node name.
    let dts =
        "/dts-v1/;\n/ { name = \"/\"; model = \"m\"; cpus { name = \"cpus\"; x = <1>; }; };\n";
    let dtb = dtc(&["-q", "-f", "-I", "dts", "-O", "dtb", "-"], dts.as_bytes());
    let (blob, stats) = flatten::flatten(&mut Fake::from_blob(&dtb), &Options::default()).unwrap();
    let got = nodes_of(&Fdt::new(&blob).unwrap());
    assert_eq!(
        got,
        [
            Flat {
                path: "/".into(),
                props: vec![("model".into(), b"m\0".to_vec())]
            },
            Flat {
                path: "/cpus".into(),
                props: vec![("x".into(), vec![0, 0, 0, 1])]
            },
        ]
    );
    assert_eq!(stats.properties, 2);
}

#[test]
fn add_phandles_gives_every_node_its_firmware_phandle() {
    let input = fixture_dtb();
    let mut fake = Fake::from_blob(&input);
    let options = Options {
        add_phandles: true,
        ..Options::default()
    };
    let (blob, stats) = flatten::flatten(&mut fake, &options).unwrap();
    let want = nodes_of(&Fdt::new(&input).unwrap());
    let got = nodes_of(&Fdt::new(&blob).unwrap());
    assert_eq!(got.len(), want.len());
    let mut added = 0;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.path, w.path);
        if w.props.iter().any(|(n, _)| n == "phandle") {
            // A node that has one keeps it (the fixture's interrupt controller).
            assert_eq!(g.props, w.props, "{}", w.path);
        } else {
            // The fake's phandles are PHANDLE_BASE + the node's depth-first index.
            let (last, rest) = g.props.split_last().unwrap();
            assert_eq!(rest, w.props.as_slice(), "{}", w.path);
            assert_eq!(last.0, "phandle");
            assert_eq!(
                last.1,
                (PHANDLE_BASE + u32::try_from(i).unwrap()).to_be_bytes()
            );
            added += 1;
        }
    }
    assert_eq!(stats.phandles_added, added);
    assert_eq!(added, want.len() - 1);
}

#[test]
fn a_nul_counted_in_the_path_length_is_tolerated() {
    let input = fixture_dtb();
    let mut fake = Fake::from_blob(&input).with(Faults {
        path_with_nul: true,
        ..Faults::default()
    });
    let blob = flatten_fake(&mut fake, Limits::default()).unwrap();
    assert_eq!(dts_of(&blob), dts_of(&input));
}

/// Properties of a test node: (name, value).
type Props = Vec<(String, Vec<u8>)>;
/// A tree in depth-first order: (depth, name, properties), the root at depth 1.
type Tree = Vec<(usize, String, Props)>;

fn tree_dts(nodes: &[(usize, String, Props)]) -> String {
    // Builds dts text for a tree given in depth-first order as (depth, name, props).
    let mut s = String::from("/dts-v1/;\n");
    let mut open = 0usize;
    for (depth, name, props) in nodes {
        while open >= *depth {
            s.push_str("};\n");
            open -= 1;
        }
        s.push_str(&format!(
            "{} {{\n",
            if *depth == 1 { "/" } else { name.as_str() }
        ));
        open += 1;
        for (pn, pv) in props {
            if pv.is_empty() {
                s.push_str(&format!("{pn};\n"));
            } else {
                let hex: Vec<String> = pv.iter().map(|b| format!("{b:02x}")).collect();
                s.push_str(&format!("{pn} = [{}];\n", hex.join(" ")));
            }
        }
    }
    while open > 0 {
        s.push_str("};\n");
        open -= 1;
    }
    s
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn node_name() -> impl Strategy<Value = String> {
        (
            "[a-z][a-z0-9,-]{0,10}",
            proptest::option::of("[0-9a-f]{1,8}"),
        )
            .prop_map(|(n, a)| match a {
                Some(a) => format!("{n}@{a}"),
                None => n,
            })
    }

    fn props() -> impl Strategy<Value = Props> {
        proptest::collection::btree_map(
            "[a-z#][a-z0-9,#-]{0,30}",
            proptest::collection::vec(any::<u8>(), 0..40),
            0..6,
        )
        .prop_map(|m| m.into_iter().filter(|(k, _)| k != "name").collect())
    }

    /// A random tree in depth-first order: each node's depth is at most one more
    /// than the previous node's.
    fn tree() -> impl Strategy<Value = Tree> {
        proptest::collection::vec((0usize..4, node_name(), props()), 0..25).prop_map(|v| {
            let mut out = vec![(1usize, String::new(), Vec::new())];
            let mut last = 1usize;
            for (i, (step, name, props)) in v.into_iter().enumerate() {
                // Sibling names must differ: number every node.
                let name = match name.split_once('@') {
                    Some((base, unit)) => format!("{base}-{i}@{unit}"),
                    None => format!("{name}-{i}"),
                };
                let depth = (last + 1).saturating_sub(step).max(2);
                out.push((depth, name, props));
                last = depth;
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn random_trees_round_trip(t in tree()) {
            let dtb = dtc(&["-q", "-I", "dts", "-O", "dtb", "-"], tree_dts(&t).as_bytes());
            let mut fake = Fake::from_blob(&dtb);
            let blob = flatten_fake(&mut fake, Limits::default()).unwrap();
            let want = nodes_of(&Fdt::new(&dtb).unwrap());
            let got = nodes_of(&Fdt::new(&blob).unwrap());
            prop_assert_eq!(got, want);
        }
    }
}

// ---------------------------------------------------------------------------
// Firmware errors.

const SERVICES: [&str; 6] = [
    "peer",
    "child",
    "nextprop",
    "getproplen",
    "getprop",
    "package-to-path",
];

#[test]
fn every_failing_call_is_an_error_naming_the_service() {
    let input = fixture_dtb();
    let mut clean = Fake::from_blob(&input);
    flatten_fake(&mut clean, Limits::default()).unwrap();
    let counts = clean.calls.clone();
    for service in SERVICES {
        let n = counts[service];
        assert!(n > 0, "{service} never called");
        // The first, the last and a spread of calls in between.
        let picks: Vec<usize> = (0..n)
            .filter(|i| *i < 3 || *i + 3 >= n || i % 37 == 0)
            .collect();
        for at in picks {
            for error in [
                CiError::Failed { service },
                CiError::Call {
                    service,
                    status: -1,
                },
            ] {
                let mut fake = Fake::from_blob(&input).with(Faults {
                    fail: Some((service, at, error)),
                    ..Faults::default()
                });
                match flatten_fake(&mut fake, Limits::default()) {
                    Err(FlattenError::Firmware { error: e, path }) => {
                        assert_eq!(e, error);
                        let msg = FlattenError::Firmware { error: e, path }.to_string();
                        assert!(msg.contains(service), "{msg}");
                    }
                    other => panic!("{service} call {at} failing gave {other:?}"),
                }
            }
        }
    }
}

#[test]
fn an_over_long_property_is_an_error() {
    let input = fixture_dtb();
    let mut fake = Fake::from_blob(&input);
    let limits = Limits {
        max_property: 64,
        ..Limits::default()
    };
    match flatten_fake(&mut fake, limits) {
        Err(FlattenError::PropertyTooLong {
            path,
            name,
            len,
            max,
        }) => {
            assert!(len > 64 && max == 64);
            // The first long property in the fixture is the root's ibm,drc-types.
            assert_eq!((path.as_str(), name.as_str()), ("/", "ibm,drc-types"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_too_small_blob_limit_is_an_error() {
    let input = fixture_dtb();
    let full = flatten_fake(&mut Fake::from_blob(&input), Limits::default()).unwrap();
    for limit in (0..full.len()).rev().step_by(7).chain([full.len() - 1]) {
        let limits = Limits {
            max_blob: limit,
            ..Limits::default()
        };
        match flatten_fake(&mut Fake::from_blob(&input), limits) {
            Err(FlattenError::TooLarge { limit: l }) => assert_eq!(l, limit),
            other => panic!("limit {limit}: {other:?}"),
        }
    }
    let exact = Limits {
        max_blob: full.len(),
        ..Limits::default()
    };
    assert_eq!(
        flatten_fake(&mut Fake::from_blob(&input), exact).unwrap(),
        full
    );
}

#[test]
fn too_deep_and_looping_trees_are_errors() {
    // A chain of 40 nested nodes.
    let chain: Vec<_> = (1..=40).map(|d| (d, format!("n{d}"), vec![])).collect();
    let dtb = dtc(
        &["-q", "-I", "dts", "-O", "dtb", "-"],
        tree_dts(&chain).as_bytes(),
    );
    match flatten_fake(&mut Fake::from_blob(&dtb), Limits::default()) {
        Err(FlattenError::TooDeep { max: 32, path }) => assert_eq!(path.matches('/').count(), 32),
        other => panic!("{other:?}"),
    }
    let deep = Limits {
        max_depth: 40,
        ..Limits::default()
    };
    assert!(flatten_fake(&mut Fake::from_blob(&dtb), deep).is_ok());

    let input = fixture_dtb();
    // `child` returning the node itself nests forever.
    let mut fake = Fake::from_blob(&input).with(Faults {
        child_loop: Some("/vdevice".into()),
        ..Faults::default()
    });
    assert!(matches!(
        flatten_fake(&mut fake, Limits::default()),
        Err(FlattenError::TooDeep { .. })
    ));
    // `peer` cycling through the root's children never ends: the size limit does.
    let mut fake = Fake::from_blob(&input).with(Faults {
        peer_loop: true,
        ..Faults::default()
    });
    assert!(matches!(
        flatten_fake(&mut fake, Limits::default()),
        Err(FlattenError::TooLarge { .. })
    ));
}

#[test]
fn inconsistent_properties_are_errors() {
    let input = fixture_dtb();
    let cases = [
        Faults {
            grow: Some(b"stdout-path".to_vec()),
            ..Faults::default()
        },
        Faults {
            deny: Some(b"reg".to_vec()),
            ..Faults::default()
        },
    ];
    for f in cases {
        let mut fake = Fake::from_blob(&input).with(f.clone());
        match flatten_fake(&mut fake, Limits::default()) {
            Err(e @ FlattenError::PropertyChanged { .. }) => {
                assert!(e.to_string().contains("vanished"))
            }
            other => panic!("{f:?}: {other:?}"),
        }
    }
    let mut fake = Fake::from_blob(&input).with(Faults {
        unterminated: Some(b"model".to_vec()),
        ..Faults::default()
    });
    assert_eq!(
        flatten_fake(&mut fake, Limits::default()),
        Err(FlattenError::BadPropertyName { path: "/".into() })
    );
    let mut fake = Fake::from_blob(&input).with(Faults {
        stuck: Some(b"model".to_vec()),
        ..Faults::default()
    });
    assert_eq!(
        flatten_fake(&mut fake, Limits::default()),
        Err(FlattenError::RepeatedProperty {
            path: "/".into(),
            name: "model".into()
        })
    );
}

#[test]
fn bad_paths_and_a_missing_root_are_errors() {
    let input = fixture_dtb();
    for text in [
        &b""[..],
        b"chosen",
        b"/chosen/",
        b"/cho\0sen",
        b"/ch\xffosen",
    ] {
        let mut fake = Fake::from_blob(&input).with(Faults {
            bad_path: Some(("/chosen".into(), text.to_vec())),
            ..Faults::default()
        });
        match flatten_fake(&mut fake, Limits::default()) {
            Err(FlattenError::BadPath { .. }) => {}
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let long = format!("/{}", "x".repeat(600));
    let mut fake = Fake::from_blob(&input).with(Faults {
        bad_path: Some(("/chosen".into(), long.into_bytes())),
        ..Faults::default()
    });
    assert!(matches!(
        flatten_fake(&mut fake, Limits::default()),
        Err(FlattenError::PathTooLong {
            len: 601,
            max: 512,
            ..
        })
    ));
    let mut fake = Fake::from_blob(&input).with(Faults {
        no_root: true,
        ..Faults::default()
    });
    assert_eq!(
        flatten_fake(&mut fake, Limits::default()),
        Err(FlattenError::NoRoot)
    );
}

#[test]
fn every_error_has_a_message() {
    let errors = [
        FlattenError::Firmware {
            path: "/".into(),
            error: CiError::Address { service: "getprop" },
        },
        FlattenError::NoRoot,
        FlattenError::BadPath {
            phandle: 1,
            path: "x".into(),
        },
        FlattenError::PathTooLong {
            phandle: 1,
            len: 2,
            max: 1,
        },
        FlattenError::TooDeep {
            path: "/a".into(),
            max: 1,
        },
        FlattenError::BadPropertyName { path: "/".into() },
        FlattenError::RepeatedProperty {
            path: "/".into(),
            name: "a".into(),
        },
        FlattenError::PropertyTooLong {
            path: "/".into(),
            name: "a".into(),
            len: 2,
            max: 1,
        },
        FlattenError::PropertyChanged {
            path: "/".into(),
            name: "a".into(),
        },
        FlattenError::TooLarge { limit: 1 },
        FlattenError::Writer(WriteError::BadName),
    ];
    for e in errors {
        assert!(e.to_string().len() > 10, "{e:?}");
    }
}

// ---------------------------------------------------------------------------
// The writer on its own.

#[test]
fn writer_output_is_a_standard_blob_with_shared_strings() {
    let mut w = FdtWriter::new(4096);
    w.set_boot_cpu(3);
    w.add_reservation(0x1000, 0x2000).unwrap();
    w.add_reservation(0, 0).unwrap(); // ignored: it would end the map
    w.begin_node(b"").unwrap();
    w.property(b"#address-cells", &2u32.to_be_bytes()).unwrap();
    for i in 0..3u32 {
        w.begin_node(format!("dev@{i}").as_bytes()).unwrap();
        w.property(b"reg", &i.to_be_bytes()).unwrap();
        w.property(b"compatible", b"x,y\0").unwrap();
        w.property(b"empty", b"").unwrap();
        w.end_node().unwrap();
    }
    w.end_node().unwrap();
    let size = w.size().unwrap();
    let blob = w.finish().unwrap();
    assert_eq!(blob.len(), size);
    let be = |o: usize| u32::from_be_bytes(blob[o..o + 4].try_into().unwrap());
    assert_eq!(be(0), 0xd00d_feed);
    assert_eq!(be(4) as usize, blob.len());
    assert_eq!((be(20), be(24), be(28)), (17, 16, 3));
    assert_eq!(be(16), 40, "reservation map right after the header");
    let strings = &blob[be(12) as usize..][..be(32) as usize];
    assert_eq!(strings, b"#address-cells\0reg\0compatible\0empty\0");
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(
        fdt.reserved_memory().collect::<Vec<_>>(),
        [(0x1000, 0x2000)]
    );
    assert_eq!(fdt.boot_cpu(), 3);
    let text = dts_of(&blob);
    assert!(
        text.contains("/memreserve/\t0x0000000000001000 0x0000000000002000;"),
        "{text}"
    );
    assert!(text.contains("dev@2 {"), "{text}");
}

#[test]
fn writer_refuses_bad_input() {
    let mut w = FdtWriter::new(4096);
    assert_eq!(w.property(b"a", b""), Err(WriteError::Unbalanced));
    assert_eq!(w.end_node(), Err(WriteError::Unbalanced));
    assert_eq!(w.begin_node(b"a\0b"), Err(WriteError::BadName));
    w.begin_node(b"").unwrap();
    assert_eq!(w.property(b"", b""), Err(WriteError::BadName));
    assert_eq!(w.property(b"a\0", b""), Err(WriteError::BadName));
    assert_eq!(w.depth(), 1);
    w.end_node().unwrap();
    assert_eq!(w.begin_node(b"second-root"), Err(WriteError::Unbalanced));
    assert!(FdtWriter::new(4096).finish().is_err());
    let mut open = FdtWriter::new(4096);
    open.begin_node(b"").unwrap();
    assert_eq!(open.finish(), Err(WriteError::Unbalanced));
    // Header 40 + empty reservation map 16 + root 8 + END 4 = 68 bytes.
    let mut tiny = FdtWriter::new(90);
    tiny.begin_node(b"").unwrap();
    assert_eq!(tiny.size(), Some(68));
    assert_eq!(
        tiny.property(b"big", &[0; 64]),
        Err(WriteError::TooLarge { limit: 90 })
    );
    assert_eq!(tiny.add_reservation(1, 1), Ok(()));
    assert_eq!(
        tiny.add_reservation(2, 1),
        Err(WriteError::TooLarge { limit: 90 })
    );
    assert_eq!(tiny.end_node(), Ok(()));
    assert_eq!(tiny.finish().map(|b| b.len()), Ok(88));
}
