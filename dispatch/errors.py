"""The one error family: a refusal with an HTTP-like status, a stable code and a Chinese message.

Every room raises it (the case service, the figures, the indicators, the API's own argument checks);
web/errors.py is the one place that turns it into the contract's JSON error, and the pages show its
message. Raised before anything was written, so a refusal never leaves a partial change behind.
"""
from __future__ import annotations


class ServiceError(Exception):
    """A refusal the edges turn into a status and a Chinese message; nothing was changed."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class RulesFileError(ValueError):
    """A rules file of the city (device types, indicators, the center's rules, assessment weights) is wrong:
    `problems` lists every defect found (Chinese, for the operator, each with its place). Subclasses name the file."""

    TITLE = "数据文件有误"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{self.TITLE}：\n" + "\n".join(f"  - {p}" for p in problems))
