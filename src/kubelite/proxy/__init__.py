"""Service proxy: kube-proxy's nftables mode, re-made in Python.

The :class:`Proxier` watches Services, EndpointSlices and Nodes and programs one nftables
table (``ip kubelite-proxy`` by default) so that ClusterIPs, NodePorts, externalIPs and
LoadBalancer ingress IPs are DNATed to ready endpoints, as kube-proxy does in nftables mode
(pkg/proxy/nftables/proxier.go).
"""

from kubelite.proxy.config import ProxyConfig
from kubelite.proxy.proxier import Proxier

__all__ = ["Proxier", "ProxyConfig"]
