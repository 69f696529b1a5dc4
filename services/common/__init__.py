"""Pieces every service shares: settings, logging, database, bus, HTTP health and metrics."""
