"""The real Linux testbed: hosts, links and functions in network namespaces (docs/testbed.md).

Low-level modules (nsutil, cgroups, nft, sender) are shared with the agents; the rest builds
beds (topology, plan, builder), runs the controller and agents on them (controller, agents,
runner) and drives and measures traffic (traffic, dhcp, report).
"""
