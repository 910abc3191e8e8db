"""What a warning detector finds (a surge, a hotspot, a recurring spot), before the warning service stores it."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

KINDS = ("surge", "hotspot", "recurrent")


@dataclass
class Finding:
    """One unusual thing with its evidence: what was observed against what was expected in a window, in an area
    (a district, street, community or grid code; a recurring spot's grid), for one category or all (None).
    `score`: a surge's observed / expected, a hotspot's Gi* z, a spot's count. `evidence` says how it was found
    (method, interval level, p and q values, the spot's centre and radius …) in plain JSON values."""

    kind: str
    area_code: str
    district_code: str | None
    category_code: str | None
    window_start: datetime
    window_end: datetime
    observed: int
    expected: float | None = None
    upper: float | None = None
    score: float | None = None
    evidence: dict = field(default_factory=dict)
    case_ids: list[int] = field(default_factory=list)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")

    @property
    def dedupe_key(self) -> str:
        """The same thing found again (the next run of the same hour, a restart) is the same warning. A spot's window
        moves each run; it is one warning per spot and category while the spot lasts, so its key leaves the window
        out and names the spot (evidence["spot"])."""
        if self.kind == "recurrent":
            return f"recurrent|{self.evidence.get('spot', self.area_code)}|{self.category_code or '*'}"
        start = self.window_start.astimezone(timezone.utc).strftime("%Y%m%dT%H%M")
        end = self.window_end.astimezone(timezone.utc).strftime("%Y%m%dT%H%M")
        return f"{self.kind}|{self.area_code}|{self.category_code or '*'}|{start}|{end}"
