"""The shipped data files: where each one lives, and the one place that reads them."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from dispatch.assessment_rules import AssessmentRules
from dispatch.center_rules import CenterRules
from dispatch.devices import DeviceType, device_types_from_data
from dispatch.emergency_plans import Plans, plans_from_data
from dispatch.forecast_rules import ForecastRules, forecast_rules_from_data
from dispatch.indicators import IndicatorCatalog, indicator_catalog_from_data
from dispatch.catalog import (Category, CodeChange, RouteException, UnitType, load_catalog, load_code_changes,
                              load_routing_exceptions, load_unit_types)
from dispatch.units import load_unit_patterns
from dispatch.working_time import HOLIDAYS_FILE, OFFICE_HOURS_FILE, WorkCalendar

DATA_DIR = Path(__file__).resolve().parent

# the dispatch manual, the unit types, how codes moved, the routing exceptions by area, the demo
# unit names and the demo users
CATALOG_DIR = DATA_DIR / "catalog"
CATEGORIES_PATH = CATALOG_DIR / "categories.csv"
UNIT_TYPES_PATH = CATALOG_DIR / "unit_types.csv"
UNIT_PATTERNS_PATH = CATALOG_DIR / "demo_units.json"
CODE_CHANGES_PATH = CATALOG_DIR / "code_changes.csv"
ROUTING_EXCEPTIONS_PATH = CATALOG_DIR / "routing_exceptions.csv"
DEMO_USERS_PATH = CATALOG_DIR / "demo_users.json"
# how the center runs a case: stage limits, automatic 催办/督办, penalty points
CENTER_RULES_PATH = CATALOG_DIR / "center_rules.json"
ASSESSMENT_RULES_PATH = CATALOG_DIR / "assessment.json"
# the sensing fleet's device types: telemetry keys, allowed silence, alarm rules (docs/devices.md)
DEVICE_TYPES_PATH = CATALOG_DIR / "device_types.json"
# the city's vital signs: which indicator codes the feed accepts (docs/indicators.md)
CITY_INDICATORS_PATH = CATALOG_DIR / "city_indicators.json"
EMERGENCY_PLANS_PATH = CATALOG_DIR / "emergency_plans.json"
# forecasts and surge warnings: history, backtest, intervals (docs/foresight.md)
FORECAST_RULES_PATH = CATALOG_DIR / "forecast.json"

# the working-time calendar (public holidays, office hours)
CALENDAR_DIR = DATA_DIR / "calendar"
HOLIDAYS_PATH = CALENDAR_DIR / HOLIDAYS_FILE
OFFICE_HOURS_PATH = CALENDAR_DIR / OFFICE_HOURS_FILE

# the demo city and the real district boundaries it is built on
DEMO_CITY_PATH = DATA_DIR / "demo_city.json"
DEMO_DEVICE_FEED_PATH = DATA_DIR / "demo_device_feed.json"
DEMO_INDICATOR_FEED_PATH = DATA_DIR / "demo_indicator_feed.json"
# the demo city's emergency resources, in the import-resources format (made by scripts/make_demo_resources.py)
DEMO_RESOURCES_PATH = DATA_DIR / "demo_resources.geojson"
BOUNDARIES_DIR = DATA_DIR / "boundaries"

# indicators: the plan's key indicators (cockpit)
PLAN_INDICATORS_PATH = DATA_DIR / "indicators" / "plan_indicators.csv"

# Alembic's script directory
MIGRATIONS_DIR = DATA_DIR / "migrations"


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


# ---- the dispatch manual and the units (parsed and validated by dispatch/) ---------------------
def unit_types() -> dict[str, UnitType]:
    """The unit types of data/catalog/unit_types.csv, by code (CatalogError when the file is bad)."""
    return load_unit_types(UNIT_TYPES_PATH)


def catalog(types: dict[str, UnitType] | None = None) -> dict[str, Category]:
    """The categories of data/catalog/categories.csv, by code, checked against ``types``
    (default: :func:`unit_types`)."""
    return load_catalog(CATEGORIES_PATH, types if types is not None else unit_types())


def center_rules() -> CenterRules:
    """The center's stage limits, reminders and penalties (data/catalog/center_rules.json),
    checked (CenterRulesError lists every problem)."""
    return CenterRules.from_data(_json(CENTER_RULES_PATH))


def assessment_rules() -> AssessmentRules:
    """How the city scores its assessment (data/catalog/assessment.json): weights, bands, grades, checked
    (AssessmentRulesError lists every problem)."""
    return AssessmentRules.from_data(_json(ASSESSMENT_RULES_PATH))


def device_types(catalog_: dict[str, Category] | None = None,
                 types: dict[str, UnitType] | None = None) -> dict[str, DeviceType]:
    """The device types of data/catalog/device_types.json, by code, checked against the catalog's categories
    and the unit types (default: the shipped ones; DeviceTypesError lists every problem)."""
    types = types if types is not None else unit_types()
    catalog_ = catalog_ if catalog_ is not None else catalog(types)
    return device_types_from_data(_json(DEVICE_TYPES_PATH), set(catalog_), set(types),
                                  {code for code, c in catalog_.items() if c.is_emergency})


def code_changes(catalog_: dict[str, Category] | None = None) -> list[CodeChange]:
    """The code changes of data/catalog/code_changes.csv, checked against ``catalog_`` (default:
    :func:`catalog`)."""
    return load_code_changes(CODE_CHANGES_PATH, catalog_ if catalog_ is not None else catalog())


def routing_exceptions(catalog_: dict[str, Category] | None = None, types: dict[str, UnitType] | None = None,
                       area_codes=None) -> list[RouteException]:
    """The routing exceptions by area of data/catalog/routing_exceptions.csv, checked against the
    catalog and unit types (default: the shipped ones) and, when given, the hierarchy's
    ``area_codes``."""
    types = types if types is not None else unit_types()
    return load_routing_exceptions(ROUTING_EXCEPTIONS_PATH, catalog_ if catalog_ is not None else catalog(types),
                                   types, area_codes)


def unit_patterns() -> dict:
    """The parsed data/catalog/demo_units.json (the names of the demo units)."""
    return load_unit_patterns(UNIT_PATTERNS_PATH)


def demo_users() -> list[dict]:
    """The demo users of data/catalog/demo_users.json (one per role, public passwords)."""
    return _json(DEMO_USERS_PATH)["users"]


# ---- the working-time calendar ------------------------------------------------------------------
_calendar: WorkCalendar | None = None
_calendar_lock = threading.Lock()


def calendar() -> WorkCalendar:
    """The calendar of data/calendar/, loaded once per process (thread-safe)."""
    global _calendar
    if _calendar is None:
        with _calendar_lock:
            if _calendar is None:  # another thread may have loaded it while this one waited
                _calendar = WorkCalendar.from_files(CALENDAR_DIR)
    return _calendar


# ---- the demo city ----------------------------------------------------------------------------
def demo_city_config() -> dict:
    """The parsed data/demo_city.json (the demo city's parameters)."""
    return _json(DEMO_CITY_PATH)


def demo_device_feed() -> dict:
    """The parsed data/demo_device_feed.json (how often the demo's devices report, and their faults)."""
    return _json(DEMO_DEVICE_FEED_PATH)


def demo_indicator_feed() -> dict:
    """The parsed data/demo_indicator_feed.json (the demo feeder's series: levels, daily and weekly shapes)."""
    return _json(DEMO_INDICATOR_FEED_PATH)


def boundaries_path(name: str) -> Path:
    """data/boundaries/<name>; ``name`` is a bare file name (no directory part)."""
    if not name or Path(name).name != name:
        raise ValueError(f"boundary file name expected, got {name!r}")
    return BOUNDARIES_DIR / name


def boundaries(name: str) -> dict:
    """The GeoJSON FeatureCollection data/boundaries/<name>."""
    return _json(boundaries_path(name))


# ---- indicators ---------------------------------------------------------------------------------
_city_indicators: IndicatorCatalog | None = None


def city_indicators() -> IndicatorCatalog:
    """The checked data/catalog/city_indicators.json (IndicatorCatalogError lists every problem); read once."""
    global _city_indicators
    if _city_indicators is None:
        _city_indicators = indicator_catalog_from_data(_json(CITY_INDICATORS_PATH))
    return _city_indicators


def forecast_rules() -> ForecastRules:
    """The forecast and surge settings of data/catalog/forecast.json, checked (ForecastRulesError lists every
    problem)."""
    return forecast_rules_from_data(_json(FORECAST_RULES_PATH))


def emergency_plans(edited=(), catalog_: dict[str, Category] | None = None) -> Plans:
    """The checked plans of data/catalog/emergency_plans.json with the administrator's `edited` plans (rows of
    emergency_plans, parsed) in place of the file's; PlanFileError lists every problem."""
    cats = catalog_ if catalog_ is not None else catalog()
    return plans_from_data(_json(EMERGENCY_PLANS_PATH), {c for c, v in cats.items() if v.is_emergency},
                           set(unit_types()), edited)


WHATIF_RULES_PATH = CATALOG_DIR / "whatif.json"


def whatif_rules():
    """The what-if simulator's rules (data/catalog/whatif.json), checked (WhatIfRulesError lists every problem)."""
    from dispatch.whatif_rules import WhatIfRules

    return WhatIfRules.from_data(_json(WHATIF_RULES_PATH))


# ---- early warnings (issue 18) --------------------------------------------------------------------
WARNING_RULES_PATH = CATALOG_DIR / "warning_rules.json"


def warning_rules(catalog_: dict[str, Category] | None = None):
    """How hotspots and recurring spots are found, who is told, the 专项整治 case's category
    (data/catalog/warning_rules.json), checked against the catalog (WarningRulesError lists every problem)."""
    from dispatch.warning_rules import warning_rules_from_data

    return warning_rules_from_data(_json(WARNING_RULES_PATH), set(catalog_ if catalog_ is not None else catalog()))


PUBLIC_SERVICES_PATH = CATALOG_DIR / "public_services.json"
OPEN311_PATH = CATALOG_DIR / "open311.json"


def public_services(catalog_: dict[str, Category]):
    """The categories the public may report (data/catalog/public_services.json) out of `catalog_` (the catalog in
    force: CaseService.catalog()), checked (PublicServicesError lists every problem)."""
    from dispatch.public_services import public_services_from_data

    return public_services_from_data(_json(PUBLIC_SERVICES_PATH), catalog_)


def open311_discovery() -> dict:
    """The city's words in the Open311 discovery document (data/catalog/open311.json: changeset, contact,
    key_service)."""
    doc = _json(OPEN311_PATH)
    return {key: str(doc.get(key) or "") for key in ("changeset", "contact", "key_service")}


# the 12345 exchange (docs/open-interfaces.md): the push's retry schedule and words, and the hotline's class names
HOTLINE_RULES_PATH = CATALOG_DIR / "hotline.json"
HOTLINE_CATEGORIES_PATH = CATALOG_DIR / "hotline_categories.json"


def hotline_rules(path: str | Path | None = None):
    """data/catalog/hotline.json (or the city's own file at `path`: UCC_HOTLINE_RULES), checked (HotlineRulesError
    lists every problem)."""
    from dispatch.hotline_rules import hotline_rules_from_data

    return hotline_rules_from_data(_json(Path(path) if path else HOTLINE_RULES_PATH))


def hotline_categories(catalog_: dict[str, Category]):
    """The hotline's class names → `catalog_`'s categories (data/catalog/hotline_categories.json), checked."""
    from dispatch.hotline_rules import hotline_categories_from_data

    return hotline_categories_from_data(_json(HOTLINE_CATEGORIES_PATH), catalog_)
