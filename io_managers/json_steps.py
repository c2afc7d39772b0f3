"""Step outputs of recipe ops as JSON files, so a re-execution can reuse what earlier runs produced.

Each output is ``<base_dir>/<run id>/<step key>/<output>[/<mapping key>].json``: Dagster's
re-execution (from failure, or of a step selection) reads the outputs of steps it does not re-run
from the parent run's folder. JSON rather than pickle: step outputs are plain data a person can
inspect, and nothing is executed when they are read. Writes are atomic (temp file + rename);
an output above ``max_bytes`` fails the step with the size instead of filling the disk.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field


class StepOutputTooLarge(ValueError):
    pass


def to_jsonable(value: Any, path: str = "output") -> Any:
    """Plain JSON data: datetimes/dates as ISO strings, tuples as lists; anything else is an error."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{path} is a {type(value).__name__}, which is not JSON data (return dicts, lists, "
                    "strings, numbers, booleans, null)")


class JsonStepIOManager(dg.ConfigurableIOManager):
    """JSON files under ``base_dir``, keyed by run id, step key and output name."""

    base_dir: str = Field(description="Folder holding step outputs (one subfolder per run).")
    max_bytes: int = Field(default=5_000_000, description="Largest accepted step output, in bytes.")

    def _path(self, identifier: list[str]) -> Path:
        return Path(self.base_dir).joinpath(*identifier).with_suffix(".json")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None and context.dagster_type.is_nothing:
            return
        data = json.dumps(to_jsonable(obj), ensure_ascii=False, sort_keys=True).encode()
        if len(data) > self.max_bytes:
            raise StepOutputTooLarge(
                f"output {context.name!r} of {context.step_key} is {len(data):,} bytes; the limit is "
                f"{self.max_bytes:,} (YARNNN_RECIPE_MAX_OUTPUT_BYTES)")
        path = self._path(context.get_identifier())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        context.add_output_metadata({"bytes": len(data), "path": str(path)})

    def load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is None:
            raise ValueError(f"input {context.name!r} has no upstream output to load")
        path = self._path(upstream.get_identifier())
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"the output {upstream.step_key}.{upstream.name} of run {upstream.run_id} is "
                                    f"not stored at {path} (cleaned up?): re-execute from that step") from None
