"""The typed settings: presets, the JSON saved beside the weights, and what the entry points train with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from derc.config import CONFIG_ENV, PRESET_ENV, PRESETS, Config, get_preset, preset_from_env


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_survives_its_json(name: str, tmp_path: Path) -> None:
    config = get_preset(name)
    config.save(tmp_path / "config.json")
    assert Config.load(tmp_path / "config.json") == config
    assert json.loads((tmp_path / "config.json").read_text())["preset"] == name


def test_bad_settings_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="signal_blend"):
        Config(signal_blend="average")
    with pytest.raises(ValueError, match="denoiser"):
        Config(denoiser="median")
    data = get_preset("tiny").to_dict() | {"unet_layers": 3}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"config\.json.*unet_layers"):
        Config.load(tmp_path / "config.json")
    with pytest.raises(ValueError, match=r"missing\.json"):
        Config.load(tmp_path / "missing.json")


def test_the_entry_points_train_with_a_config_file_before_a_preset(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv(PRESET_ENV, "tiny")
    assert preset_from_env() == get_preset("tiny")
    mine = dataclasses.replace(get_preset("tiny"), image_height=112, image_width=144, signal_branch=True)
    mine.save(tmp_path / "mine.json")
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "mine.json"))
    assert preset_from_env() == mine
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "gone.json"))
    with pytest.raises(ValueError, match=r"gone\.json"):
        preset_from_env()
    monkeypatch.setenv(CONFIG_ENV, "")
    monkeypatch.delenv(PRESET_ENV)
    assert preset_from_env().preset == "paper"
