//! The coordinator's configuration file (`shoal coordinator --config FILE`), TOML:
//!
//! ```toml
//! id = 1                                  # this member's raft id, one of members' ids
//! name = "c1"                             # credentials are NAME.pem and NAME.key
//! listen = "127.0.0.1:7101"               # QUIC: clients, nodes and the other members
//! data_dir = "/var/lib/shoal/c1"          # raft log, snapshots, uploaded programs
//! credentials = "/etc/shoal/credentials"  # NAME.pem, NAME.key and ca.pem
//! metrics = "127.0.0.1:9101"              # optional: Prometheus metrics over HTTP
//! node_timeout_ms = 10000                 # optional: a node silent this long is lost
//!
//! [[members]]                             # every member, this one included: 1, 3 or 5
//! id = 1
//! addr = "127.0.0.1:7101"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A coordinator's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub id: u64,
    pub name: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub credentials: PathBuf,
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    #[serde(default = "default_node_timeout_ms")]
    pub node_timeout_ms: u64,
    pub members: Vec<Member>,
}

/// A member of the raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: u64,
    pub addr: SocketAddr,
}

/// How long a node may go without a heartbeat before it is lost. Nodes stop their guests after
/// a shorter silence ([`NODE_LEASE_MS`]), so a guest placed again after its node is lost is not
/// still running there.
pub const fn default_node_timeout_ms() -> u64 {
    10_000
}

/// How long a node keeps running guests without a heartbeat answered.
pub const NODE_LEASE_MS: u64 = 7_000;

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    ///
    /// The file is unreadable, not TOML of this shape, or inconsistent.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let config: Config =
            toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?;
        config.check()?;
        Ok(config)
    }

    /// Checks what the types cannot say.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the problem.
    pub fn check(&self) -> Result<(), ConfigError> {
        let n = self.members.len();
        if ![1, 3, 5].contains(&n) {
            return Err(ConfigError::Invalid(format!("a cluster has 1, 3 or 5 members, not {n}")));
        }
        let mut ids: Vec<u64> = self.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != n || ids.contains(&0) {
            return Err(ConfigError::Invalid("member ids must be distinct and not 0".into()));
        }
        if !ids.contains(&self.id) {
            return Err(ConfigError::Invalid(format!("id {} is not one of the members", self.id)));
        }
        if self.node_timeout_ms <= NODE_LEASE_MS {
            return Err(ConfigError::Invalid(format!(
                "node_timeout_ms must be more than a node's lease ({NODE_LEASE_MS} ms)"
            )));
        }
        Ok(())
    }

    /// The address of member `id`.
    pub fn member_addr(&self, id: u64) -> Option<SocketAddr> {
        self.members.iter().find(|m| m.id == id).map(|m| m.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = 2
name = "c2"
listen = "127.0.0.1:7102"
data_dir = "/tmp/c2"
credentials = "/tmp/creds"
[[members]]
id = 1
addr = "127.0.0.1:7101"
[[members]]
id = 2
addr = "127.0.0.1:7102"
[[members]]
id = 3
addr = "127.0.0.1:7103"
"#;

    #[test]
    fn a_three_member_config_parses() {
        let c: Config = toml::from_str(GOOD).unwrap();
        c.check().unwrap();
        assert_eq!(c.member_addr(3), Some("127.0.0.1:7103".parse().unwrap()));
        assert_eq!(c.node_timeout_ms, 10_000);
        assert_eq!(c.metrics, None);
    }

    #[test]
    fn the_deployment_example_is_valid() {
        let c: Config = toml::from_str(include_str!("../../deploy/coordinator.toml")).unwrap();
        c.check().unwrap();
        assert_eq!(c.members.len(), 3);
    }

    #[test]
    fn bad_configs_say_why() {
        let two = GOOD.rsplit_once("[[members]]").unwrap().0;
        let c: Config = toml::from_str(two).unwrap();
        assert!(c.check().unwrap_err().to_string().contains("1, 3 or 5"));
        let c: Config = toml::from_str(&GOOD.replace("id = 2\nname", "id = 9\nname")).unwrap();
        assert!(c.check().unwrap_err().to_string().contains("not one of the members"));
        assert!(toml::from_str::<Config>(&format!("colour = 1\n{GOOD}")).is_err());
    }
}
