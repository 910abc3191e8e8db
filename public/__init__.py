"""The citizens' page /public (phone first, no account): report a problem with a photo and its point, follow a case
by its number and phone, rate the result after closing, and the city's public monthly figures.

Server-rendered (Flask blueprint, Jinja templates; forms work without JavaScript, public/static/public.js adds the
map tap, the phone's position and the photo preview). The page guard (auth) lets /public through; every form carries
Flask-WTF's CSRF token; the report form's body limit is its own route class (web/limits.py). The rules are the
desk's (cases/citizen.py); this room decides who is asking: the human check (check.py), the limits (throttle.py)
and which cases this browser has proved it may follow (the signed session cookie holds their numbers, never a
phone).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from cases.citizen import CitizenDesk
from public.check import TTL_S, HumanCheck
from public.throttle import PublicThrottle
from web.services import services

EXTENSION = "ucc_public"


@dataclass
class PublicDesk:
    """What the views reach: the desk, the limits and the human check of this app."""

    desk: CitizenDesk
    throttle: PublicThrottle
    check: HumanCheck


def init_public(server: Flask) -> PublicDesk:
    from data import files
    from public.views import bp

    built = services(server)
    memo: list = [None, None]

    def public_services():
        """The public categories of the catalog in force, read again only when the catalog changes."""
        catalog = built.cases.catalog()
        if memo[0] is not catalog:
            memo[:] = [catalog, files.public_services(catalog)]
        return memo[1]

    throttle = PublicThrottle.from_settings(built.settings, TTL_S)
    desk = PublicDesk(CitizenDesk(built.cases, public_services), throttle,
                      HumanCheck(server.config["SECRET_KEY"], throttle.first_use))
    server.extensions[EXTENSION] = desk
    server.register_blueprint(bp)
    return desk
