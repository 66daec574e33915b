/// Which connections the clients table lists on a cluster node.
public enum ClientScope: String, Sendable, Hashable {
    /// This node's, live (the default; stand-alone there is nothing else).
    case thisNode = "here"
    /// Every node's, from the snapshots the nodes share through the cluster's database while a
    /// console asks for them (each row at most a few seconds old; see README, "All nodes").
    case allNodes = "all"
}
