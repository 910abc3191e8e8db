"""Foresight (issue 18, docs/foresight.md): forecasts of case counts, early warnings, what-if runs of the simulator."""
