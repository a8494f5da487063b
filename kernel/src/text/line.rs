//! The console line editor: echo, backspace/DEL, CR/LF/CRLF, the 1024-byte limit.

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
}

/// Accumulates bytes into lines.
#[derive(Debug, Default)]
pub struct LineEditor {
    buf: Vec<u8>,
    overflow: bool,
    last_was_cr: bool,
}

impl LineEditor {
    /// A new, empty editor.
    pub const fn new() -> Self {
        LineEditor {
            buf: Vec::new(),
            overflow: false,
            last_was_cr: false,
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

    /// Feeds one input byte.
    pub fn feed(&mut self, b: u8) -> LineEvent {
        let after_cr = core::mem::replace(&mut self.last_was_cr, b == b'\r');
        match b {
            b'\n' if after_cr => LineEvent::None,
            b'\r' | b'\n' => {
                let overflow = core::mem::replace(&mut self.overflow, false);
                let bytes = core::mem::take(&mut self.buf);
                if overflow {
                    LineEvent::TooLong
                } else {
                    LineEvent::Line(String::from_utf8_lossy(&bytes).into_owned())
                }
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
            .filter(|e| matches!(e, LineEvent::Line(_) | LineEvent::TooLong))
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
}
