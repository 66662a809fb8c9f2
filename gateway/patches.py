"""Guards around BentoML behaviour that is unsafe for a public image server.

BentoML's multipart parser treats a *text* value in a file field as a URL and downloads it
on the server (`MultipartSerde.ensure_file`), with no size cap and only a partial address
check. That bypasses the intake's URL rules (allow-list, size cap, timeouts, redirects), so
file fields here accept uploaded files only; URLs go in the explicit `url` fields, which the
intake fetches safely. tests/integration/test_bad_inputs.py proves no fetch happens.
"""

from __future__ import annotations

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError
from starlette.datastructures import UploadFile


async def _uploads_only(obj: object) -> UploadFile:
    if isinstance(obj, UploadFile):
        return obj
    error = PydanticCustomError(
        "upload_required",
        "file fields take uploaded files only; send an image URL in the `url` (or `urls`) field",
    )
    raise ValidationError.from_exception_data("Input", [InitErrorDetails(type=error, loc=("file",), input="(text)")])


def refuse_server_side_file_fetch() -> None:
    from _bentoml_impl.serde import MultipartSerde

    MultipartSerde.ensure_file = staticmethod(_uploads_only)
