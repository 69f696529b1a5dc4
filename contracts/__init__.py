"""The only language between Budkavle's services: versioned, frozen pydantic models and topic names."""
