"""Who hears what: the Socket.IO rooms a principal joins, and the rooms a case event goes to.

One rule serves both the live stream and the replay (`resync`): a client receives a case event when
the event's audience rooms and the client's rooms meet. Case data only ever goes to `area:` and
`unit:` rooms, so a client of another area never receives it; `wall`, `cockpit` and `user:` are
audience rooms for messages that carry no case data (announcements, reload requests, a user's own
notifications)."""
from __future__ import annotations

from typing import Callable, Iterable

from data.tokens import Principal

# Roles that may open a live connection (the "system" principal of the scheduler may not).
LIVE_ROLES = ("admin", "duty_officer", "leader", "unit_handler", "grid_member", "wall")


class NoLiveAccess(Exception):
    """The principal may not hold a live connection; the message is shown to the client."""


def area_room(code: str) -> str:
    return f"area:{code}"


def unit_room(code: str) -> str:
    return f"unit:{code}"


def user_room(ident: str) -> str:
    return f"user:{ident}"


def principal_rooms(principal: Principal, root_of: Callable[[str], str | None]) -> list[str]:
    """The rooms a client joins: its area (a node of the hierarchy: the whole city for a city-level
    officer, a district for a district's), or its unit for a handler; plus its role's audience room
    and its own user room. `root_of(area_code)` gives the city above an area (admins see the city)."""
    role = principal.role
    if role not in LIVE_ROLES:
        raise NoLiveAccess(f"角色 {role} 不能订阅实时推送")
    rooms = [user_room(principal.ident)]
    if role == "unit_handler":
        if not principal.unit_code:
            raise NoLiveAccess("处置单位令牌缺少单位编码")
        rooms.append(unit_room(principal.unit_code))
    elif role == "admin":
        root = root_of(principal.area_code) or principal.area_code
        rooms.append(area_room(root))
    else:
        rooms.append(area_room(principal.area_code))
    if role == "wall":
        rooms.append("wall")
    elif role == "leader":
        rooms.append("cockpit")
    return rooms


def case_rooms(case: dict, event_unit: str | None = None) -> list[str]:
    """The audience of one case event: `area:<code>` for each area of the case's chain (grid → city)
    and `unit:<code>` for the unit named on the outbox row and each unit on the case (lead and
    assisting units)."""
    rooms = [area_room(a["code"]) for a in case.get("chain") or []]
    units: list[str] = []
    for code in [event_unit] + [u.get("code") for u in case.get("units") or []]:
        if code and code not in units:
            units.append(code)
    rooms += [unit_room(u) for u in units]
    return rooms


def may_receive(client_rooms: Iterable[str], case: dict, event_unit: str | None = None) -> bool:
    rooms = set(client_rooms)
    return any(r in rooms for r in case_rooms(case, event_unit))


def alarm_rooms(alarm: dict) -> list[str]:
    """The audience of an alarm event: its device's areas (grid → city, `chain`) and its device's unit."""
    rooms = [area_room(code) for code in alarm.get("chain") or []]
    if alarm.get("unit"):
        rooms.append(unit_room(alarm["unit"]))
    return rooms
