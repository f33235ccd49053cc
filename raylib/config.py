"""Job configuration: one pydantic model per job, filled from YAML files plus command-line overrides.

Define the job's config (nested sections, `Field(description=...)` on every field, checks in validators):

    from pydantic import Field
    from raylib.config import JobConfig, load_config, log_config, Section

    class Sampling(Section):
        n: int = Field(1, ge=1, description="samples per problem")
        temperature: float = Field(0.0, ge=0, description="sampling temperature")

    class EvalConfig(JobConfig):
        dataset: str = Field("humaneval", description="problem set to evaluate")
        output: str = Field("runs/eval", description="output directory")
        sampling: Sampling = Field(default_factory=Sampling, description="generation settings")

    cfg = load_config(EvalConfig)   # parses sys.argv[1:]; on a bad argument prints the error and exits 2
    log_config(cfg, cfg.output)     # prints the resolved config and writes OUTPUT/config.yaml

Command line (all forms may be mixed; files are merged in order, then overrides in order, later wins):

    python jobs/evaluate.py --config configs/eval.yaml sampling.n=10 sampling.temperature=0.8
    python jobs/evaluate.py --output runs/x --sampling.n 10 --some-flag     # `-` -> `_`; a bare bool flag is true
    python jobs/evaluate.py --help                                          # every key, its type, default, description

Values are parsed as YAML (`3`, `0.5`, `true`, `null`, `[1, 2]`, `{a: 1}`), except that a value the field's type
rejects in parsed form but accepts as text stays text (`--output 2024` gives the string "2024").
Unknown keys raise `ConfigError` naming the key, the valid keys beside it and the file or argument that set it;
validation errors name each field path and where its value came from.
"""

from __future__ import annotations

import difflib
import inspect
import re
import shlex
import sys
import types
import typing
from pathlib import Path
from typing import Any, TextIO, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = ["ConfigError", "ConsoleJobConfig", "JobConfig", "Section", "config_field", "deep_merge", "describe_config",
           "load_config", "log_config"]

C = TypeVar("C", bound=BaseModel)

_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


class ConfigError(ValueError):
    """A config could not be loaded: unknown key, bad YAML, or a value that fails validation."""


class JobConfig(BaseModel):
    """Base class of a job's top-level config. Unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ConsoleJobConfig(JobConfig):
    """Base class of a job whose libraries talk (Ray, vLLM, DeepSpeed): it runs in `raylib.console.job_console`, so
    its console shows the config, one progress bar and its result, and everything else goes to OUTPUT/job.log."""

    verbose: bool = Field(False, description="Show library logs (Ray, vLLM, ...) live; they always go to "
                          "OUTPUT/job.log.")


class Section(BaseModel):
    """Base class of a nested config section (same rules as `JobConfig`)."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------------- public API


def load_config(config_cls: type[C], argv: list[str] | None = None, *, exit_on_error: bool | None = None) -> C:
    """Build `config_cls` from `--config FILE.yaml` files and `key.sub=value` / `--key value` overrides.

    Args:
        config_cls: the job's pydantic model (normally a `JobConfig` subclass).
        argv: arguments to parse; `None` means `sys.argv[1:]`.
        exit_on_error: print a `ConfigError` to stderr and exit with status 2 instead of raising it.
            Defaults to True when `argv` is None (command-line use) and False otherwise (tests, library use).

    Returns:
        The validated config. `-h`/`--help` prints `describe_config(config_cls)` and exits 0.

    Raises:
        ConfigError: on an unknown key, an unreadable file or a value that fails validation.
    """
    if exit_on_error is None:
        exit_on_error = argv is None
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        return _load(config_cls, args)
    except ConfigError as err:
        if not exit_on_error:
            raise
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def log_config(cfg: BaseModel, output_dir: str | Path, file: TextIO | None = None) -> Path:
    """Print `cfg` as YAML under a header (to `file`, default stdout) and write it to `output_dir/config.yaml`.

    The file starts with comments naming the config class and the command line; it loads back with `--config`.

    Returns:
        The path of the written file.
    """
    body = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    name = type(cfg).__name__
    file = file or sys.stdout
    print(f"==== {name} (resolved) " + "=" * max(0, 60 - len(name)), file=file)
    print(body, end="" if body.endswith("\n") else "\n", file=file)
    print("=" * 72, file=file, flush=True)
    from raylib.files import atomic_write

    return atomic_write(Path(output_dir) / "config.yaml",
                        f"# {name} resolved config\n# command: python {shlex.join(sys.argv)}\n{body}")


def config_field(config_cls: type[BaseModel], key: str) -> Any:
    """The annotation of the field at a dotted `key` (e.g. "train.optim.lr") of a job's config; ConfigError naming
    the key (and the closest known ones) when the config has no such field."""
    return _annotation_at(config_cls, _split_key(key), f"in key {key!r}")


def describe_config(config_cls: type[BaseModel], prefix: str = "") -> str:
    """One line per key (dotted for nested sections): type, default and description; the text of `--help`."""
    lines = []
    for name, field in config_cls.model_fields.items():
        key = prefix + name
        sub = _model_of(field.annotation)
        desc = field.description or ""
        if sub is not None:
            lines.append(f"  {key}: {desc}")
            lines.append(describe_config(sub, key + "."))
            continue
        default = "required" if field.is_required() else f"default {field.get_default(call_default_factory=True)!r}"
        lines.append(f"  {key} ({_type_name(field.annotation)}, {default}): {desc}")
    return "\n".join(line for line in lines if line)


# ------------------------------------------------------------------------------------------------- internals


def _load(cls: type[C], args: list[str]) -> C:
    files, overrides = _parse_args(cls, args)
    data: dict[str, Any] = {}
    for path in files:
        file_data = _read_yaml(path)
        _check_keys(cls, file_data, (), f"in config file {path}")
        deep_merge(data, file_data)
    for keys, raw, arg in overrides:
        annotation = _annotation_at(cls, keys, f"in argument {arg!r}")
        _set_path(data, keys, _parse_value(raw, annotation))
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation(cls, err, files, overrides)) from None


def _parse_args(cls: type[BaseModel], args: list[str]) -> tuple[list[str], list[tuple[list[str], str, str]]]:
    """Split args into config files and overrides `(keys, raw value, the argument as written)`."""
    files: list[str] = []
    overrides: list[tuple[list[str], str | list[str], str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            print(f"{cls.__name__} keys (set with --config FILE.yaml, key.sub=value or --key value):")
            print(describe_config(cls))
            raise SystemExit(0)
        if arg == "--config" or arg.startswith("--config="):
            if "=" in arg:
                files.append(arg.split("=", 1)[1])
            elif i + 1 < len(args):
                i += 1
                files.append(args[i])
            else:
                raise ConfigError("--config needs a path to a YAML file")
        elif arg.startswith("--") and len(arg) > 2:
            body = arg[2:]
            if "=" in body:
                key, raw = body.split("=", 1)
                written = arg
            else:
                key = body
                keys = _split_key(key)
                nxt = args[i + 1] if i + 1 < len(args) else None
                annotation = _annotation_at(cls, keys, f"in argument {arg!r}")
                is_flag = _is_bool(annotation)
                if _is_list(annotation):  # --key a b c: the values up to the next option or key=value
                    values = []
                    while i + 1 < len(args) and not args[i + 1].startswith("--") and not _OVERRIDE.match(args[i + 1]):
                        i += 1
                        values.append(args[i])
                    if not values:
                        raise ConfigError(f"argument {arg!r} needs one or more values")
                    overrides.append((keys, values, " ".join([arg, *values])))
                    i += 1
                    continue
                if nxt is None or nxt.startswith("--") or (is_flag and nxt.lower() not in _BOOL_WORDS):
                    if not is_flag:
                        raise ConfigError(f"argument {arg!r} needs a value")
                    raw, written = "true", arg
                else:
                    i += 1
                    raw, written = nxt, f"{arg} {nxt}"
            overrides.append((_split_key(key), raw, written))
        elif "=" in arg and not arg.startswith("-"):
            key, raw = arg.split("=", 1)
            overrides.append((_split_key(key), raw, arg))
        else:
            raise ConfigError(f"unexpected argument {arg!r}: expected --config FILE.yaml, key.sub=value or --key value")
        i += 1
    return files, overrides


def _split_key(key: str) -> list[str]:
    keys = key.replace("-", "_").split(".")
    if not all(keys):
        raise ConfigError(f"malformed config key {key!r}")
    return keys


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse config file {path}: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model behind a field annotation (`M`, `M | None`), or None for anything else."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _model_of(members[0])
    return None


_OVERRIDE = re.compile(r"^[A-Za-z_][\w\-]*(\.[\w\-]+)*=")  # a key.sub=value argument


def _list_of(annotation: Any) -> Any:
    """The `list[...]` of a list field (`list[str]`, `list[str] | None`), else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _list_of(members[0]) if len(members) == 1 else None
    return annotation if typing.get_origin(annotation) is list else None


def _is_list(annotation: Any) -> bool:
    """A list field: `--key` takes every value up to the next option."""
    return _list_of(annotation) is not None


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)] == [bool]
    return False


def _unknown_key(model: type[BaseModel], keys: list[str] | tuple[str, ...], source: str) -> ConfigError:
    dotted = ".".join(map(str, keys))
    parent = ".".join(map(str, keys[:-1]))
    valid = list(model.model_fields)
    close = difflib.get_close_matches(str(keys[-1]), valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    where = f" under {parent!r}" if parent else ""
    return ConfigError(f"unknown config key {dotted!r} ({source}){hint} valid keys{where}: {', '.join(valid)}")


def _annotation_at(cls: type[BaseModel], keys: list[str], source: str) -> Any:
    """The annotation of the field at `keys` (V inside a `dict[K, V]`; None if untyped). Unknown keys raise."""
    model: type[BaseModel] | None = cls
    annotation: Any = None
    for depth, key in enumerate(keys):
        if model is not None:
            if key not in model.model_fields:
                raise _unknown_key(model, keys[: depth + 1], source)
            annotation = model.model_fields[key].annotation
        elif typing.get_origin(annotation) is dict and len(typing.get_args(annotation)) == 2:
            annotation = typing.get_args(annotation)[1]  # a key inside a dict[K, V] field holds a V
        else:
            return None
        model = _model_of(annotation)
    return annotation


def _check_keys(model: type[BaseModel], data: dict, prefix: tuple, source: str) -> None:
    for key, value in data.items():
        if key not in model.model_fields:
            raise _unknown_key(model, (*prefix, key), source)
        sub = _model_of(model.model_fields[key].annotation)
        if sub is not None and isinstance(value, dict):
            _check_keys(sub, value, (*prefix, key), source)


def _parse_value(raw: str | list[str], annotation: Any) -> Any:
    if isinstance(raw, list):  # --key a b c (or --key '[a, b]')
        if len(raw) == 1 and isinstance(whole := _parse_value(raw[0], annotation), list):
            return whole
        item = (typing.get_args(_list_of(annotation)) or (None,))[0]
        return [_parse_value(value, item) for value in raw]
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(parsed, str) or annotation is None:
        return parsed
    adapter = TypeAdapter(annotation)
    for candidate in (parsed, raw):
        try:
            adapter.validate_python(candidate)
            return candidate
        except ValidationError:
            pass
    return parsed  # fails validation later, with the parsed value in the message


def deep_merge(into: dict, new: dict) -> None:
    """Merge `new` into `into` in place: nested dicts key by key, anything else replaced."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value


def _set_path(data: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        if not isinstance(data.get(key), dict):
            data[key] = {}
        data = data[key]
    data[keys[-1]] = value


def _format_validation(cls: type[BaseModel], err: ValidationError, files: list[str], overrides: list) -> str:
    lines = [f"invalid {cls.__name__} config:"]
    for e in err.errors():
        loc = [str(part) for part in e["loc"]]
        path = ".".join(loc) or "(whole config)"
        setters = [arg for keys, _, arg in overrides if keys == loc[: len(keys)] or loc == keys[: len(loc)]]
        if setters and loc:
            source = f"set by argument {setters[-1]!r}"
        elif files:
            source = f"config file {', '.join(files)}"
        else:
            source = "defaults and arguments"
        got = "" if e["type"] == "missing" else f"; got {_short(e.get('input'))}"
        lines.append(f"  {path}: {e['msg']}{got} ({source})")
    return "\n".join(lines)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(annotation: Any) -> str:
    if inspect.isclass(annotation) and typing.get_origin(annotation) is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")
