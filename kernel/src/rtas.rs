//! The RTAS token registry: every RTAS call the kernel makes, looked up once by
//! name from `/rtas` (docs/rtas.md) into one typed structure. The glue stores it
//! at boot and every RTAS user reads its token from there; nothing else looks a
//! token up by name.

use crate::devtree::Platform;

/// The tokens of the RTAS calls the kernel makes (`None`: the tree names none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    /// `power-off`
    pub power_off: Option<u32>,
    /// `ibm,os-term`
    pub os_term: Option<u32>,
    /// `ibm,get-system-parameter`
    pub get_system_parameter: Option<u32>,
    /// `ibm,set-xive`: route an interrupt source to a server at a priority.
    pub set_xive: Option<u32>,
    /// `ibm,int-on`: enable a source.
    pub int_on: Option<u32>,
    /// `ibm,int-off`: disable a source (a storming one).
    pub int_off: Option<u32>,
    /// `ibm,read-pci-config`
    pub read_pci_config: Option<u32>,
    /// `ibm,write-pci-config`
    pub write_pci_config: Option<u32>,
    /// `query-cpu-stopped-state`
    pub query_cpu_stopped_state: Option<u32>,
    /// `start-cpu`
    pub start_cpu: Option<u32>,
}

/// The RTAS services whose arguments are all plain values (a processor or
/// interrupt server number, an interrupt source, a priority, a PCI configuration
/// address and value): RTAS touches no memory of the kernel's for them, so the
/// glue makes them without `unsafe` (docs/rtas.md). [`Tokens::value_tokens`]
/// gives their tokens in this order.
pub const VALUE_SERVICES: [&str; 7] = [
    "power-off",
    "query-cpu-stopped-state",
    "ibm,set-xive",
    "ibm,int-on",
    "ibm,int-off",
    "ibm,read-pci-config",
    "ibm,write-pci-config",
];

/// A pair of tokens a feature needs together, or the name of the one missing.
pub type Pair = Result<(u32, u32), &'static str>;

impl Tokens {
    /// Every token the kernel uses, by its `/rtas` property name.
    pub fn from_platform(p: &Platform) -> Tokens {
        Tokens {
            power_off: p.rtas_token("power-off"),
            os_term: p.rtas_token("ibm,os-term"),
            get_system_parameter: p.rtas_token("ibm,get-system-parameter"),
            set_xive: p.rtas_token("ibm,set-xive"),
            int_on: p.rtas_token("ibm,int-on"),
            int_off: p.rtas_token("ibm,int-off"),
            read_pci_config: p.rtas_token("ibm,read-pci-config"),
            write_pci_config: p.rtas_token("ibm,write-pci-config"),
            query_cpu_stopped_state: p.rtas_token("query-cpu-stopped-state"),
            start_cpu: p.rtas_token("start-cpu"),
        }
    }

    /// The tokens of [`VALUE_SERVICES`], in its order.
    pub fn value_tokens(&self) -> [Option<u32>; VALUE_SERVICES.len()] {
        [
            self.power_off,
            self.query_cpu_stopped_state,
            self.set_xive,
            self.int_on,
            self.int_off,
            self.read_pci_config,
            self.write_pci_config,
        ]
    }

    /// `ibm,set-xive` and `ibm,int-on`, which routing a source needs.
    pub fn routing(&self) -> Pair {
        both(
            (self.set_xive, "no RTAS ibm,set-xive"),
            (self.int_on, "no RTAS ibm,int-on"),
        )
    }

    /// `ibm,read-pci-config` and `ibm,write-pci-config`.
    pub fn pci_config(&self) -> Pair {
        both(
            (self.read_pci_config, "no RTAS ibm,read-pci-config"),
            (self.write_pci_config, "no RTAS ibm,write-pci-config"),
        )
    }

    /// `query-cpu-stopped-state` and `start-cpu`.
    pub fn cpu_start(&self) -> Pair {
        both(
            (
                self.query_cpu_stopped_state,
                "no RTAS query-cpu-stopped-state",
            ),
            (self.start_cpu, "no RTAS start-cpu"),
        )
    }
}

fn both(a: (Option<u32>, &'static str), b: (Option<u32>, &'static str)) -> Pair {
    Ok((a.0.ok_or(a.1)?, b.0.ok_or(b.1)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn platform(tokens: &[(&str, u32)]) -> Platform {
        Platform {
            rtas_tokens: tokens.iter().map(|&(n, t)| (String::from(n), t)).collect(),
            ..Platform::default()
        }
    }

    #[test]
    fn each_token_is_found_under_its_own_name() {
        let names = [
            "power-off",
            "ibm,os-term",
            "ibm,get-system-parameter",
            "ibm,set-xive",
            "ibm,int-on",
            "ibm,int-off",
            "ibm,read-pci-config",
            "ibm,write-pci-config",
            "query-cpu-stopped-state",
            "start-cpu",
            // Look-alikes that must not be taken.
            "read-pci-config",
            "write-pci-config",
            "ibm,get-xive",
        ];
        let pairs: alloc::vec::Vec<(&str, u32)> =
            names.iter().zip(1u32..).map(|(&n, t)| (n, t)).collect();
        let t = Tokens::from_platform(&platform(&pairs));
        assert_eq!(
            t,
            Tokens {
                power_off: Some(1),
                os_term: Some(2),
                get_system_parameter: Some(3),
                set_xive: Some(4),
                int_on: Some(5),
                int_off: Some(6),
                read_pci_config: Some(7),
                write_pci_config: Some(8),
                query_cpu_stopped_state: Some(9),
                start_cpu: Some(10),
            }
        );
        assert_eq!(t.routing(), Ok((4, 5)));
        assert_eq!(t.pci_config(), Ok((7, 8)));
        // The value services' tokens, each found under its name in the list.
        let by_name: alloc::vec::Vec<Option<u32>> = VALUE_SERVICES
            .iter()
            .map(|n| pairs.iter().find(|(p, _)| p == n).map(|&(_, t)| t))
            .collect();
        assert_eq!(t.value_tokens().to_vec(), by_name);
        assert_eq!(t.cpu_start(), Ok((9, 10)));
    }

    #[test]
    fn a_pair_names_the_token_it_misses() {
        let t = Tokens::from_platform(&platform(&[
            ("ibm,int-on", 1),
            ("read-pci-config", 2),
            ("start-cpu", 3),
        ]));
        assert_eq!(t.routing(), Err("no RTAS ibm,set-xive"));
        assert_eq!(t.pci_config(), Err("no RTAS ibm,read-pci-config"));
        assert_eq!(t.cpu_start(), Err("no RTAS query-cpu-stopped-state"));
        let t = Tokens::from_platform(&platform(&[("ibm,set-xive", 1)]));
        assert_eq!(t.routing(), Err("no RTAS ibm,int-on"));
        assert_eq!(Tokens::default().power_off, None);
    }
}
