"""An address in words finds the deepest area it names, and a point inside that area."""
from shapely.geometry import box

from geo.address import place_of_address
from geo.model import AreaRecord

CITY = AreaRecord("320400", "常州市", 1, None, box(119.0, 31.0, 120.5, 32.0))
DISTRICT = AreaRecord("320412", "武进区", 2, "320400", box(119.5, 31.3, 120.2, 31.8))
STREET = AreaRecord("320412001", "湖塘镇", 3, "320412", box(119.9, 31.6, 120.0, 31.7))
OTHER_STREET = AreaRecord("320412002", "牛塘镇", 3, "320412", box(119.8, 31.6, 119.9, 31.7))
RECORDS = [CITY, DISTRICT, STREET, OTHER_STREET]


def test_the_deepest_named_area_wins_and_the_point_lies_inside_it():
    place = place_of_address("常州市武进区湖塘镇花园街 12 号门口", RECORDS)
    assert place.area.code == "320412001"
    assert STREET.geometry.contains(__import__("shapely").Point(place.lon, place.lat))


def test_a_name_without_its_suffix_still_names_the_area():
    assert place_of_address("牛塘菜场东门", RECORDS).area.code == "320412002"


def test_an_address_naming_no_area_of_the_city_is_none():
    assert place_of_address("北京市海淀区中关村", RECORDS) is None
    assert place_of_address("   ", RECORDS) is None
