"""The device layer of the cockpit's map (figures/devices_map.for_area): clusters by street at city and district
scale, each device below, the frame's open alarms; drawn in pixels over the areas, counted in the legend."""
from __future__ import annotations

from figures import devices_map
from layouts import cockpit as view


def _frame(services, level: int):
    return next(r for r in services.areas.records() if r.level == level)


def test_the_cockpit_map_clusters_the_city_and_shows_a_street_device_by_device(demo_app):
    services = demo_app.extensions["ucc"]
    types = services.devices.types()
    with demo_app.app_context():
        city = devices_map.for_area(services.db, services.areas, types, _frame(services, 1))
        assert city["clusters"] and not city["points"]
        assert sum(c[2] for c in city["clusters"]) == sum(city["counts"].values()) > 1000
        district = _frame(services, 2)
        own = devices_map.for_area(services.db, services.areas, types, district)
        assert 0 < sum(own["counts"].values()) < sum(city["counts"].values())
        # a street with devices: each of them, none from elsewhere
        street = next(r for r in services.areas.records(max_level=3) if r.level == 3
                      and sum(devices_map.for_area(services.db, services.areas, types, r)["counts"].values()))
        near = devices_map.for_area(services.db, services.areas, types, street)
        assert not near["clusters"] and len(near["points"]) == sum(near["counts"].values())
        minx, miny, maxx, maxy = street.geometry.bounds
        assert all(minx - 1e-6 <= p[0] <= maxx + 1e-6 and miny - 1e-6 <= p[1] <= maxy + 1e-6 for p in near["points"])

        spec = view.map_payload(street, services.areas.children(street.code), None, {"items": []},
                                devices=near)["spec"]
        layers = {layer["id"]: layer for layer in spec["layers"]}
        assert layers["ck-devices"]["radiusUnits"] == "pixels" and len(layers["ck-devices"]["data"]) == len(near["points"])
        assert not layers["ck-devices"].get("pickable")  # a click still drills into the area under it
        legend = " ".join(str(x) for x in view.map_legend([], near))
        assert "物联设备" in legend and "在线" in legend
