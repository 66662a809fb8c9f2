"""BentoML must not download a text value of a file field on the server."""

from __future__ import annotations

import asyncio
import io

import pytest
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from gateway.patches import apply_bentoml_patches


@pytest.fixture
def patched(monkeypatch):
    from _bentoml_impl.serde import MultipartSerde

    monkeypatch.setattr(MultipartSerde, "ensure_file", MultipartSerde.__dict__["ensure_file"])  # restored after
    apply_bentoml_patches()
    return MultipartSerde


@pytest.mark.parametrize("value", ["http://127.0.0.1:9/x.png", "https://127.0.0.1:9/y.jpg", "file:///etc/passwd", "cat.jpg"])
def test_text_in_a_file_field_is_refused(patched, value):
    with pytest.raises(ValidationError) as info:
        asyncio.run(patched.ensure_file(value))
    errors = info.value.errors()
    assert len(errors) == 1 and errors[0]["type"] == "upload_required"
    assert "`url`" in errors[0]["msg"]
    assert value not in str(info.value)  # the refused value is not echoed back


def test_an_upload_passes_through_unchanged(patched):
    upload = UploadFile(io.BytesIO(b"\x89PNG..."), filename="cat.png")
    assert asyncio.run(patched.ensure_file(upload)) is upload


def test_the_patch_applies_to_instances_as_bentoml_calls_it(patched):
    """BentoML's parse_request calls `self.ensure_file(v)`: the instance path must be guarded too."""
    from gateway.patches import _uploads_only

    assert isinstance(patched.__dict__["ensure_file"], staticmethod)
    assert patched.__dict__["ensure_file"].__func__ is _uploads_only
    apply_bentoml_patches()  # applying it twice is harmless
    serde = patched()
    with pytest.raises(ValidationError):
        asyncio.run(serde.ensure_file("http://127.0.0.1:9/x.png"))
    upload = UploadFile(io.BytesIO(b"GIF89a"), filename="a.gif")
    assert asyncio.run(serde.ensure_file(upload)) is upload


def test_unparseable_multipart_is_a_schema_error_not_a_500():
    from _bentoml_impl.serde import MultipartSerde
    from starlette.requests import Request

    apply_bentoml_patches()

    def request(content_type: bytes, body: bytes) -> Request:
        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "path": "/x", "headers": [(b"content-type", content_type)]}
        return Request(scope, receive)

    for content_type, body in ((b"multipart/form-data", b""), (b"multipart/form-data; boundary=abc", b"--abc\r\n[]--abc--\r\n")):
        with pytest.raises(ValidationError) as info:
            asyncio.run(MultipartSerde().parse_request(request(content_type, body), object))
        assert info.value.errors()[0]["type"] == "malformed_multipart"


def test_client_error_tracebacks_are_dropped_and_server_faults_kept():
    import logging

    from gateway.patches import BENTOML_ERROR_LOGGER

    apply_bentoml_patches()
    logger = logging.getLogger(BENTOML_ERROR_LOGGER)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        try:
            raise ValidationError.from_exception_data("Input", [])
        except ValidationError:
            logger.error("Exception on /x [POST]", exc_info=True)
        try:
            from gateway.body_limit import BodyTooLarge

            raise BodyTooLarge()
        except BodyTooLarge:
            logger.error("Exception on /z [POST]", exc_info=True)
        try:
            raise RuntimeError("a real fault")
        except RuntimeError:
            logger.error("Exception on /y [POST]", exc_info=True)
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in seen] == ["Exception on /y [POST]"]


def test_the_mount_of_our_routes_matches_a_path_with_a_line_break():
    from _bentoml_impl.server.mount import PassiveMount
    from fastapi import FastAPI
    from starlette.routing import Match

    import gateway.compat  # noqa: F401  (registers the `anypath` convertor of POST /rating/{image_id})
    app = FastAPI()

    @app.post("/rating/{key:anypath}")
    async def rate(key: str):
        return {"key": key}

    apply_bentoml_patches()
    scope = {"type": "http", "path": "/rating/a\nb.png", "root_path": "", "method": "POST"}
    assert PassiveMount("", app).matches(scope)[0] is not Match.NONE
