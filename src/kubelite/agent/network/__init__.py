"""The node's pod network: CNI client and config, bridge and node table, host-gw routes, pod DNS."""
