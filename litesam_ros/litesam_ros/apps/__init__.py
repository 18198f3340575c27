"""Composition roots: the command-line tools, the on-device bench and the demo. They may import
any layer; nothing in the package imports them."""
