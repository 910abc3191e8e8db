"""Create or migrate the schema with Alembic (init-db); idempotent."""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from data.files import MIGRATIONS_DIR
from data.db import Database


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_db(db: Database) -> str:
    """Upgrade the database to the newest revision; returns the revision now in force."""
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return current_revision(db)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
