"""kubelite's default pod network: a CNI config list for the standard plugins.

Like the network add-ons of small distributions (k3s' flannel writes ``10-flannel.conflist``),
the agent writes ``10-kubelite.conflist`` to the CNI conf dir only when the dir holds no other
configuration, so users can swap in another CNI plugin by putting their own file there.  The
list is ``bridge`` (the node's bridge as gateway, hairpin on, no masquerade; ``host-local`` IPAM
on the node's ``spec.podCIDR``) then ``portmap`` (``hostPort``, with SNAT for hairpin and
localhost).  The file is rewritten when the podCIDR (or anything else in it) changes.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from kubelite.agent.network.cni import CNI_VERSION, config_files

Obj = dict[str, Any]
NETWORK_NAME = "kubelite"
FILE_NAME = "10-kubelite.conflist"


def gateway(pod_cidr: str) -> str:
    """The first address of the podCIDR: the bridge's address and the pods' default gateway."""
    net = ipaddress.ip_network(pod_cidr, strict=False)
    return str(net.network_address + 1)


def default_conflist(pod_cidr: str, bridge: str, ipam_dir: Path) -> Obj:
    net = ipaddress.ip_network(pod_cidr, strict=False)
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "hairpinMode": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": str(net), "gateway": gateway(pod_cidr)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def write_default(conf_dir: Path, pod_cidr: str, bridge: str, ipam_dir: Path) -> Path | None:
    """Write (or refresh) kubelite's conflist unless another configuration is present.

    Returns the file written or kept, or None when a user's configuration is in charge."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    ours = conf_dir / FILE_NAME
    if any(p != ours for p in config_files(conf_dir)):
        return None
    text = json.dumps(default_conflist(pod_cidr, bridge, ipam_dir), indent=2) + "\n"
    try:
        if ours.read_text() == text:
            return ours
    except OSError:
        pass
    tmp = conf_dir / (FILE_NAME + ".tmp")  # not a config name: loaders never see half a file
    tmp.write_text(text)
    os.replace(tmp, ours)
    return ours
