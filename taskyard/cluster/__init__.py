"""Starting clusters of local processes (under ipcluster and ty.Cluster)."""

from taskyard.cluster.launcher import HubQuery, LocalCluster

__all__ = ["HubQuery", "LocalCluster"]
