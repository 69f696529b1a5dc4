"""Budkavle's services: gateway, tailor, email, teams, intranet, and the embedded runner."""
