"""Versioned prompt files: the texts a synthetic-data method or an LLM judge sends, kept out of the code.

    from raylib.synth.prompts import load_prompts
    prompts = load_prompts("commit_instruct")                    # the shipped raylib/synth/prompts/commit_instruct.yaml
    prompts = load_prompts("commit_instruct", "my_prompts.yaml")  # a user's own file with the same keys
    prompts.fill("explain", message=..., language="python", old_code=..., new_code=...)
    prompts.version                                               # recorded in every pair's provenance

A file is YAML with `name`, `version` (an integer: bump it when a text changes), `system` (may be empty) and one
text per turn. Placeholders are `{name}`; only the names a method declares are filled, so other braces (a dict
literal in an example) stay as written. A file lacking a text or a placeholder the method needs is refused when
loaded, naming the file and what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import yaml

__all__ = ["PLACEHOLDERS", "PromptSet", "load_prompts"]

SHIPPED = Path(__file__).with_name("prompts")

# Per prompt file: {text key: the placeholders it must use}
PLACEHOLDERS: dict[str, dict[str, set[str]]] = {
    "commit_instruct": {"explain": {"message", "language", "old_code", "new_code"}, "decide": set(),
                        "construct": {"language"}},
    "critic_evol": {"critic": {"instruction", "language", "attempt"}},
    "codefavor_judge": {"judge": {"instruction", "code_a", "code_b", "criteria", "language"}},
    "reflection": {"code": {"problem"}, "reflect": {"execution", "language"}, "final": {"problem"}},
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclasses.dataclass(frozen=True)
class PromptSet:
    name: str
    version: int
    system: str
    texts: dict[str, str]
    path: str

    @property
    def label(self) -> str:
        """name@version, as provenance records it."""
        return f"{self.name}@{self.version}"

    @property
    def sha(self) -> str:
        """A hash of every text: an output directory's answers belong to one (a text edited without a new version
        still counts as other prompts)."""
        return hashlib.sha256(json.dumps([self.system, self.texts], sort_keys=True).encode()).hexdigest()[:16]

    def fill(self, key: str, **values: str) -> str:
        """The text `key` with its declared placeholders replaced by `values` (each must be given)."""
        names = PLACEHOLDERS[_kind(self.name)][key]
        missing = names - values.keys()
        if missing:
            raise KeyError(f"prompt {key!r} needs {sorted(missing)}")
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in names else m.group(0),
                                self.texts[key]).strip()

    def messages(self, *turns: str) -> list[dict]:
        """Chat messages: the system text (when not empty), then `turns` alternating user / assistant."""
        head = [{"role": "system", "content": self.system}] if self.system.strip() else []
        return head + [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def _kind(name: str) -> str:
    return name.replace("-", "_")


def load_prompts(kind: str, path: str | Path | None = None) -> PromptSet:
    """The prompt file of `kind` (a key of PLACEHOLDERS): `path`, or the shipped one.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not a mapping, lacks name/version/a text, or a text lacks a placeholder it needs.
    """
    file = Path(path) if path else SHIPPED / f"{kind}.yaml"
    if not file.is_file():
        raise FileNotFoundError(f"prompt file {file} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{file}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a mapping with name, version, system and the texts")
    needed = PLACEHOLDERS[kind]
    if _kind(str(data.get("name", ""))) != kind:
        raise ValueError(f"{file}: name is {data.get('name')!r}, expected {kind.replace('_', '-')!r}")
    if not isinstance(data.get("version"), int) or isinstance(data.get("version"), bool):
        raise ValueError(f"{file}: version must be an integer (bump it when a text changes)")
    for key, names in needed.items():
        text = data.get(key)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{file}: missing text {key!r} (expected keys: {sorted(needed)})")
        absent = names - set(_PLACEHOLDER.findall(text))
        if absent:
            raise ValueError(f"{file}: text {key!r} lacks placeholder(s) {sorted('{' + n + '}' for n in absent)}")
    system = data.get("system") or ""
    if not isinstance(system, str):
        raise ValueError(f"{file}: system must be a string (may be empty)")
    return PromptSet(name=data["name"], version=data["version"], system=system,
                     texts={key: data[key] for key in needed}, path=str(file))
