"""Persistence: SQLAlchemy models, sessions, repositories, migrations; data files live beside them."""
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
