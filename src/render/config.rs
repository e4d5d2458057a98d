//! Reading the StarRocks config files (`fe.conf`, `be.conf`, `cn.conf`) for the ports the
//! rendered objects must use.
//!
//! The files are Java-properties-like `key = value` lines; `#` and `!` start comments.
//! Upstream reads them with viper's `properties` format and falls back to the default port
//! when a value is missing or not an integer; so does this module.

use std::collections::BTreeMap;

/// Default ports of the StarRocks processes (StarRocks docs, "FE/BE configuration";
/// upstream `DefMap`). FE: `http_port` 8030, `rpc_port` 9020, `query_port` 9030,
/// `edit_log_port` 9010. BE/CN: `be_port`/`thrift_port` 9060, `webserver_port` 8040,
/// `heartbeat_service_port` 9050, `brpc_port` 8060.
pub fn default_port(key: &str) -> Option<i32> {
    Some(match key {
        "http_port" => 8030,
        "rpc_port" => 9020,
        "query_port" => 9030,
        "edit_log_port" => 9010,
        "be_port" | "thrift_port" => 9060,
        "webserver_port" => 8040,
        "heartbeat_service_port" => 9050,
        "brpc_port" => 8060,
        _ => return None,
    })
}

/// Parsed `key = value` pairs of one config file. Later lines win, as in properties files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigFile {
    entries: BTreeMap<String, String>,
}

impl ConfigFile {
    /// Parses the text of a config file. Never fails: lines that are not `key = value` (or
    /// `key: value`) are ignored, as the StarRocks processes ignore them.
    pub fn parse(text: &str) -> Self {
        let mut entries = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(split) = line.find(['=', ':']) else {
                continue;
            };
            let key = line[..split].trim();
            let value = line[split + 1..].trim();
            if !key.is_empty() {
                entries.insert(key.to_ascii_lowercase(), value.to_string());
            }
        }
        Self { entries }
    }

    /// The raw value of `key` (keys compare case-insensitively, as viper lower-cases them).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The port configured under `key`, or its default from [`default_port`] when the key is
    /// absent or not a port number (1-65535). `0` for unknown keys without a value.
    pub fn port(&self, key: &str) -> i32 {
        self.get(key)
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|p| (1..=65535).contains(p))
            .or_else(|| default_port(key))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_and_defaulted() {
        let conf = ConfigFile::parse(
            "# comment\nhttp_port = 8031\nQUERY_PORT=9031\nrpc_port = nope\nsys_log_level = INFO\nbrpc_port: 8061\n",
        );
        assert_eq!(conf.port("http_port"), 8031);
        assert_eq!(conf.port("query_port"), 9031);
        assert_eq!(conf.port("rpc_port"), 9020, "unparsable value falls back");
        assert_eq!(conf.port("edit_log_port"), 9010);
        assert_eq!(conf.port("brpc_port"), 8061);
        assert_eq!(conf.get("sys_log_level"), Some("INFO"));
    }

    #[test]
    fn later_lines_win_and_out_of_range_is_ignored() {
        let conf = ConfigFile::parse("webserver_port = 1\nwebserver_port = 70000\n");
        assert_eq!(conf.port("webserver_port"), 8040);
        let conf = ConfigFile::parse("webserver_port = 70000\nwebserver_port = 8041\n");
        assert_eq!(conf.port("webserver_port"), 8041);
    }
}
