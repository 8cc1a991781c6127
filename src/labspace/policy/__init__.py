"""Who may use what: resource profiles, and the rules that map a member's groups (and
role) to the templates, profiles and number of workspaces they may have."""

from labspace.policy.allowance import Allowance, allowance_for
from labspace.policy.model import AccessRule, ProfileSpec, with_profile

__all__ = ["AccessRule", "Allowance", "ProfileSpec", "allowance_for", "with_profile"]
