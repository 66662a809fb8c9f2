"""Client errors: every rejection of a request's input is one of these, rendered as a 4xx
JSON body `{"error": <code>, "detail": <what was wrong>}` by the gateway."""

from __future__ import annotations


class ClientError(Exception):
    """Bad input from the caller. Never a server fault; never logged as one."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.detail}


class EmptyImage(ClientError):
    code = "empty_image"


class CorruptImage(ClientError):
    code = "corrupt_image"


class UnsupportedImageFormat(ClientError):
    status = 415
    code = "unsupported_image_format"


class ImageTooLarge(ClientError):
    status = 413
    code = "image_too_large"


class ImageTooSmall(ClientError):
    code = "image_too_small"


class InvalidBase64(ClientError):
    code = "invalid_base64"


class URLNotAllowed(ClientError):
    code = "url_not_allowed"


class URLFetchFailed(ClientError):
    code = "url_fetch_failed"


class URLTimeout(ClientError):
    code = "url_timeout"
