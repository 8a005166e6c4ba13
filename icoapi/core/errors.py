"""The service's error tree. Services raise these; one handler renders them as
``{"detail": ...}`` with the error's HTTP status. No FastAPI import is needed to
raise them, so services stay free of HTTP concerns.

Where MyTooliT ICOapi 0.2.1 has the same error, the ``detail`` text is its text
word for word, so clients that show or compare details keep working."""

from __future__ import annotations

from typing import ClassVar


class IcoapiError(Exception):
    """Base of every error the API reports to clients."""

    status_code: ClassVar[int] = 500
    default_detail: ClassVar[str] = "Internal error."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail if detail is not None else self.default_detail
        super().__init__(self.detail)


class BadRequestError(IcoapiError):
    status_code = 400
    default_detail = "Bad request."


class NotFoundError(IcoapiError):
    status_code = 404
    default_detail = "Not found."


class ConflictError(IcoapiError):
    status_code = 409
    default_detail = "The resource is in use."


class UnprocessableError(IcoapiError):
    status_code = 422
    default_detail = "Invalid input."


class ServiceUnavailableError(IcoapiError):
    status_code = 503
    default_detail = "Service unavailable."


class IncorrectStateError(BadRequestError):
    """The operation is not allowed in the current ICOtronic system state."""

    default_detail = "Incorrect request for current ICOtronic system state."


def error_responses(*errors: type[IcoapiError]) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` entries for the given errors (one per status)."""
    responses: dict[int | str, dict[str, object]] = {}
    for error in errors:
        entry = responses.setdefault(
            error.status_code,
            {
                "description": error.default_detail,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"detail": {"type": "string"}},
                            "required": ["detail"],
                        },
                        "examples": {},
                    }
                },
            },
        )
        examples = entry["content"]["application/json"]["examples"]  # type: ignore[index]
        examples[error.__name__] = {"value": {"detail": error.default_detail}}
        if error.default_detail not in str(entry["description"]):
            entry["description"] = f"{entry['description']} / {error.default_detail}"
    return responses
