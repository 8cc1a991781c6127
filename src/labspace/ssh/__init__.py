"""SSH into workspaces: the public keys users log in with, and the files each workspace's
SSH server reads (its own host key, its owner's authorized keys) on the homes filesystem."""

from labspace.ssh.files import SshFiles
from labspace.ssh.keys import PublicKey, parse_public_key
from labspace.ssh.store import SshKeyStore

__all__ = ["PublicKey", "SshFiles", "SshKeyStore", "parse_public_key"]
