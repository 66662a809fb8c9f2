"""The one error base class of the project: a failure with an HTTP status and a code.

Every module that refuses something (intake, search, the gateway's runner client) raises a
subclass; the gateway renders any of them as `{"error": code, "detail": message}` with its
status, so a client always gets the same shape.
"""

from __future__ import annotations


class ServiceError(Exception):
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
