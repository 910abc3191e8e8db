"""The models /api/v1 shares between its blueprints: the query base, paging, the error object and the case object.

Requests (`Query`, bodies) screen what reaches a view; answers (`Answer`) describe what the services return, open
to fields a later wave adds (extra="allow") but naming every field CONTRACT.md names. See api/openapi.py.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

MAX_PER_PAGE = 500
MAX_PAGE = 10**6


class Query(BaseModel):
    """A query string's model: text trimmed, an empty parameter taken as absent (`?state=&page=2`), unknown
    parameters ignored (a client may send more)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    keep_empty: ClassVar[tuple[str, ...]] = ()  # parameters whose empty value means something (a refusal)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items()
                    if k in cls.keep_empty or not (isinstance(v, str) and not v.strip())}
        return data


class Body(BaseModel):
    """A JSON body's model: text kept as sent (the services trim what they store), unknown fields ignored."""

    model_config = ConfigDict(extra="ignore")


class Answer(BaseModel):
    """An answer's model: what the service returns, which may carry more than the fields named here."""

    model_config = ConfigDict(extra="allow")


def _plus_kept(value: Any) -> Any:
    # a "+" of an offset left unescaped in a query string arrives as a space; "Z" is UTC
    return value.strip().replace(" ", "+") if isinstance(value, str) else value


# an ISO 8601 time with its offset, as a query parameter
QueryTime = Annotated[AwareDatetime, BeforeValidator(_plus_kept)]
Page = Annotated[int, Field(ge=1, le=MAX_PAGE, description="页码（从 1 起）")]
PerPage = Annotated[int, Field(ge=1, le=MAX_PER_PAGE, description=f"每页条数（1–{MAX_PER_PAGE}）")]
Text = Annotated[str, Field(max_length=200)]
Code = str  # an area's, a unit's or an indicator's code: the services say which exist


class Paged(Query):
    page: Page = 1
    per_page: PerPage = 50


class ErrorBody(Answer):
    """Every refusal: a stable code, a Chinese message; a wrong field's `fields`, a stale version's current `case`."""

    error: str = Field(description="稳定的错误代码，如 bad_request、not_found、conflict")
    message: str = Field(description="中文说明")
    fields: dict[str, str] | None = Field(default=None, description="每个有误字段的说明")


# ---- the case object (cases/service.py CaseService.case_dict) -------------------------------------------------
class AreaRef(Answer):
    code: str
    name: str
    level: int = Field(description="1 市 … 5 网格")


class UnitRef(Answer):
    code: str
    name: str


class CategoryRef(Answer):
    code: str
    name: str
    kind: str
    major_class: str | None


class HistoryStep(Answer):
    at: str | None
    actor: str | None
    action: str
    action_label: str
    from_: str | None = Field(alias="from")
    to: str | None
    note: str | None


class Stage(Answer):
    name: str
    label: str
    started_at: str | None
    deadline: str | None
    done_at: str | None
    overdue: bool
    warning: bool
    paused: bool


class CaseObject(Answer):
    """The case, the same object every case endpoint answers (CONTRACT.md, GET /events/ID)."""

    id: int
    state: str
    state_label: str
    version: int
    category: CategoryRef
    kind: str
    source: str
    description: str | None
    lon: float
    lat: float
    chain: list[AreaRef] = Field(description="所在区域，网格 → 市")
    unit: UnitRef | None = Field(description="主办单位")
    units: list[UnitRef] = Field(description="主办及协办单位（联合派遣）")
    deadline: str | None
    overdue: bool
    sla: dict[str, Any] | None
    severity: int | None
    reporter_phone: str | None
    merged_into: int | None
    occurred_at: str | None
    reported_at: str | None
    updated_at: str | None
    stages: list[Stage]
    external_ref: str | None
    external_system: str | None
    history: list[HistoryStep] | None = None
    response: dict[str, Any] | None = Field(default=None, description="应急事件的响应（预案、等级、任务）")


class CasePage(Answer):
    """A page of cases: `total` only when asked with count=true; `next` is the keyset cursor of the next page."""

    items: list[CaseObject]
    page: int | None = None
    per_page: int | None = None
    total: int | None = None
    next: int | str | None = None
