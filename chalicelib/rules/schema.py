"""JSON Schemas of the rule files, generated from the models (``siyu rules schema``).

Each rule file starts with ``"$schema": "./schema/<name>.schema.json"`` so an editor validates
and completes while ops type. A test fails when a committed schema is stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.rules.models import FILES


def schema_name(file_name: str) -> str:
    return file_name.removesuffix(".json") + ".schema.json"


def generate() -> dict[str, str]:
    """Schema file name → its text."""
    out = {}
    for file_name, model in sorted(FILES.items()):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_name(file_name), **schema}
        out[schema_name(file_name)] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    return out


def write(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    return written
