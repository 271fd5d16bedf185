"""A stateful sandbox for the PokitDok Platform API v4 Scheduling endpoints."""

__version__ = "0.1.0"
