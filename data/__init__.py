"""Persistence: SQLAlchemy models, sessions, repositories, migrations; data files live beside them (data/files.py)."""
