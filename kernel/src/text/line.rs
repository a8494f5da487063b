//! The console line editor: echo, backspace/DEL, CR/LF/CRLF, the 1024-byte limit,
//! and the PowerVM vty's NUL.
//!
//! The PowerVM vty may send a NUL after every carriage return (a telnet-style CR NUL
//! line end). The editor drops one NUL (and one LF) that follows the CR ending a line.
//! A NUL anywhere else is junk, never part of a command: the line it arrived in is
//! discarded when it ends and answered with [`LineEvent::Junk`].

use alloc::string::String;
use alloc::vec::Vec;

/// The longest line accepted, in bytes.
pub const MAX_LINE: usize = 1024;

/// What feeding one byte produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// Nothing to do (a byte swallowed, e.g. the LF of CR LF).
    None,
    /// Echo these bytes.
    Echo(&'static [u8]),
    /// Echo this one byte.
    EchoByte(u8),
    /// A complete line (without its terminator).
    Line(String),
    /// The line that just ended was longer than [`MAX_LINE`] and was discarded.
    TooLong,
    /// The line that just ended held a NUL byte (not the one a CR may bring) and was
    /// discarded.
    Junk,
}

/// What the bytes after a line-ending CR may still swallow: the vty's NUL and the
/// LF of CR LF, each at most once, in either order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AfterCr {
    nul: bool,
    lf: bool,
}

/// Accumulates bytes into lines.
#[derive(Debug, Default)]
pub struct LineEditor {
    buf: Vec<u8>,
    overflow: bool,
    junk: bool,
    after_cr: Option<AfterCr>,
}

impl LineEditor {
    /// A new, empty editor.
    pub const fn new() -> Self {
        LineEditor {
            buf: Vec::new(),
            overflow: false,
            junk: false,
            after_cr: None,
        }
    }

    /// The bytes of the line typed so far (for redrawing it after a log line).
    pub fn pending(&self) -> &[u8] {
        if self.overflow {
            &[]
        } else {
            &self.buf
        }
    }

    /// True when nothing of a line has arrived since the last one ended (no byte
    /// kept, no overflow, no junk pending).
    pub fn is_clear(&self) -> bool {
        self.buf.is_empty() && !self.overflow && !self.junk
    }

    /// Feeds one input byte.
    pub fn feed(&mut self, b: u8) -> LineEvent {
        let after_cr = self.after_cr.take();
        match (b, after_cr) {
            (b'\n', Some(a)) if !a.lf => {
                self.after_cr = Some(AfterCr { lf: true, ..a });
                return LineEvent::None;
            }
            (0, Some(a)) if !a.nul => {
                self.after_cr = Some(AfterCr { nul: true, ..a });
                return LineEvent::None;
            }
            _ => {}
        }
        match b {
            b'\r' | b'\n' => {
                if b == b'\r' {
                    self.after_cr = Some(AfterCr::default());
                }
                let overflow = core::mem::replace(&mut self.overflow, false);
                let junk = core::mem::replace(&mut self.junk, false);
                let bytes = core::mem::take(&mut self.buf);
                if overflow {
                    LineEvent::TooLong
                } else if junk {
                    LineEvent::Junk
                } else {
                    LineEvent::Line(String::from_utf8_lossy(&bytes).into_owned())
                }
            }
            0 => {
                self.junk = true;
                LineEvent::None
            }
            0x08 | 0x7f => {
                if self.overflow {
                    LineEvent::None
                } else if self.buf.pop().is_some() {
                    LineEvent::Echo(b"\x08 \x08")
                } else {
                    LineEvent::None
                }
            }
            _ => {
                if self.overflow {
                    return LineEvent::None;
                }
                if self.buf.len() >= MAX_LINE {
                    self.overflow = true;
                    self.buf.clear();
                    self.buf.shrink_to(MAX_LINE);
                    return LineEvent::None;
                }
                self.buf.push(b);
                if b == b'\t' || (0x20..0x7f).contains(&b) {
                    LineEvent::EchoByte(b)
                } else {
                    LineEvent::None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(ed: &mut LineEditor, s: &[u8]) -> Vec<LineEvent> {
        s.iter()
            .map(|&b| ed.feed(b))
            .filter(|e| matches!(e, LineEvent::Line(_) | LineEvent::TooLong | LineEvent::Junk))
            .collect()
    }

    #[test]
    fn cr_lf_and_crlf_end_one_line_each() {
        let mut ed = LineEditor::new();
        let ev = feed_all(&mut ed, b"a\rb\nc\r\nd\n\n");
        let lines: Vec<_> = ev
            .iter()
            .map(|e| match e {
                LineEvent::Line(l) => l.as_str(),
                _ => "?",
            })
            .collect();
        assert_eq!(lines, ["a", "b", "c", "d", ""]);
    }

    #[test]
    fn pending_is_the_half_typed_line() {
        let mut ed = LineEditor::new();
        for &b in b"ech\x7fho" {
            ed.feed(b);
        }
        assert_eq!(ed.pending(), b"echo");
        ed.feed(b'\r');
        assert_eq!(ed.pending(), b"");
    }

    #[test]
    fn backspace_and_del_edit() {
        let mut ed = LineEditor::new();
        let ev = feed_all(&mut ed, b"hex\x08lp\x7f\x7fllo\r");
        assert_eq!(ev, [LineEvent::Line("hello".into())]);
        assert_eq!(ed.feed(0x7f), LineEvent::None);
    }

    #[test]
    fn over_long_line_is_reported_once_and_discarded() {
        let mut ed = LineEditor::new();
        let mut input = alloc::vec![b'x'; MAX_LINE + 1];
        input.push(b'\n');
        input.extend_from_slice(b"ok\n");
        let ev = feed_all(&mut ed, &input);
        assert_eq!(ev, [LineEvent::TooLong, LineEvent::Line("ok".into())]);
    }

    #[test]
    fn exactly_max_line_is_accepted() {
        let mut ed = LineEditor::new();
        let mut input = alloc::vec![b'y'; MAX_LINE];
        input.push(b'\r');
        let ev = feed_all(&mut ed, &input);
        assert!(matches!(&ev[..], [LineEvent::Line(l)] if l.len() == MAX_LINE));
    }

    fn lines(ev: &[LineEvent]) -> Vec<&str> {
        ev.iter()
            .map(|e| match e {
                LineEvent::Line(l) => l.as_str(),
                LineEvent::TooLong => "<too long>",
                LineEvent::Junk => "<junk>",
                _ => "?",
            })
            .collect()
    }

    #[test]
    fn the_powervm_nul_after_cr_is_dropped() {
        let mut ed = LineEditor::new();
        let ev = feed_all(&mut ed, b"help\r\0version\r\0\nmeminfo\r\n\0echo a\r\0");
        assert_eq!(lines(&ev), ["help", "version", "meminfo", "echo a"]);
        assert!(ed.is_clear());
    }

    #[test]
    fn a_nul_anywhere_else_makes_the_line_junk() {
        for input in [
            &b"\0version\r"[..],
            b"ver\0sion\r",
            b"version\0\r",
            b"version\n\0\r",
            b"version\r\0\0\r",
        ] {
            let mut ed = LineEditor::new();
            let ev = feed_all(&mut ed, input);
            let l = lines(&ev);
            assert_eq!(l.last(), Some(&"<junk>"), "{input:?}: {l:?}");
            assert!(!l.iter().any(|l| l.contains('\0')), "{input:?}: {l:?}");
            assert!(ed.is_clear());
        }
        // The line after the junk one is whole again, and a NUL is never echoed.
        let mut ed = LineEditor::new();
        assert_eq!(ed.feed(0), LineEvent::None);
        assert!(!ed.is_clear());
        let ev = feed_all(&mut ed, b"x\rversion\r");
        assert_eq!(lines(&ev), ["<junk>", "version"]);
    }

    #[test]
    fn an_over_long_line_with_a_nul_is_too_long() {
        let mut ed = LineEditor::new();
        let mut input = alloc::vec![b'x'; MAX_LINE + 1];
        input.extend_from_slice(b"\0\r");
        assert_eq!(lines(&feed_all(&mut ed, &input)), ["<too long>"]);
    }
}
