"""Which role may open which page: plain data, read by the sign-in guard and by the page menus.

What a role may *do* to a case is the lifecycle's rules table (dispatch/lifecycle.py); what it may
*see* is its area (and unit, for handlers), enforced in cases/service.py. This table only says
which screens make sense for a role, so a wall display cannot open the console.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    path: str
    label: str
    roles: tuple[str, ...]


PAGES: tuple[Page, ...] = (
    Page("/", "城市总览", ("admin", "duty_officer", "leader", "unit_handler", "grid_member")),
    Page("/wall", "大屏", ("admin", "duty_officer", "leader", "wall")),
    Page("/cockpit", "领导驾驶舱", ("admin", "leader", "duty_officer")),
    Page("/console", "指挥调度台", ("admin", "duty_officer", "leader")),
    Page("/unit", "处置工作台", ("admin", "unit_handler")),
    Page("/report", "上报", ("admin", "duty_officer", "grid_member", "unit_handler")),
    # the fleet, its alarms and a device's values (layouts/devices.py); what each role sees and may do there is
    # DEVICE_READERS' scope and ALARM_ACTORS below (a leader reads, a unit handler sees their unit's devices)
    Page("/devices", "物联感知", ("admin", "duty_officer", "leader", "unit_handler")),
    # the emergency commander's map (应急一张图, layouts/emergency.py): the active responses and one event's plan,
    # units, checklist, reports and surroundings; who may command which response is the plan's commanding level
    # (dispatch/emergency_plans.may_command), so a leader or an officer may see a response they cannot act on
    Page("/emergency", "应急一张图", ("admin", "duty_officer", "leader")),
)

# who may read the device registry (/api/v1/devices): the command hall's people, the wall (its devices
# layer) and unit handlers (their own unit's devices only); each within their area (sensing/registry.py)
DEVICE_READERS = ("admin", "duty_officer", "leader", "wall", "unit_handler")
# who may acknowledge and clear a device's alarm (of those readers, within their scope: a unit handler only
# their unit's devices' alarms)
ALARM_ACTORS = ("admin", "duty_officer", "unit_handler")

# A device token (create-token --role device) only posts telemetry (POST /api/v1/devices/ID/telemetry) for the
# devices of its area; every other request of it is refused (api/v1.authenticate, the live connection). Admins
# may post telemetry too (operators testing a device by hand).
DEVICE_ROLE = "device"
TELEMETRY_SENDERS = (DEVICE_ROLE, "admin")
# who may post the city's vital-sign indicator readings (POST /api/v1/indicators): a machine's device token (the
# feeds of the traffic, environment, water and power systems) and an admin; people (leader, duty officer) read them
INDICATOR_SENDERS = (DEVICE_ROLE, "admin")
# An Open311 client's api_key (create-token --role open311; CONTRACT: report and read public fields only) posts
# service requests at /open311/v2 and reads what anyone reads there; it opens no page, no /api/v1 view, no photo and
# no live room. Admins may post Open311 requests too (operators testing the interface by hand).
OPEN311_ROLE = "open311"
OPEN311_REPORTERS = (OPEN311_ROLE, "admin")
# machine tokens that see no case through the staff's API, photos or live rooms
CASE_BLIND_ROLES = (DEVICE_ROLE, OPEN311_ROLE)
# The 12345 hotline's system (create-token --role hotline): posts tickets and callbacks (POST /api/v1/hotline/…),
# reads the cases of its own tickets (external_system HOTLINE_SYSTEM: cases/service.py's scope) and pulls their
# changes (GET /api/v1/events?updated_since=); every other request of it is refused (api/v1.authenticate).
HOTLINE_ROLE = "hotline"
HOTLINE_SYSTEM = "12345"  # the cases' external_system of the hotline's tickets
# who may see a hotline caller's name and number unmasked, and work the push's dead-letter list (重新推送)
HOTLINE_OPERATORS = ("admin", "duty_officer")
# who may run the what-if simulator (POST /api/v1/whatif) and read its runs: the people who decide (issue 18)
WHATIF_RUNNERS = ("admin", "duty_officer", "leader")
# only an admin reads the ingest's counters (GET /api/v1/telemetry/stats) until the operations page comes
TELEMETRY_STATS_READERS = ("admin",)
# who may read the forecasts (GET /api/v1/forecast): the command hall's people
FORECAST_READERS = ("admin", "duty_officer", "leader")

# where a role lands after signing in
HOME_OF_ROLE = {
    "admin": "/console",
    "duty_officer": "/console",
    "leader": "/cockpit",
    "unit_handler": "/unit",
    "grid_member": "/report",
    "wall": "/wall",
}


def page_for(path: str) -> Page | None:
    path = path.rstrip("/") or "/"
    for page in PAGES:
        if page.path == path:
            return page
    return None


def can_open(role: str, path: str) -> bool:
    page = page_for(path)
    return page is not None and role in page.roles


def pages_of(role: str) -> list[Page]:
    """The pages a role may open, in menu order."""
    return [p for p in PAGES if role in p.roles]
