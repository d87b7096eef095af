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
//! After the handshake, every request opens a bidirectional stream of its own: the requester
//! writes one [`Request`] frame (and, for an upload, the [`Response::Chunk`]-sized data frames
//! that follow it as [`Upload`]s), the other side answers with one or more [`Response`] frames
//! and finishes the stream. Long answers (a program download, a guest's output) are many
//! frames on that one stream; the last says how it ended.
//!
//! Types are encoded with postcard, which has no field names or tags: a change to any type
//! that travels must bump [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};

use crate::ClusterId;

/// The wire protocol version this build speaks. Bump it whenever a type that travels changes.
pub const PROTOCOL_VERSION: u32 = 3;

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

/// A guest's cluster-wide id, given by the coordinator at submit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GuestId(pub u64);

impl std::fmt::Display for GuestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// A node's cluster-wide id, given when it first registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// How many times a guest has been placed: every placement gets a higher epoch, and a node runs
/// an assignment only if its epoch is the guest's latest (fencing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch(pub u64);

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// The blake3 digest of a program: programs are stored and fetched by it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex, as file names and listings show it.
    pub fn hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({})", self.hex())
    }
}

/// The largest program a submit may upload.
pub const MAX_PROGRAM: u64 = 1 << 30;

/// Bytes of program or output data in one frame.
pub const CHUNK: usize = 256 * 1024;

/// What to run: everything a node needs to start the guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSpec {
    /// A name for listings (not unique).
    pub name: String,
    /// The program's digest; its bytes were uploaded before the submit.
    pub program: Digest,
    /// The program's size in bytes.
    pub program_size: u64,
    /// `argv`, `argv[0]` included.
    pub args: Vec<Vec<u8>>,
    /// `KEY=VALUE` strings.
    pub env: Vec<Vec<u8>>,
    /// Like `shoal run -L`: a directory that must exist at this path on the node.
    pub sysroot: Option<String>,
    /// Run it again elsewhere if its node is lost (else it is marked lost).
    pub restart: bool,
    /// A cap on the memory the guest maps, as `shoal run --memory`.
    pub memory: Option<u64>,
}

/// How a guest's first process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

impl ExitStatus {
    /// The status a shell reports: the exit code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c & 0xff,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exit {c}"),
            ExitStatus::Signaled(s) => write!(f, "signal {s}"),
        }
    }
}

/// Where a guest is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuestState {
    /// Waiting for a node with room.
    Pending,
    /// Given to a node, not yet reported running.
    Assigned,
    /// Running on its node.
    Running,
    /// Its first process ended.
    Exited(ExitStatus),
    /// It could not start (the message says why: a bad program, a missing sysroot).
    Failed(String),
    /// Its node was lost while it ran.
    Lost,
    /// Killed at a user's request.
    Killed,
}

impl GuestState {
    /// Whether the guest is done: nothing will run it again.
    pub fn is_final(&self) -> bool {
        !matches!(self, GuestState::Pending | GuestState::Assigned | GuestState::Running)
    }

    /// A short word for listings.
    pub fn word(&self) -> &'static str {
        match self {
            GuestState::Pending => "pending",
            GuestState::Assigned => "assigned",
            GuestState::Running => "running",
            GuestState::Exited(_) => "exited",
            GuestState::Failed(_) => "failed",
            GuestState::Lost => "lost",
            GuestState::Killed => "killed",
        }
    }
}

/// A guest as `shoal ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInfo {
    pub id: GuestId,
    pub spec: GuestSpec,
    pub state: GuestState,
    /// Its latest placement's epoch (0 before the first).
    pub epoch: Epoch,
    /// The node of its latest placement, with that node's name and address.
    pub node: Option<(NodeId, String, String)>,
    /// Milliseconds since the Unix epoch, by the leader's clock.
    pub submitted_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
}

/// A node as `shoal nodes` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub name: String,
    /// Where it serves guest output.
    pub addr: String,
    /// Worker threads (how many guests it runs at full speed at once).
    pub workers: u32,
    /// NUMA nodes on its host.
    pub numa_nodes: u32,
    /// Whether it is alive by the coordinator's last word (heartbeats within the timeout).
    pub live: bool,
    /// Guests placed on it and not yet done.
    pub guests: u32,
    /// Runnable guest threads in its last heartbeat.
    pub runnable: u32,
    /// How many times it has registered (a restart registers again).
    pub incarnation: u64,
}

/// A coordinator's view of the raft group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its raft id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// `leader`, `follower`, `candidate` or `pre-candidate`.
    pub role: String,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    /// The leader's raft id, 0 when it knows none.
    pub leader: u64,
    /// Its process id.
    pub pid: u32,
}

/// What a node tells the coordinator when it starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Where clients fetch guest output from it.
    pub addr: String,
    pub workers: u32,
    pub numa_nodes: u32,
}

/// A guest's end as a node reports it, until the coordinator acknowledges it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitReport {
    pub guest: GuestId,
    pub epoch: Epoch,
    /// How it ended: `Exited` for an exit status, `Failed` when it could not start.
    pub state: GuestState,
}

/// A node's periodic word to the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: NodeId,
    pub incarnation: u64,
    /// Runnable guest threads now.
    pub runnable: u32,
    /// Guests it is running, with their epochs.
    pub running: Vec<(GuestId, Epoch)>,
    /// Guests it accepted and is still starting (fetching the program, loading it): not yet
    /// running, but not to be assigned again.
    pub starting: Vec<(GuestId, Epoch)>,
    /// Guests that ended, not yet acknowledged.
    pub exits: Vec<ExitReport>,
}

/// A guest a node is to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub guest: GuestId,
    pub epoch: Epoch,
    pub spec: GuestSpec,
}

/// The coordinator's answer to a [`Heartbeat`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Guests to start.
    pub assign: Vec<Assignment>,
    /// Guests to stop: killed by a user, or placed again elsewhere.
    pub stop: Vec<(GuestId, Epoch)>,
    /// Exit reports now durable at the coordinator, to forget.
    pub acked: Vec<(GuestId, Epoch)>,
}

/// One request, the first frame of its stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Client or node to coordinator: whether a program is stored.
    HasProgram(Digest),
    /// Client (or leader to follower) to coordinator: a program's bytes follow as [`Upload`]
    /// frames of at most [`CHUNK`] bytes, then an empty one.
    PutProgram { digest: Digest, size: u64 },
    /// Node to coordinator: a program's bytes, answered by [`Response::Chunk`] frames and an
    /// empty one.
    GetProgram(Digest),
    /// Client to coordinator: run a guest. `request` is the client's id for this submit: a
    /// retried submit with the same id is the same guest, not a second one.
    Submit { spec: GuestSpec, request: u128 },
    /// Client to coordinator: every guest.
    Guests,
    /// Client to coordinator: one guest.
    Guest(GuestId),
    /// Client to coordinator: kill a guest.
    Kill(GuestId),
    /// Client to coordinator: every node.
    Nodes,
    /// Anyone to a coordinator: its view of the raft group.
    Status,
    /// Node to coordinator.
    Register(Registration),
    /// Node to coordinator.
    Heartbeat(Heartbeat),
    /// Coordinator to coordinator: raft messages, in order.
    Raft(Vec<crate::raft::RaftMessage>),
    /// Client to node: a guest's output from these offsets of stdout and stderr; with
    /// `follow`, until the guest ends.
    Output { guest: GuestId, offsets: [u64; 2], follow: bool },
}

/// A frame of program data that follows [`Request::PutProgram`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload(pub Vec<u8>);

/// Why a request failed, for the requester to act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Failure {
    /// This coordinator is not the leader; ask the one at `leader` (if it knows one).
    #[error("not the leader (leader: {})", .leader.as_deref().unwrap_or("unknown"))]
    NotLeader { leader: Option<String> },
    /// No such guest, node or program.
    #[error("{0} not found")]
    NotFound(String),
    /// The request is malformed or not allowed for the requester's role.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node must register again (it was declared lost, or the cluster forgot it).
    #[error("the node must register again")]
    Reregister,
    /// The request could not be completed now (leadership changed, a timeout); it may be
    /// retried.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// An answer frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Done, nothing to say.
    Done,
    /// The request failed.
    Failed(Failure),
    HasProgram(bool),
    Submitted(GuestId),
    Guests(Vec<GuestInfo>),
    Guest(Box<GuestInfo>),
    Nodes(Vec<NodeInfo>),
    Status(MemberStatus),
    Registered {
        node: NodeId,
        incarnation: u64,
    },
    Heartbeat(HeartbeatReply),
    /// Program bytes; an empty chunk ends them.
    Chunk(Vec<u8>),
    /// Guest output: `stream` 1 is stdout, 2 stderr; `offset` is where `data` starts.
    Output {
        stream: u8,
        offset: u64,
        data: Vec<u8>,
    },
    /// The guest's output is complete: it ended so (`None`: it ended without an exit status,
    /// as when it was stopped on this node).
    End(Option<GuestState>),
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
