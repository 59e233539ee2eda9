"""The error raised for bad lake input: it always names the file and, where known, the row and field."""

from __future__ import annotations


class LakeInputError(ValueError):
    def __init__(self, file: str, message: str, *, row: int | None = None, field: str | None = None) -> None:
        where = file
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
        self.file, self.row, self.field = file, row, field
