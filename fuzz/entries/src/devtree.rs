//! The device tree: the FDT reader on an arbitrary blob, and the Open Firmware
//! flattener on a firmware whose every answer comes from the input.

use core::ffi::CStr;

use kernel::devtree::fdt::Node;
use kernel::devtree::flatten::{self, CiError, ClientInterface, Limits, Options, Phandle};
use kernel::devtree::writer::{FdtWriter, WriteError};
use kernel::devtree::{gather, report, Fdt};

use crate::input::Bytes;

/// One step of a depth-first walk of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event<'a> {
    Begin(&'a str),
    Prop(&'a str, &'a [u8]),
    End,
}

/// The tree as events, properties before children, as the reader shows it.
fn walk<'a>(fdt: &Fdt<'a>) -> Vec<Event<'a>> {
    fn node<'a>(n: Node<'a>, out: &mut Vec<Event<'a>>) {
        out.push(Event::Begin(n.name));
        out.extend(n.properties().map(|p| Event::Prop(p.name, p.value)));
        for c in n.children() {
            node(c, out);
        }
        out.push(Event::End);
    }
    let mut out = Vec::new();
    node(fdt.root(), &mut out);
    out
}

/// Writes the events (and the header facts) as a new blob.
fn rewrite(fdt: &Fdt<'_>, events: &[Event<'_>]) -> Result<Vec<u8>, WriteError> {
    let mut w = FdtWriter::new(1 << 22);
    w.set_boot_cpu(fdt.boot_cpu());
    for (a, s) in fdt.reserved_memory() {
        w.add_reservation(a, s)?;
    }
    for e in events {
        match e {
            Event::Begin(name) => w.begin_node(name.as_bytes())?,
            Event::Prop(name, value) => w.property(name.as_bytes(), value)?,
            Event::End => w.end_node()?,
        }
    }
    w.finish()
}

/// The FDT reader: a blob is refused or read whole; everything the kernel takes
/// from it (platform facts, the `devtree` report and dump) is computed; and the
/// tree read, written again with the kernel's writer and read back, is the same
/// tree (nodes, properties, values, reservations, boot CPU).
pub fn fdt(data: &[u8]) {
    let Ok(fdt) = Fdt::new(data) else {
        return;
    };
    let platform = gather(&fdt);
    let mut text = String::new();
    report::write_facts(&mut text, &platform, fdt.total_size()).expect("facts");
    let mut dump = String::new();
    report::write_dump(&mut dump, &data[..fdt.total_size()]).expect("dump");
    for n in fdt.all_nodes() {
        let _ = n.unit_address();
        for p in n.properties() {
            let _ = (p.as_u32(), p.as_str());
            let _ = p.cells().map(Iterator::count);
            let _ = p.as_str_list().map(Iterator::count);
        }
    }
    let _ = fdt.find("/vdevice/vty");

    let events = walk(&fdt);
    let blob = match rewrite(&fdt, &events) {
        Ok(b) => b,
        Err(WriteError::BadName) => {
            // The reader allows an empty property name; the writer does not.
            assert!(
                events
                    .iter()
                    .any(|e| matches!(e, Event::Prop(n, _) if n.is_empty())),
                "writer refused a name the reader accepted"
            );
            return;
        }
        Err(e) => panic!("writing back a tree that was read: {e}"),
    };
    let again = Fdt::new(&blob).expect("the writer's blob reads back");
    assert_eq!(walk(&again), events, "tree changed in the round trip");
    assert!(again.reserved_memory().eq(fdt.reserved_memory()));
    assert_eq!(again.boot_cpu(), fdt.boot_cpu());
}

/// A firmware whose answers are the fuzz input: each call takes the next bytes
/// (a status byte: mostly success, sometimes an error; then its answer).
struct Firmware<'a> {
    input: Bytes<'a>,
}

impl Firmware<'_> {
    fn status(&mut self, service: &'static str) -> Result<(), CiError> {
        match self.input.u8() {
            0xff => Err(CiError::Failed { service }),
            0xfe => Err(CiError::Call {
                service,
                status: -1,
            }),
            _ => Ok(()),
        }
    }

    /// A phandle: small numbers mostly (0 ends a list), so trees form.
    fn phandle(&mut self, service: &'static str) -> Result<Phandle, CiError> {
        self.status(service)?;
        Ok(match self.input.u8() {
            0xff => self.input.u32(),
            b => u32::from(b % 16),
        })
    }

    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let s = self.input.slice(255);
        let n = s.len().min(buf.len());
        buf[..n].copy_from_slice(&s[..n]);
        s.len()
    }
}

impl ClientInterface for Firmware<'_> {
    fn peer(&mut self, _node: Phandle) -> Result<Phandle, CiError> {
        self.phandle("peer")
    }
    fn child(&mut self, _node: Phandle) -> Result<Phandle, CiError> {
        self.phandle("child")
    }
    fn nextprop(
        &mut self,
        _node: Phandle,
        _previous: &CStr,
        buf: &mut [u8; flatten::PROP_NAME_BUF],
    ) -> Result<bool, CiError> {
        self.status("nextprop")?;
        if self.input.u8().is_multiple_of(4) {
            return Ok(false);
        }
        self.fill(buf);
        Ok(true)
    }
    fn getproplen(&mut self, _node: Phandle, _name: &CStr) -> Result<Option<usize>, CiError> {
        self.status("getproplen")?;
        Ok(match self.input.u8() {
            0 => None,
            0xff => Some(usize::try_from(self.input.u32()).unwrap_or(usize::MAX)),
            n => Some(usize::from(n)),
        })
    }
    fn getprop(
        &mut self,
        _node: Phandle,
        _name: &CStr,
        buf: &mut [u8],
    ) -> Result<Option<usize>, CiError> {
        self.status("getprop")?;
        if self.input.u8() == 0 {
            return Ok(None);
        }
        Ok(Some(self.fill(buf)))
    }
    fn package_to_path(&mut self, _node: Phandle, buf: &mut [u8]) -> Result<usize, CiError> {
        self.status("package-to-path")?;
        Ok(self.fill(buf))
    }
}

/// The flattener against a firmware that answers anything: it ends (the input
/// runs out into "no more"), and a blob it returns reads back with the kernel's
/// reader, with as many nodes as it says it wrote.
pub fn flatten(data: &[u8]) {
    let mut fw = Firmware {
        input: Bytes::new(data),
    };
    let options = Options {
        limits: Limits {
            max_blob: 64 << 10,
            max_property: 4 << 10,
            max_depth: 16,
            max_path: 256,
        },
        reserved: &[(0x1000, 0x2000)],
        boot_cpu: 0,
        add_phandles: data.first().is_some_and(|b| b & 1 == 1),
    };
    let Ok((blob, stats)) = flatten::flatten(&mut fw, &options) else {
        return;
    };
    assert!(blob.len() <= options.limits.max_blob);
    let fdt = Fdt::new(&blob).expect("the flattened blob reads back");
    assert_eq!(fdt.all_nodes().count(), stats.nodes);
    let props: usize = fdt.all_nodes().map(|n| n.properties().count()).sum();
    assert_eq!(props, stats.properties);
}
