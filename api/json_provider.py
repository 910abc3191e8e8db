"""Flask's JSON for the API through orjson: the answer to an intake is encoded ~5x faster than by
the standard library, which matters at a thousand intakes a second. Output is UTF-8 (Chinese as is,
as JSON_AS_ASCII=False did); anything orjson cannot encode falls back to Flask's own rules."""
from __future__ import annotations

import orjson
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_NON_STR_KEYS


class OrjsonProvider(DefaultJSONProvider):
    def dumps(self, obj, **kwargs) -> str:
        if kwargs:  # someone asked for something particular (indent, sort_keys…): the standard way
            return super().dumps(obj, **kwargs)
        return orjson.dumps(obj, default=self.default, option=_OPTIONS).decode()

    def loads(self, s, **kwargs):
        if kwargs:
            return super().loads(s, **kwargs)
        return orjson.loads(s)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        data = orjson.dumps(obj, default=self.default, option=_OPTIONS)
        return self._app.response_class(data + b"\n", mimetype=self.mimetype)
