"""``GET /openapi.json``: the OpenAPI document of the inbound API (app/data/openapi.yaml),
which schemathesis drives in the test suite."""

from __future__ import annotations

from importlib import resources

import falcon.asgi
import orjson
import yaml


def openapi_document() -> bytes:
    text = resources.files("app").joinpath("data/openapi.yaml").read_text()
    return orjson.dumps(yaml.safe_load(text))


class OpenAPI:
    def __init__(self) -> None:
        self.document = openapi_document()

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.document
