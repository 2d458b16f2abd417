"""One exception root, so the CLI can turn any expected failure into one plain sentence.

Each error knows *where* it happened (file, line or row, field) because the commissioning
manager fixes problems in files, not in code.
"""

from __future__ import annotations


class EquipError(Exception):
    """An expected failure with a message meant for the person running the tool.

    ``where`` is a location such as ``campaigns/x.yaml:14`` or ``lists/staff.csv:42``;
    ``hint`` says what to do next (shown on its own line by the CLI).
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class SpecError(EquipError, ValueError):
    """The campaign spec is wrong; carries every problem found, not just the first."""

    def __init__(self, problems: list[str], *, hint: str | None = None):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class ListError(EquipError, ValueError):
    """A mailing list cannot be used at all (missing file, missing column, too many rejects)."""


class RenderError(EquipError, ValueError):
    """A template does not compile; ``where`` points at the template line and column."""


class ConfigError(EquipError, ValueError):
    """A setting (environment variable or config file) is missing or malformed."""


class StoreError(EquipError, RuntimeError):
    """The database cannot be reached or has an unexpected schema."""


class DeliveryError(EquipError, RuntimeError):
    """Sending stopped. ``status`` and ``body`` carry the provider's answer when there was one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ):
        self.status = status
        self.body = body
        super().__init__(message, where=where, hint=hint)
