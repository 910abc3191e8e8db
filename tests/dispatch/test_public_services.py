"""The public may report the component and event categories the city's file opens to it, nothing else."""
import pytest

from data import files
from dispatch.public_services import PublicServicesError, public_services_from_data


def test_the_demo_file_opens_components_and_events_but_not_emergencies_or_campaigns():
    catalog = files.catalog()
    services = files.public_services(catalog)
    kinds = {s.kind for s in services.services}
    assert kinds == {"component", "event"}
    assert all(s.group not in ("突发事件", "综合整治") for s in services.services)
    lid = services.get("010101")
    assert lid.name == "上水井盖破损" and lid.group == "公用设施" and lid.description
    assert services.get("023001") is None  # 专项整治 is opened by the center


def test_a_wrong_file_lists_every_defect():
    with pytest.raises(PublicServicesError) as err:
        public_services_from_data({"kinds": ["road"], "exclude_codes": ["999999"], "emergency_notice": 3},
                                  files.catalog())
    assert len(err.value.problems) == 3
