"""Virtual residential gateways (seed 003): per-customer vRGWs on virtualization nodes.

The home gateway's brains (DHCP, DNS cache, NAT, firewall) run as one small per-customer
bundle on an operator node, reached over the customer's own access circuit (a stacked VLAN
pair in the TR-101 1:1 model). The pure modules here — profiles, tags, settings, template,
pools, migration, capacity — carry no I/O; `simdriver` and `netns_vrgw` realise vRGWs in the
simulator and in Linux network namespaces.
"""
