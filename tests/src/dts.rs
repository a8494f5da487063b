//! A small reader of `dtc -O dts` text, so tests can compare what the kernel
//! reports with what QEMU's own device tree says (independently of the kernel's
//! own device tree code).

use std::collections::BTreeMap;

/// One node: its full path and raw property texts.
#[derive(Clone, Debug, Default)]
pub struct DtsNode {
    /// Full path, e.g. `/vdevice/vty@71000000`.
    pub path: String,
    /// Property name → the text between `=` and `;` (empty for boolean properties).
    pub props: BTreeMap<String, String>,
}

impl DtsNode {
    /// The node name (last path component).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    /// The cells of a `<...>` property.
    pub fn cells(&self, prop: &str) -> Option<Vec<u64>> {
        let v = self.props.get(prop)?;
        let inner = v.trim().strip_prefix('<')?.strip_suffix('>')?;
        inner
            .split_whitespace()
            .map(|c| {
                let c = c.trim_start_matches("0x");
                u64::from_str_radix(c, 16).ok()
            })
            .collect()
    }

    /// A string property's value.
    pub fn string(&self, prop: &str) -> Option<String> {
        let v = self.props.get(prop)?;
        Some(v.trim().trim_matches('"').to_string())
    }
}

/// Parses dts text into its nodes (in order).
pub fn parse(dts: &str) -> Vec<DtsNode> {
    let mut nodes = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut pending = String::new();
    for raw in dts.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with("/dts-v1/") || line.starts_with("/memreserve/") {
            continue;
        }
        if pending.is_empty() && line.ends_with('{') {
            let name = line.trim_end_matches('{').trim();
            let name = name.split(':').next_back().unwrap_or(name).trim();
            if name == "/" {
                path.clear();
            } else {
                path.push(name.to_string());
            }
            nodes.push(DtsNode {
                path: format!("/{}", path.join("/")),
                props: BTreeMap::new(),
            });
            stack.push(nodes.len() - 1);
            continue;
        }
        if pending.is_empty() && line == "};" {
            stack.pop();
            path.pop();
            continue;
        }
        pending.push_str(line);
        pending.push(' ');
        if !line.ends_with(';') {
            continue;
        }
        let stmt = pending.trim().trim_end_matches(';').to_string();
        pending.clear();
        let Some(&cur) = stack.last() else { continue };
        let (name, value) = match stmt.split_once(" = ") {
            Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
            None => (stmt.trim().to_string(), String::new()),
        };
        nodes[cur].props.insert(name, value);
    }
    nodes
}

/// Total RAM from every `device_type = "memory"` node (root #address/#size-cells 2/2).
pub fn ram_bytes(nodes: &[DtsNode]) -> u64 {
    nodes
        .iter()
        .filter(|n| n.string("device_type").as_deref() == Some("memory"))
        .filter_map(|n| n.cells("reg"))
        .map(|c| c.chunks(4).map(|e| (e[2] << 32) | e[3]).sum::<u64>())
        .sum()
}

/// `/rtas` tokens by name.
pub fn rtas_tokens(nodes: &[DtsNode]) -> BTreeMap<String, u64> {
    let Some(rtas) = nodes.iter().find(|n| n.path == "/rtas") else {
        return BTreeMap::new();
    };
    rtas.props
        .keys()
        .filter(|k| !k.starts_with("rtas-") && !k.starts_with('#'))
        .filter_map(|k| {
            let c = rtas.cells(k)?;
            (c.len() == 1).then(|| (k.clone(), c[0]))
        })
        .collect()
}

/// `/vdevice` children: (node name, reg).
pub fn vdevices(nodes: &[DtsNode]) -> Vec<(String, u64)> {
    nodes
        .iter()
        .filter(|n| n.path.starts_with("/vdevice/") && n.path.matches('/').count() == 2)
        .filter_map(|n| Some((n.name().to_string(), *n.cells("reg")?.first()?)))
        .collect()
}
