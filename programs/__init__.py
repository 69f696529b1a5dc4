"""Programme configuration: shared domain knowledge (like `contracts/`) that every service may import."""

from programs.loader import ProgramConfigError, load_program, load_programs
from programs.model import TIER_RANK, Audience, Program, Sender, Tier

__all__ = ["TIER_RANK", "Audience", "Program", "ProgramConfigError", "Sender", "Tier", "load_program",
           "load_programs"]
