"""The five-level grid hierarchy: model, demo city, import/validation, locator, map layers."""
