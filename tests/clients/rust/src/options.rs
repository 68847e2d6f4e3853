//! `--name value` options and `--flag` switches, checked as each scenario takes them.

use std::collections::HashMap;
use std::str::FromStr;

pub struct Options {
    values: HashMap<String, String>,
    switches: Vec<String>,
}

impl Options {
    /// Reads `--name value` pairs; the names in `switches` take no value.
    pub fn parse(args: Vec<String>, switches: &[&str]) -> Result<Options, String> {
        let mut values = HashMap::new();
        let mut on = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            if let Some((name, value)) = name.split_once('=') {
                values.insert(name.to_string(), value.to_string());
            } else if switches.contains(&name) {
                on.push(name.to_string());
            } else {
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                values.insert(name.to_string(), value);
            }
        }
        Ok(Options {
            values,
            switches: on,
        })
    }

    pub fn optional(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    pub fn required(&mut self, name: &str) -> Result<String, String> {
        self.optional(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    pub fn text(&mut self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_string())
    }

    pub fn number<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.optional(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| format!("--{name} must be a number, not {text:?}")),
        }
    }

    pub fn switch(&mut self, name: &str) -> bool {
        let on = self.switches.iter().any(|s| s == name);
        self.switches.retain(|s| s != name);
        on
    }

    /// Refuses options the scenario did not take (a typo must not pass silently).
    pub fn done(&mut self) -> Result<(), String> {
        let mut left: Vec<String> = self
            .values
            .drain()
            .map(|(k, _)| k)
            .chain(self.switches.drain(..))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        left.sort();
        Err(format!(
            "unknown options for this scenario: --{}",
            left.join(", --")
        ))
    }

    /// Whether the option was given (and leaves it for the scenario to refuse or take).
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.switches.iter().any(|s| s == name)
    }
}
