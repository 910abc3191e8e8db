"""Every figure the product shows, defined once (definitions.py) and computed in the database."""
