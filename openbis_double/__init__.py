"""openBIS test double for the tests: see README.md in this folder."""

from .control import DoubleControl

__all__ = ["DoubleControl"]
