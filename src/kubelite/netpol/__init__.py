"""NetworkPolicy enforcement on a node, in nftables (table ``ip kubelite-policy``).

``PolicyEnforcer(client, PolicyConfig(...))``: ``await start()`` syncs the informers and
applies the first ruleset; ``await stop()`` deletes the table.  See :mod:`.compiler` for
the semantics and :mod:`.render` for the table layout.
"""

from kubelite.netpol.enforcer import PolicyConfig, PolicyEnforcer

__all__ = ["PolicyConfig", "PolicyEnforcer"]
