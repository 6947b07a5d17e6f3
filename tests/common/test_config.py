"""Configuration: one YAML file plus environment overrides; a mistake is named at start."""
import pytest

from hebi_common.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "hebi.yaml"
    path.write_text(text)
    return path


def test_defaults_without_a_file():
    config = load_config(None, environ={})
    assert config.gateway.port == 8000
    assert config.launcher.backend == "local"


def test_file_values_and_environment_overrides(tmp_path):
    path = write(tmp_path, "gateway:\n  port: 9000\nsession:\n  roots:\n    data: {path: \"/srv/{user}\"}\n")
    config = load_config(path, environ={"HEBI_GATEWAY__HOST": "0.0.0.0", "HEBI_SESSION__MAX_UPLOAD_BYTES": "1024",
                                        "HEBI_CONFIG": "ignored-not-an-override"})
    assert config.gateway.port == 9000
    assert config.gateway.host == "0.0.0.0"
    assert config.session.max_upload_bytes == 1024
    assert config.session.roots["data"].path == "/srv/{user}"


@pytest.mark.parametrize("text, named", [
    ("gateway:\n  prot: 9000\n", "gateway.prot: unknown key"),
    ("gateway:\n  port: lots\n", "gateway.port"),
    ("gateway:\n  port: 70000\n", "gateway.port"),
    ("launcher:\n  backend: docker\n", "launcher.backend"),
    ("session:\n  roots:\n    home: {path: /x}\n", "unknown root 'home'"),
    ("session:\n  roots:\n    data: {writable: true}\n", "session.roots.data.path"),
    ("sesion: {}\n", "sesion: unknown key"),
    ("- just\n- a list\n", "the top level must be a mapping"),
    ("gateway: [\n", "not valid YAML (line"),
])
def test_mistakes_are_named(tmp_path, text, named):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text), environ={})
    assert named in str(error.value)
    assert "Traceback" not in str(error.value)


def test_bad_environment_override_is_named(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(None, environ={"HEBI_GATEWAY__PORT": "eighty"})
    assert "gateway.port" in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_config(None, environ={"HEBI_GATEWAY__PORT__X": "1"})
    assert "HEBI_GATEWAY__PORT__X" in str(error.value) or "gateway.port" in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "nope.yaml", environ={})
    assert "cannot read" in str(error.value)
