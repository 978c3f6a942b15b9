"""The protocol-agnostic agent runtime: context building and the tool loop."""
