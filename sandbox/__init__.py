"""A stateful sandbox for the PokitDok Platform API v4 Scheduling endpoints."""

import warnings

# Connexion imports Starlette's test client at start-up, which warns about httpx on every
# `pokitdok-sandbox serve`; the sandbox never uses that client, so the warning is noise.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

__version__ = "0.1.0"
