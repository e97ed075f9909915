"""Errors a user can act on.

Every error raised for bad input, a missing tool or a board that does not fit is a
``TinygenError``: a one-line message plus a hint.  The CLI prints it once, as one line,
and exits with code 2.  Anything else is a bug (exit 1, traceback with ``--debug``).
"""

from __future__ import annotations


class TinygenError(Exception):
    """A user-facing error: one-line ``message`` and an optional ``hint``."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None,
                 details: str | None = None) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.hint = " ".join(hint.split()) if hint else None
        self.details = details  # e.g. the tail of a failed tool's output, shown below

    def one_line(self) -> str:
        if self.hint:
            return f"error: {self.message} (hint: {self.hint})"
        return f"error: {self.message}"


class InputFileError(TinygenError):
    """A file given by the user is missing, unreadable or malformed."""


class UnsafeModelError(TinygenError):
    """A model would run code on load (Lambda layers, custom objects)."""


class CalibrationError(TinygenError):
    """Calibration or evaluation data is missing or does not fit the model."""


class UnsupportedModelError(TinygenError):
    """The model cannot run on TFLM or on the chosen board."""


class BoardError(TinygenError):
    """Unknown board, broken board profile, or the model does not fit it."""


class ToolError(TinygenError):
    """An external tool (PlatformIO, a compiler, QEMU) is missing or failed."""


class PortError(TinygenError):
    """No serial port, several candidates, or the port cannot be opened."""
