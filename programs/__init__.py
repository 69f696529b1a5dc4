"""Programme configuration: shared domain knowledge (like `contracts/`) that every service may import."""

from programs.loader import ProgramConfigError, load_program, load_programs
from programs.model import INCLUDED_IN, TIER_RANK, Audience, Program, Role, Sender, Tier

__all__ = ["INCLUDED_IN", "TIER_RANK", "Audience", "Program", "ProgramConfigError", "Role", "Sender", "Tier",
           "load_program", "load_programs"]
