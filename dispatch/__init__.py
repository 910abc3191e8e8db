"""The dispatch domain core: catalog, routing, lifecycle, working-time SLA, escalation, dedupe, KPIs, simulator. Pure Python."""
