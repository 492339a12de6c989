"""Registry, presets, overrides and settings."""

import pytest

from pipelines.presets import MODELS, PRESETS, TASKS, build_pipelines, get_spec
from pipelines.specs import missing_message
from settings import parse_settings


def test_every_task_has_every_preset_with_a_licence():
    for task in TASKS:
        assert set(MODELS[task]) == set(PRESETS)
        for spec in MODELS[task].values():
            assert spec.model_id and spec.licence


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid tasks: image, audio, video, text"):
        get_spec("music", "bundled")
    with pytest.raises(ValueError, match="valid presets: bundled, small, large"):
        get_spec("image", "huge")


def test_override_replaces_the_model_id():
    spec = get_spec("image", "small", model_id="someone/other-model")
    assert spec.model_id == "someone/other-model"
    assert spec.defaults == MODELS["image"]["small"].defaults


def test_missing_bundled_folder_says_how_to_get_it():
    spec = get_spec("audio", "bundled", model_id="models/not-here")
    message = missing_message("audio", spec)
    assert "models/not-here" in message and "train_audio.py" in message and "--preset small" in message
    assert missing_message("image", get_spec("image", "small")) is None  # Hub models are never "missing"


def test_building_pipelines_loads_nothing():
    pipelines = build_pipelines("large")
    assert set(pipelines) == set(TASKS) | {"understand", "translate"}
    assert all(getattr(p, "_pipe", None) is None and getattr(p, "_model", None) is None for p in pipelines.values())


def test_settings_cli_beats_env_beats_default():
    assert parse_settings([], env={}).preset == "bundled"
    assert parse_settings([], env={"PRESET": "small", "PORT": "9000"}).port == 9000
    s = parse_settings(["--preset", "large", "--image-model", "x/y", "--share", "--auth", "u:p"], env={"PRESET": "small"})
    assert (s.preset, s.overrides, s.share, s.auth) == ("large", {"image_model": "x/y"}, True, "u:p")
    qwen = "Qwen/Qwen2.5-0.5B-Instruct"
    assert parse_settings([], env={"TEXT_MODEL": qwen}).overrides == {"text_model": qwen}


def test_bad_settings_are_refused():
    with pytest.raises(SystemExit):
        parse_settings(["--preset", "medium"], env={})
    with pytest.raises(SystemExit):
        parse_settings(["--auth", "nopassword"], env={})


def test_login_slows_down_guessers():
    import time

    from fastapi import HTTPException

    from app import CLIENT, Login

    login = Login("me", "secret", limit=5, window_s=0.5)
    assert login("me", "secret")
    CLIENT.set("10.0.0.9")  # a guesser
    assert not any(login("me", f"guess{i}") for i in range(5))
    with pytest.raises(HTTPException, match=r"Too many attempts; try again in 1 s"):
        login("me", "secret")  # that address, under that name, is locked for the window
    CLIENT.set("10.0.0.1")  # the right user, elsewhere, is not
    assert login("me", "secret")
    time.sleep(0.6)
    CLIENT.set("10.0.0.9")
    assert login("me", "secret") and not login("you", "secret")
