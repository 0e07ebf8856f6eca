"""Reclaim: which pages leave memory, and when (mm/vmscan.c). See vmscan.py."""

from .vmscan import Reclaimer

__all__ = ["Reclaimer"]
