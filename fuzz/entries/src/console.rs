//! The console: bytes through the line editor and every command parser (the
//! command table), and the boot arguments.

use kernel::shell;
use kernel::text::{bootargs, LineEditor, LineEvent, MAX_LINE};

/// The status line the console prints for a refused line: the console contract
/// wants exactly one line, `error: <reason>`, that no reader can take for a log
/// line or a second status.
fn check_status_line(status: &str) {
    assert!(status.starts_with("error: "), "{status:?}");
    assert!(
        !status.contains('\n') && !status.contains('\r'),
        "status spans lines: {status:?}"
    );
    assert!(!status.contains('\0'), "NUL in a status: {status:?}");
    assert!(status.len() > "error: ".len(), "empty reason");
}

/// Console input, byte by byte, as the vty delivers it: every line that comes
/// out of the editor holds no NUL and no line end and fits the limit; a refused
/// line gets exactly one status line; a parsed command parses again from the
/// same words (the parse is a function of the words alone).
pub fn console(data: &[u8]) {
    let mut ed = LineEditor::new();
    for &b in data {
        match ed.feed(b) {
            LineEvent::Line(line) => {
                assert!(line.len() <= MAX_LINE * 3, "line too long passed");
                assert!(
                    !line.contains(['\0', '\r', '\n']),
                    "a line carries a NUL or line end: {line:?}"
                );
                match shell::parse_line(&line) {
                    None => assert!(line.trim().is_empty() || shell::words(&line).is_empty()),
                    Some(Ok(cmd)) => {
                        let again = shell::parse(&shell::words(&line)).expect("parses twice");
                        assert_eq!(again, cmd);
                    }
                    Some(Err(e)) => check_status_line(&format!("error: {e}")),
                }
            }
            LineEvent::TooLong => check_status_line("error: line too long"),
            LineEvent::Junk => check_status_line("error: NUL byte in line (line discarded)"),
            LineEvent::Echo(s) => assert_eq!(s, b"\x08 \x08"),
            LineEvent::EchoByte(c) => assert!(c == b'\t' || (0x20..0x7f).contains(&c)),
            LineEvent::None => {}
        }
        assert!(ed.pending().len() <= MAX_LINE);
        assert!(!ed.pending().contains(&0), "a NUL kept in the line");
    }
}

/// Boot arguments: every word is either a `key=value` pair (which joins back to
/// the word) or reported as malformed, never both, never lost; then each pair is
/// offered to what it names (the balloon's parameters, the pool model's `hv.*`
/// settings), where a refused value changes nothing.
pub fn bootargs(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = bootargs::parse(&text);
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    assert_eq!(parsed.pairs.len() + parsed.malformed.len(), words.len());
    let mut pairs = parsed.pairs.iter();
    let mut malformed = parsed.malformed.iter();
    for w in &words {
        if let Some((k, v)) = w
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        {
            assert_eq!(pairs.next(), Some(&(k, v)));
        } else {
            let (tok, why) = malformed.next().expect("a malformed word reported");
            assert_eq!(tok, w);
            assert!(!why.is_empty());
        }
    }

    let mut params = cmm::Params::default();
    let mut model = crate::hv::small_model();
    for (k, v) in &parsed.pairs {
        if let Some(p) = k.strip_prefix("cmm.") {
            let before = params;
            if params.set(p, v).is_err() {
                assert_eq!(params, before, "a refused cmm.{p} changed the parameters");
            }
        } else if let Some(h) = k.strip_prefix("hv.") {
            if let Some(Ok(cmd)) = powervm_sim::HvCommand::from_boot_arg(h, v) {
                crate::hv::apply_checked(&mut model, &cmd);
            }
        }
    }
}
