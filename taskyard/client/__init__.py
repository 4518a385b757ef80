"""The user's side: Client, views, results, Cluster."""

from taskyard.client.asyncresult import AsyncMapResult, AsyncResult, Metadata
from taskyard.client.client import Client
from taskyard.client.cluster import Cluster
from taskyard.client.execute_reply import ExecuteReply
from taskyard.client.view import DirectView, LoadBalancedView, interactive

__all__ = [
    "Client",
    "Cluster",
    "AsyncResult",
    "AsyncMapResult",
    "Metadata",
    "ExecuteReply",
    "DirectView",
    "LoadBalancedView",
    "interactive",
]
