"""User-facing errors. The CLI prints their message on one line and exits non-zero."""

from __future__ import annotations


class EncoderzooError(Exception):
    """A failure caused by input or options, explained in one line: what, where, how to fix."""

    exit_code = 2


def with_note(err: EncoderzooError, note: str) -> EncoderzooError:
    """The same error (class, exit code) with `note` appended to its one line."""
    err.args = (f"{str(err).rstrip('. ')}; {note}",)
    return err


class ConfigError(EncoderzooError):
    """An unknown name or an impossible option."""


class DataError(EncoderzooError):
    """A dataset file that cannot be read as its task expects."""


class CheckpointError(EncoderzooError):
    """A checkpoint folder or hub id that cannot be loaded safely."""


class InputError(EncoderzooError):
    """An input to a loaded or served model that its task cannot read (HTTP 400 when served)."""


class ArtifactError(EncoderzooError):
    """A stage's input artifact (features, ONNX file, outputs) is missing or unreadable."""


class ExportParityError(EncoderzooError):
    """An exported graph disagrees with PyTorch beyond the recipe's tolerance."""

    def __init__(
        self, *, model: str, output: str, shape: tuple[int, ...], max_abs_diff: float,
        atol: float, inputs: str,
    ) -> None:
        self.output = output
        self.shape = shape
        self.max_abs_diff = max_abs_diff
        self.atol = atol
        super().__init__(
            f"{model}: output '{output}' {list(shape)} differs from PyTorch by max |Δ| "
            f"{max_abs_diff:.3g} > tolerance {atol:.3g} on {inputs}"
        )
