"""The scheduler service: time only (digest periods, releases of held events), from its own two tables."""
