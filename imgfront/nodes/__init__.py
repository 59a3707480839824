"""Nodes: the `--node` specs, podman's connection files and the farms built from them."""
