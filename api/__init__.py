"""REST JSON API under /api/v1 (and Open311 later): Flask blueprints."""
