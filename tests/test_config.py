"""raylib.config: YAML + overrides, nested sections, type coercion, clear errors, log_config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import Field, field_validator

from raylib.config import ConfigError, JobConfig, Section, describe_config, load_config, log_config


class Sampling(Section):
    n: int = Field(1, ge=1, description="samples per problem")
    temperature: float = Field(0.0, ge=0, description="sampling temperature")
    stop: list[str] = Field(default_factory=list, description="stop strings")


class Train(Section):
    lr: float = Field(1e-4, gt=0, description="learning rate")
    epochs: int = Field(1, description="passes over the data")


class DemoConfig(JobConfig):
    dataset: str = Field("humaneval", description="problem set")
    output: str = Field("runs/demo", description="output directory")
    seed: int = Field(0, description="random seed")
    dry_run: bool = Field(False, description="plan only")
    ks: list[int] = Field(default_factory=lambda: [1], description="k values for pass@k")
    extra_env: dict[str, str] = Field(default_factory=dict, description="free-form environment variables")
    sampling: Sampling = Field(default_factory=Sampling, description="generation settings")
    train: Train | None = Field(None, description="training settings; None skips training")

    @field_validator("dataset")
    @classmethod
    def known_dataset(cls, value: str) -> str:
        if value not in ("humaneval", "mbpp"):
            raise ValueError(f"unknown dataset {value!r}")
        return value


def write(tmp_path, text: str, name: str = "cfg.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_without_arguments():
    cfg = load_config(DemoConfig, [])
    assert cfg == DemoConfig()
    assert cfg.sampling.n == 1 and cfg.train is None


def test_yaml_with_nested_sections_then_overrides_win(tmp_path):
    path = write(tmp_path, "dataset: mbpp\nsampling:\n  n: 5\n  temperature: 0.2\ntrain:\n  epochs: 3\n")
    cfg = load_config(DemoConfig, ["--config", path, "sampling.n=10", "train.lr=0.5"])
    assert cfg.dataset == "mbpp"
    assert cfg.sampling.n == 10 and cfg.sampling.temperature == 0.2  # override wins, sibling kept from the file
    assert cfg.train == Train(lr=0.5, epochs=3)


def test_later_files_and_overrides_win_regardless_of_position(tmp_path):
    a = write(tmp_path, "seed: 1\nsampling: {n: 2, temperature: 0.5}\n", "a.yaml")
    b = write(tmp_path, "seed: 2\nsampling: {n: 3}\n", "b.yaml")
    cfg = load_config(DemoConfig, ["seed=9", f"--config={a}", "--config", b])
    assert cfg.seed == 9  # overrides apply after all files
    assert cfg.sampling.n == 3 and cfg.sampling.temperature == 0.5  # files deep-merge in order


def test_override_values_are_parsed_as_yaml():
    cfg = load_config(DemoConfig, ["seed=3", "dry_run=true", "ks=[1, 10]", "sampling.temperature=0.7",
                                   'sampling.stop=["\\n\\n", END]', "train.lr=1e-5"])
    assert cfg.seed == 3 and cfg.dry_run is True and cfg.ks == [1, 10]
    assert cfg.sampling.temperature == 0.7 and cfg.sampling.stop == ["\n\n", "END"]
    assert cfg.train is not None and cfg.train.lr == 1e-5  # YAML reads "1e-5" as text; pydantic makes it a float


def test_string_fields_keep_text_that_looks_like_numbers():
    cfg = load_config(DemoConfig, ["output=2024", "extra_env.PORT=8000", "extra_env.DEBUG=true"])
    assert cfg.output == "2024"
    assert cfg.extra_env == {"PORT": "8000", "DEBUG": "true"}


def test_flag_forms_map_dashes_to_underscores():
    cfg = load_config(DemoConfig, ["--dataset", "mbpp", "--seed=4", "--sampling.n", "6", "--dry-run", "--ks", "[5]"])
    assert (cfg.dataset, cfg.seed, cfg.sampling.n, cfg.dry_run, cfg.ks) == ("mbpp", 4, 6, True, [5])
    assert load_config(DemoConfig, ["--dry-run", "false"]).dry_run is False
    assert load_config(DemoConfig, ["--dry-run", "seed=2"]).seed == 2  # a bare bool flag does not eat the next arg


def test_whole_section_can_be_set_as_a_mapping():
    cfg = load_config(DemoConfig, ["train={lr: 0.1, epochs: 2}"])
    assert cfg.train == Train(lr=0.1, epochs=2)


def test_unknown_override_key_names_key_and_valid_choices():
    with pytest.raises(ConfigError) as err:
        load_config(DemoConfig, ["sampling.temprature=0.5"])
    msg = str(err.value)
    assert "'sampling.temprature'" in msg and "did you mean 'temperature'" in msg
    assert "valid keys under 'sampling': n, temperature, stop" in msg
    assert "sampling.temprature=0.5" in msg  # the argument that set it


def test_unknown_flag_is_an_error():
    with pytest.raises(ConfigError, match=r"unknown config key 'modle'.*valid keys: dataset, output"):
        load_config(DemoConfig, ["--modle", "x"])


def test_unknown_yaml_key_names_the_file(tmp_path):
    path = write(tmp_path, "train:\n  lr: 0.1\n  batch: 8\n")
    with pytest.raises(ConfigError) as err:
        load_config(DemoConfig, ["--config", path])
    msg = str(err.value)
    assert "'train.batch'" in msg and path in msg and "valid keys under 'train': lr, epochs" in msg


def test_validation_error_names_field_path_and_file(tmp_path):
    path = write(tmp_path, "sampling:\n  n: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(DemoConfig, ["--config", path])
    msg = str(err.value)
    assert "invalid DemoConfig config" in msg
    assert "sampling.n: Input should be greater than or equal to 1; got 0" in msg and path in msg


def test_validation_error_from_override_names_the_argument(tmp_path):
    path = write(tmp_path, "seed: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(DemoConfig, ["--config", path, "sampling.temperature=-1", "--dataset", "apps"])
    msg = str(err.value)
    assert "sampling.temperature: Input should be greater than or equal to 0; got -1" in msg
    assert "set by argument 'sampling.temperature=-1'" in msg
    assert "dataset: Value error, unknown dataset 'apps'" in msg and "set by argument '--dataset apps'" in msg


def test_type_error_names_field():
    with pytest.raises(ConfigError, match=r"seed: Input should be a valid integer.*got 'abc'"):
        load_config(DemoConfig, ["seed=abc"])


@pytest.mark.parametrize(
    "text, expected",
    [("- 1\n- 2\n", "must hold a mapping"), ("a: [1,\n", "cannot parse config file")],
)
def test_bad_yaml_files_are_reported(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected):
        load_config(DemoConfig, ["--config", path])


def test_missing_file_and_stray_argument_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file .*nope.yaml"):
        load_config(DemoConfig, ["--config", str(tmp_path / "nope.yaml")])
    with pytest.raises(ConfigError, match="unexpected argument 'stray'"):
        load_config(DemoConfig, ["stray"])
    with pytest.raises(ConfigError, match="'--seed' needs a value"):
        load_config(DemoConfig, ["--seed"])


def test_command_line_use_exits_2_with_the_message(capsys):
    with pytest.raises(SystemExit) as exc:
        load_config(DemoConfig, ["seed=abc"], exit_on_error=True)
    assert exc.value.code == 2
    assert "error: invalid DemoConfig config" in capsys.readouterr().err


def test_help_lists_every_key_with_description(capsys):
    with pytest.raises(SystemExit) as exc:
        load_config(DemoConfig, ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "sampling.temperature (float, default 0.0): sampling temperature" in out
    assert "train.epochs (int, default 1): passes over the data" in out
    assert describe_config(DemoConfig) in out


def test_log_config_prints_and_writes_a_reloadable_file(tmp_path, capsys):
    cfg = load_config(DemoConfig, ["sampling.n=4", "train.lr=0.01", "extra_env.A=b"])
    path = log_config(cfg, tmp_path / "out" / "nested")
    assert path == tmp_path / "out" / "nested" / "config.yaml"
    out = capsys.readouterr().out
    assert "DemoConfig (resolved)" in out and "n: 4" in out and "lr: 0.01" in out
    text = path.read_text()
    assert text.startswith("# DemoConfig resolved config\n# command: ")
    assert yaml.safe_load(text)["sampling"] == {"n": 4, "temperature": 0.0, "stop": []}
    assert load_config(DemoConfig, ["--config", str(path)]) == cfg


@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path(__file__).resolve().parent.parent
                                        .glob("configs/*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_config_loads_into_the_jobs_its_header_names(path, monkeypatch):
    """Each configs/*.yaml names its commands in its header; each of those jobs must accept the file as it is. A model
    checkpoint it names that another shipped config trains (CodePRM: codeprm_rerank.yaml reranks with the ORM that
    codeprm_orm.yaml writes) is not there before that job ran: it must be that config's `output`/model instead."""
    import importlib
    import re

    from raylib.rerank.verifiers import models

    trained = {str(Path(yaml.safe_load(p.read_text()).get("output") or "-") / "model")
               for p in path.parent.glob("*.yaml")}
    check_classifier = models.check_classifier

    def check_or_trained_here(checkpoint, labels):
        if str(checkpoint) not in trained:
            check_classifier(checkpoint, labels)

    monkeypatch.setattr(models, "check_classifier", check_or_trained_here)

    if re.search(r"^# serve run configs/" + re.escape(path.name) + r"\b", path.read_text(), re.M):
        _check_serve_config(path)  # a Ray Serve config: each app's args must be what its typed builder takes
        return
    jobs = re.findall(r"^# python jobs/(\w+)\.py --config configs/" + re.escape(path.name), path.read_text(), re.M)
    assert jobs, f"{path.name}: its header must name the command that uses it"
    for job in jobs:
        module = importlib.import_module(f"jobs.{job}")
        config_cls = next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, JobConfig)
                          and v.__module__ == module.__name__)  # the job's own config, not a base it imports
        load_config(config_cls, ["--config", str(path)])


def _check_serve_config(path) -> None:
    import importlib
    import inspect

    import yaml
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    for app in config.applications:
        module, name = app.import_path.split(":")
        builder = getattr(importlib.import_module(module), name)
        inspect.signature(builder).parameters["args"].annotation.model_validate(app.args)


def test_a_list_option_takes_every_value_up_to_the_next_option():
    cfg = load_config(DemoConfig, ["--ks", "1", "5", "10", "--seed", "2", "sampling.n=3"])
    assert cfg.ks == [1, 5, 10] and cfg.seed == 2 and cfg.sampling.n == 3
    assert load_config(DemoConfig, ["--ks", "[2, 4]"]).ks == [2, 4]  # a YAML list still works
    with pytest.raises(ConfigError, match="'--ks' needs one or more values"):
        load_config(DemoConfig, ["--ks", "--seed", "1"])
