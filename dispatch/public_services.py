"""The categories the public may report (Open311 services, the citizens' page), as the city's data file says.

Pure: data/files.py reads data/catalog/public_services.json and the catalog, and hands both here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from dispatch.catalog import Category
from dispatch.errors import RulesFileError

KINDS = ("component", "event", "grid", "emergency")


class PublicServicesError(RulesFileError):
    TITLE = "公众可报类别文件有误"


@dataclass(frozen=True)
class PublicService:
    code: str  # the catalog's category code (Open311 service_code)
    name: str
    group: str  # the major class (公用设施, 市容环境, …)
    kind: str
    description: str  # the filing criterion: what counts as this problem
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class PublicServices:
    services: tuple[PublicService, ...]
    group_labels: Mapping[str, str]
    emergency_notice: str

    def get(self, code: str) -> PublicService | None:
        return next((s for s in self.services if s.code == code), None)


def public_services_from_data(doc: Any, catalog: Mapping[str, Category]) -> PublicServices:
    """Checked public services (every defect listed at once), in the catalog's code order."""
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        raise PublicServicesError(["文件应为 JSON 对象"])
    kinds = doc.get("kinds")
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        problems.append(f"kinds 应为 {'、'.join(KINDS)} 中若干项的列表")
        kinds = []
    excluded_classes = doc.get("exclude_major_classes", [])
    excluded_codes = doc.get("exclude_codes", [])
    for key, value in (("exclude_major_classes", excluded_classes), ("exclude_codes", excluded_codes)):
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            problems.append(f"{key} 应为文本列表")
    if isinstance(excluded_codes, list):
        problems += [f"exclude_codes 中的 {c} 不是目录中的类别" for c in excluded_codes
                     if isinstance(c, str) and c not in catalog]
    labels = doc.get("group_labels", {})
    if not isinstance(labels, Mapping) or any(not isinstance(v, str) for v in labels.values()):
        problems.append("group_labels 应为 类型 → 名称 的对象")
        labels = {}
    notice = doc.get("emergency_notice", "")
    if not isinstance(notice, str):
        problems.append("emergency_notice 应为文本")
        notice = ""
    if problems:
        raise PublicServicesError(problems)
    services = tuple(
        PublicService(c.code, c.name, c.major_class, c.kind, c.filing_criterion,
                      tuple(dict.fromkeys((c.name, c.major_class, labels.get(c.kind, c.kind)))))
        for code, c in sorted(catalog.items())
        if c.kind in kinds and c.major_class not in excluded_classes and code not in excluded_codes)
    return PublicServices(services, dict(labels), notice)
