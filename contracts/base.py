"""Shared base for contract models: frozen, strict about unknown fields."""

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
