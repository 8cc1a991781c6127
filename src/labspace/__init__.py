"""labspace: self-hosted workspaces for research labs, classes and workshops."""

__version__ = "0.1.0"
