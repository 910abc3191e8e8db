"""The demo city, its seed, the event simulator and the history backfill."""
