"""Sandbox administration: reset or re-seed the caller's own data set."""

from dataclasses import replace

from .. import datasets
from . import rules


def reset_tenant(user):
    return datasets.reset_tenant(rules().store, user, rules().defaults)


def seed_tenant(user, body=None):
    settings = replace(rules().defaults, **(body or {}))
    return datasets.seed_tenant(rules().store, user, settings)
