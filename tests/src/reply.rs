//! A command's reply: its lines (log lines removed) and its status line.

use std::collections::BTreeMap;

/// What the kernel answered to one command.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The command line that was sent.
    pub command: String,
    /// Reply lines, without `[` log lines, prompts and the status line.
    pub lines: Vec<String>,
    /// `Ok(())` for `ok`, `Err(reason)` for `error: reason`.
    pub status: Result<(), String>,
}

impl Reply {
    /// All reply lines joined with newlines.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// `name: value` rows (as tests parse them: `^\s*([A-Za-z_]+):\s+(-?\d+)`).
    pub fn rows(&self) -> BTreeMap<String, i64> {
        parse_rows(&self.lines)
    }

    /// The numeric row `name`; panics with the reply if it is missing.
    pub fn get(&self, name: &str) -> i64 {
        match self.rows().get(name) {
            Some(v) => *v,
            None => panic!(
                "`{}` printed no row `{name}`:\n{}",
                self.command,
                self.text()
            ),
        }
    }

    /// The text after `name: ` on the first line that has it (any value, not only numbers).
    pub fn field(&self, name: &str) -> Option<String> {
        self.lines.iter().find_map(|l| {
            let (k, v) = l.trim_start().split_once(':')?;
            (k == name).then(|| v.trim().to_string())
        })
    }
}

/// Parses `name: number` rows out of lines.
pub fn parse_rows(lines: &[String]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for l in lines {
        let t = l.trim_start();
        let Some((k, v)) = t.split_once(':') else {
            continue;
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            continue;
        }
        let v = v.trim_start();
        if v.len() == t.len() - k.len() - 1 && !v.is_empty() {
            // no whitespace after the colon: not a row
            continue;
        }
        let num: String = v
            .chars()
            .enumerate()
            .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && c == '-'))
            .map(|(_, c)| c)
            .collect();
        if let Ok(n) = num.parse::<i64>() {
            out.entry(k.to_string()).or_insert(n);
        }
    }
    out
}
