"""What the API answers when it cannot: a status and one sentence, as JSON."""

from __future__ import annotations

from starlette.responses import JSONResponse


class ApiError(Exception):
    """A request the API refuses: the HTTP status, one sentence, and any headers."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        file: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.file = file  # the one picture a request sent, when it is what was refused

    def response(self) -> JSONResponse:
        body = {"error": self.message}
        if self.file is not None:
            body["file"] = self.file
        return JSONResponse(body, self.status, headers=self.headers)
