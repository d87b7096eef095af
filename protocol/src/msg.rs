//! Message types and the handshake.
//!
//! Every connection starts with a handshake on its first bidirectional stream: the connecting
//! peer sends [`Hello`] (its protocol version, the cluster it means to join and the role it
//! speaks as) and the accepting peer answers [`Welcome`] or [`Refusal`] and, after a refusal,
//! closes the connection. A peer is welcome only if the version is one this build speaks, the
//! cluster id is its own, and the role is the one its certificate names ([`crate::identity`]):
//! TLS has already proved who the peer is, the handshake proves it is talking about the same
//! cluster in a language both sides understand.
//!
//! Types are encoded with postcard, which has no field names or tags: a change to any type
//! that travels must bump [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};

use crate::ClusterId;

/// The wire protocol version this build speaks. Bump it whenever a type that travels changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a peer is to the cluster, as its certificate names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A member of the raft group that holds the cluster's state.
    Coordinator,
    /// A worker that runs guests.
    Node,
    /// A user's CLI.
    Client,
}

impl Role {
    /// The role's name in certificates and messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Node => "node",
            Role::Client => "client",
        }
    }

    /// The role named `name`.
    pub fn from_name(name: &str) -> Option<Role> {
        [Role::Coordinator, Role::Node, Role::Client].into_iter().find(|r| r.name() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The first message on a connection, from the peer that opened it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The cluster the sender belongs to.
    pub cluster: ClusterId,
    /// The role the sender speaks as; must be its certificate's.
    pub role: Role,
}

/// The answer to a [`Hello`] that is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The accepting peer's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The accepting peer's role.
    pub role: Role,
}

/// Why a [`Hello`] was refused: sent back before the connection closes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The peer speaks a protocol version this build does not.
    #[error("protocol version {theirs} is not spoken here (this side speaks {ours})")]
    Version { ours: u32, theirs: u32 },
    /// The peer belongs to another cluster.
    #[error("the peer belongs to cluster {theirs}, not {ours}")]
    Cluster { ours: ClusterId, theirs: ClusterId },
    /// The peer claims a role its certificate does not give it.
    #[error("the peer claims to be a {claimed} but its certificate names a {certified}")]
    Role { claimed: Role, certified: Role },
    /// The peer's role may not open this kind of connection here.
    #[error("a {role} may not connect to a {to}")]
    NotAllowed { role: Role, to: Role },
}

/// The answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted.
    Welcome(Welcome),
    /// Refused; the connection closes.
    Refused(Refusal),
}

/// Checks a [`Hello`] received by a peer of role `us` in cluster `cluster` from a peer whose
/// certificate names `certified`; `allowed` says which roles may connect to `us`.
///
/// # Errors
///
/// The [`Refusal`] to send back.
pub fn check_hello(
    hello: &Hello,
    cluster: ClusterId,
    us: Role,
    certified: Role,
    allowed: &[Role],
) -> Result<Welcome, Refusal> {
    if hello.version != PROTOCOL_VERSION {
        return Err(Refusal::Version { ours: PROTOCOL_VERSION, theirs: hello.version });
    }
    if hello.cluster != cluster {
        return Err(Refusal::Cluster { ours: cluster, theirs: hello.cluster });
    }
    if hello.role != certified {
        return Err(Refusal::Role { claimed: hello.role, certified });
    }
    if !allowed.contains(&hello.role) {
        return Err(Refusal::NotAllowed { role: hello.role, to: us });
    }
    Ok(Welcome { version: PROTOCOL_VERSION, role: us })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: ClusterId = ClusterId([1; 16]);

    fn hello(role: Role) -> Hello {
        Hello { version: PROTOCOL_VERSION, cluster: CLUSTER, role }
    }

    #[test]
    fn a_matching_hello_is_welcome() {
        let w = check_hello(&hello(Role::Client), CLUSTER, Role::Coordinator, Role::Client, &[Role::Client]).unwrap();
        assert_eq!(w, Welcome { version: PROTOCOL_VERSION, role: Role::Coordinator });
    }

    #[test]
    fn versions_clusters_and_roles_that_do_not_match_are_refused() {
        let all = [Role::Coordinator, Role::Node, Role::Client];
        let mut h = hello(Role::Node);
        h.version = PROTOCOL_VERSION + 1;
        assert!(matches!(check_hello(&h, CLUSTER, Role::Coordinator, Role::Node, &all), Err(Refusal::Version { .. })));
        let mut h = hello(Role::Node);
        h.cluster = ClusterId([2; 16]);
        assert!(matches!(check_hello(&h, CLUSTER, Role::Coordinator, Role::Node, &all), Err(Refusal::Cluster { .. })));
        // A client's certificate cannot speak as a node.
        let e = check_hello(&hello(Role::Node), CLUSTER, Role::Coordinator, Role::Client, &all).unwrap_err();
        assert_eq!(e, Refusal::Role { claimed: Role::Node, certified: Role::Client });
        let e = check_hello(&hello(Role::Client), CLUSTER, Role::Node, Role::Client, &[Role::Coordinator]).unwrap_err();
        assert_eq!(e, Refusal::NotAllowed { role: Role::Client, to: Role::Node });
        assert_eq!(e.to_string(), "a client may not connect to a node");
    }

    #[test]
    fn role_names_round_trip() {
        for r in [Role::Coordinator, Role::Node, Role::Client] {
            assert_eq!(Role::from_name(r.name()), Some(r));
        }
        assert_eq!(Role::from_name("root"), None);
    }
}
