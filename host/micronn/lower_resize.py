"""Lowerings of the resize operators (issue 18); lower.py merges the tables below
into its own (LOWERINGS, LIMITS, OPERANDS have the same meaning there)."""

from __future__ import annotations

LOWERINGS: dict = {}
LIMITS: dict = {}
OPERANDS: dict = {}
