"""`hybridclf deploy`: Dockerfile, docker-compose.yml and systemd unit files."""

import json
import re
import shutil
from pathlib import Path

import pytest

import hybridclf
from hybridclf.cli import main
from hybridclf.deploy import write_deployment


@pytest.fixture(scope="module")
def model_dir(texture_folder, tmp_path_factory):
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model

    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    folder = tmp_path_factory.mktemp("deploy_model")
    save_model(pipe.fit(paths, labels), folder)
    return folder


def _parse_unit(text):
    """Sections of a systemd unit: {section: {key: [values]}}; strict syntax."""
    sections, current = {}, None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if header:
            assert header.group(1) not in sections, f"line {number}: {line}"
            current = sections.setdefault(header.group(1), {})
            continue
        match = re.fullmatch(r"([A-Za-z]+)=(.*)", line)
        assert match and current is not None, f"line {number}: {line!r}"
        current.setdefault(match.group(1), []).append(match.group(2))
    return sections


def _instructions(capsys):
    lines = capsys.readouterr().out.splitlines()
    return lines[lines.index("Start it with:") + 1].strip()


def test_docker(model_dir, tmp_path, capsys):
    out = tmp_path / "new" / "docker"
    assert main(["deploy", "--type", "docker", "--output-dir", str(out),
                 "--model-dir", str(model_dir), "--api-key-env", "MY_KEY"]) == 0
    command = _instructions(capsys)
    assert command.startswith(f'docker build -t hybridclf-serve "{out}"')
    assert "docker run" in command and "-e MY_KEY" in command
    assert command in (out / "README.txt").read_text()
    text = (out / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") == 2  # multi-stage
    assert "COPY --from=build" in text
    # a numeric user, not root: Kubernetes' runAsNonRoot starts it
    user = re.search(r"\nUSER (\d+):(\d+)\n", text)
    assert user and user.group(1) == user.group(2) != "0"
    assert f"useradd --system --uid {user.group(1)} --gid {user.group(1)}" in text
    assert "HEALTHCHECK" in text and "/ready" in text
    cmd = json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])
    assert cmd[:4] == ["hybridclf", "serve", "--model-dir", "/models/model"]
    assert cmd[-2:] == ["--api-key-env", "MY_KEY"]
    assert (out / "model" / "model.json").is_file()
    assert "!model/" in (out / ".dockerignore").read_text()
    for limit in ("--memory 2g", "--cpus 2", "--pids-limit 256", "--cap-drop ALL",
                  "--security-opt no-new-privileges", "--read-only"):
        assert f" {limit} " in command


def test_the_image_pins_the_versions_the_model_records(model_dir, tmp_path):
    from hybridclf.persistence import read_model_info

    versions = read_model_info(model_dir)["library_versions"]
    write_deployment("docker", tmp_path, model_dir, allow_pickle=True)
    text = (tmp_path / "Dockerfile").read_text()
    install = next(ln for ln in text.splitlines() if "pip install" in ln)
    for name in ("scikit-learn", "numpy", "skops", "imbalanced-learn"):
        assert f'"{name}=={versions[name]}"' in install
    major, minor = versions["python"].split(".")[:2]
    assert text.count(f"FROM python:{major}.{minor}-slim") == 2
    cmd = json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])
    assert cmd[-1] == "--allow-pickle"


def _name(requirement):
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return canonicalize_name(Requirement(requirement).name)


def test_the_image_installs_pyprojects_dependencies_but_the_training_ones():
    """The image installs hybridclf with --no-deps and _SERVE_REQUIREMENTS: they
    are pyproject.toml's dependencies and "serve" extra, specifiers and all,
    but for _TRAINING_ONLY (torch, ...); a dependency added to pyproject.toml
    fails here until it is put in one list or the other."""
    tomllib = pytest.importorskip("tomllib")
    from hybridclf.deploy._templates import _SERVE_REQUIREMENTS, _TRAINING_ONLY

    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["serve"]
    assert sorted(_SERVE_REQUIREMENTS) == sorted(
        r for r in declared if _name(r) not in _TRAINING_ONLY)
    assert set(_TRAINING_ONLY) < {_name(r) for r in declared}
    assert {"torch", "torchvision"} <= set(_TRAINING_ONLY)


def test_the_image_installs_no_torch(model_dir, tmp_path):
    from hybridclf.deploy._templates import _SERVE_REQUIREMENTS, _TRAINING_ONLY

    write_deployment("docker", tmp_path, model_dir)
    text = (tmp_path / "Dockerfile").read_text()
    run = text.split("\nRUN pip install ", 1)[1].split("\n\n", 1)[0]
    installs = [part.split() for part in run.replace("\\\n", " ").split("&&")]
    assert len(installs) == 2
    first, second = installs
    assert "--no-deps" not in first and second[:3] == ["pip", "install", "--no-deps"]
    assert second[-1] == f'"hybridclf=={hybridclf.__version__}"'
    asked = [word.strip('"') for word in first + second if word.startswith('"')]
    assert set(_SERVE_REQUIREMENTS) < set(asked)
    assert not {_name(r) for r in asked} & set(_TRAINING_ONLY)


# a process where none of _TRAINING_ONLY imports, as in the image: it serves a
# model with a CNN block and answers one /predict/file
_SERVE_WITHOUT = """\
import sys

blocked = set(sys.argv[3].split(","))

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")

sys.meta_path.insert(0, Blocked())
from fastapi.testclient import TestClient
from hybridclf.serve import create_app

with TestClient(create_app(sys.argv[1])) as client:
    with open(sys.argv[2], "rb") as photo:
        answer = client.post("/predict/file", files={"file": photo})
print(answer.status_code, answer.json()["predicted_class"])
"""


def test_the_packages_of_the_image_serve_a_cnn_model(texture_folder, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import subprocess
    import sys

    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model
    from hybridclf.deploy._templates import _TRAINING_ONLY

    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["cnn", "color"]).set_params(
        load__size=32, features__cnn__extract__weights=None,
        features__cnn__extract__image_size=32,
        features__cnn__extract__flip_tta=False)
    save_model(pipe.fit(paths, labels), tmp_path / "model")
    modules = ",".join(name.replace("-", "_") for name in _TRAINING_ONLY)
    out = subprocess.run([sys.executable, "-c", _SERVE_WITHOUT,
                          str(tmp_path / "model"), str(paths[0]), modules],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["200", str(labels[0])]


def test_existing_files_are_kept_without_force(model_dir, tmp_path, capsys):
    (tmp_path / "Dockerfile").write_text("mine")
    assert main(["deploy", "--type", "docker", "--output-dir", str(tmp_path),
                 "--model-dir", str(model_dir)]) == 1
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "Dockerfile").read_text() == "mine"
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stale.bin").write_text("old")
    assert main(["deploy", "--type", "docker", "--output-dir", str(tmp_path),
                 "--model-dir", str(model_dir), "--force"]) == 0
    assert (tmp_path / "Dockerfile").read_text() != "mine"
    assert not (tmp_path / "model" / "stale.bin").exists()


@pytest.mark.parametrize("kind", ["docker", "compose"])
def test_every_folder_the_image_copies_holds_a_file(model_dir, tmp_path, kind):
    """git keeps files, not folders: an empty wheels/ was gone from a checkout
    of the deployment, and `COPY wheels/` failed the build."""
    write_deployment(kind, tmp_path, model_dir)
    text = (tmp_path / "Dockerfile").read_text()
    sources = [line.split()[-2] for line in text.splitlines()
               if line.startswith("COPY ") and "--from=" not in line]
    assert sorted(sources) == ["model/", "wheels/"]
    for source in sources:
        assert any(p.is_file() for p in (tmp_path / source).rglob("*")), source
    assert "pip wheel --no-deps" in (tmp_path / "wheels" / "README.txt").read_text()


def test_writing_again_to_serve_the_model_copy_keeps_it(model_dir, tmp_path):
    """Deploying the copy an earlier deploy made (to change an option) with
    --force deleted it, then failed to copy it."""
    from hybridclf import load_model

    write_deployment("compose", tmp_path, model_dir)
    write_deployment("compose", tmp_path, tmp_path / "model", port=9000,
                     force=True)
    assert "127.0.0.1:9000:8000" in (tmp_path / "docker-compose.yml").read_text()
    assert load_model(tmp_path / "model").classes_.tolist() == [
        "brick", "grass", "gravel"]
    inner = tmp_path / "model" / "inner"
    shutil.copytree(model_dir, inner)
    with pytest.raises(ValueError, match="inside .*choose another output folder"):
        write_deployment("docker", tmp_path, inner, force=True)
    assert load_model(inner).classes_.tolist() == ["brick", "grass", "gravel"]


def test_compose_yaml(model_dir, tmp_path):
    out = tmp_path / "compose"
    write_deployment("compose", out, model_dir, port=9000)
    text = (out / "docker-compose.yml").read_text()
    assert 'mem_limit: "2g"' in text and "pids_limit: 256" in text
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        service = yaml.safe_load(text)["services"]["hybridclf-serve"]
        assert service["ports"] == ["127.0.0.1:9000:8000"]
        assert service["healthcheck"]["test"][0] == "CMD"
        assert service["build"]["dockerfile"] == "Dockerfile"
    # the structure, textually (checked also without pyyaml)
    lines = text.splitlines()
    assert lines[:2] == ["services:", "  hybridclf-serve:"]
    for line in lines[2:]:
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0 and indent >= 4, line
    assert '      - "127.0.0.1:9000:8000"' in lines
    health = [x for x in lines if x.startswith("      test: ")][0]
    test = json.loads(health.split(": ", 1)[1])  # JSON flow style is YAML
    assert test[0] == "CMD" and "/ready" in test[-1]
    assert "    healthcheck:" in lines and "    build:" in lines
    readme = (out / "README.txt").read_text()
    assert f'docker compose -f "{out}/docker-compose.yml" up -d --build' in readme
    assert (out / "Dockerfile").is_file()


def test_systemd_unit(model_dir, tmp_path, capsys):
    out = tmp_path / "unit"
    assert main(["deploy", "--type", "systemd", "--output-dir", str(out),
                 "--model-dir", str(model_dir), "--port", "8123",
                 "--workers", "2"]) == 0
    command = _instructions(capsys)
    assert "systemctl enable --now hybridclf-serve.service" in command
    unit = _parse_unit((out / "hybridclf-serve.service").read_text())
    assert list(unit) == ["Unit", "Service", "Install"]
    service = {k: v[-1] for k, v in unit["Service"].items()}
    assert "HYBRIDCLF_CACHE_DIR=/var/cache/hybridclf" in unit["Service"][
        "Environment"]
    assert service["User"] == "hybridclf"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["Restart"] == "on-failure"
    assert service["MemoryMax"] == "4G" and service["TasksMax"] == "256"
    exec_start = service["ExecStart"]
    assert exec_start.split('" ', 1)[1].startswith(
        f'serve --model-dir "{model_dir}" --host 127.0.0.1 --port 8123 --workers 2')
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.fixture
def passable_folder():
    """A new folder that others may pass, and every folder above it."""
    import tempfile

    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    if any(not p.stat().st_mode & 0o001 for p in folder.parents):
        shutil.rmtree(folder)
        pytest.skip(f"others may not pass the folders above {folder}")
    yield folder
    shutil.rmtree(folder)


def test_systemd_warns_of_a_model_its_user_cannot_reach(model_dir, passable_folder,
                                                        tmp_path, caplog):
    """A home folder of mode 0700 (Debian 12's default) or a model saved under
    umask 077: the unit's user cannot read the model, and the service failed
    at its start with no word from deploy."""
    home = passable_folder / "home"
    shutil.copytree(model_dir, home / "model")
    model = home / "model"

    def warned():
        caplog.clear()
        with caplog.at_level("WARNING", logger="hybridclf"):
            write_deployment("systemd", tmp_path, model, force=True)
        return [r.getMessage() for r in caplog.records
                if f"cannot reach {model}:" in r.getMessage()]

    assert warned() == []
    home.chmod(0o700)
    (message,) = warned()
    assert f"{home} is drwx------ (others may not pass it)" in message
    assert "'hybridclf'" in message and "/srv/hybridclf" in message
    home.chmod(0o755)
    (model / "model.json").chmod(0o600)
    (message,) = warned()
    assert f"{model / 'model.json'} is -rw------- (others may not read it)" in message


def test_systemd_reload_signals_the_main_process_only(model_dir, tmp_path):
    # the unit had no ExecReload: 'systemctl reload' was refused, and
    # 'systemctl kill -s HUP' signals every process of the unit, which kills
    # uvicorn's workers (they do not handle SIGHUP) with their requests
    write_deployment("systemd", tmp_path, model_dir, workers=2)
    unit = _parse_unit((tmp_path / "hybridclf-serve.service").read_text())
    assert unit["Service"]["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    readme = (tmp_path / "README.txt").read_text()
    assert "sudo systemctl reload hybridclf-serve.service" in readme


def test_containers_publish_on_the_host_asked_for(model_dir, tmp_path):
    # 'deploy --type docker --host 0.0.0.0' (for other machines) published the
    # port on 127.0.0.1 only, and README.txt checked a bound address on loopback
    docker = write_deployment("docker", tmp_path / "d", model_dir, host="0.0.0.0",
                              port=9000)
    assert " -p 0.0.0.0:9000:8000 " in docker["command"]
    write_deployment("compose", tmp_path / "c", model_dir, host="::", port=9000)
    assert '      - "[::]:9000:8000"' in (
        tmp_path / "c" / "docker-compose.yml").read_text().splitlines()
    write_deployment("systemd", tmp_path / "s", model_dir, host="10.0.0.5")
    assert "curl http://10.0.0.5:8000/health" in (
        tmp_path / "s" / "README.txt").read_text()
    default = write_deployment("docker", tmp_path / "l", model_dir)
    assert " -p 127.0.0.1:8000:8000 " in default["command"]


def test_the_served_names_are_checked_in_containers_too(model_dir, tmp_path):
    # a container sees its requests arrive on its own address, not loopback,
    # so the service's default Host check did not apply: a page whose name
    # pointed at 127.0.0.1 reached the published port (DNS rebinding)
    def served(folder):
        text = (folder / "Dockerfile").read_text()
        return json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])

    write_deployment("docker", tmp_path / "d", model_dir)
    assert served(tmp_path / "d")[-2:] == ["--allowed-hosts", "localhost"]
    write_deployment("compose", tmp_path / "c", model_dir, host="0.0.0.0",
                     allowed_hosts=["models.example.com", "*.lan"])
    assert served(tmp_path / "c")[-3:] == ["--allowed-hosts", "models.example.com",
                                           "*.lan"]
    assert main(["deploy", "--type", "systemd", "--output-dir", str(tmp_path / "s"),
                 "--model-dir", str(model_dir), "--host", "0.0.0.0",
                 "--allowed-hosts", "models.example.com"]) == 0
    unit = _parse_unit((tmp_path / "s" / "hybridclf-serve.service").read_text())
    assert unit["Service"]["ExecStart"][-1].endswith(
        "--allowed-hosts models.example.com")
    with pytest.raises(ValueError, match="'allowed_hosts' parameter"):
        write_deployment("docker", tmp_path / "x", model_dir,
                         allowed_hosts=["a b"])


def _served_commands(kind, out):
    """The serve command line(s) and environment a deployment of ``kind``
    wrote: the Dockerfile's CMD (docker, compose), the unit's ExecStart
    (systemd), the printed command and docker-compose.yml's text."""
    if kind == "systemd":
        unit = _parse_unit((out / "hybridclf-serve.service").read_text())
        return unit["Service"]["ExecStart"][0].split(), unit["Service"]
    text = (out / "Dockerfile").read_text()
    cmd = json.loads(text.split("\nCMD ", 1)[1].splitlines()[0])
    compose = out / "docker-compose.yml"
    return cmd, compose.read_text() if compose.exists() else ""


@pytest.mark.parametrize("kind", ["docker", "compose", "systemd"])
def test_the_admin_key_is_passed_by_name_to_serve(model_dir, tmp_path, capsys,
                                                  kind):
    # deploy had no --admin-key-env: a deployment could not set the key that
    # POST /admin/reload needs from another machine (the README told the
    # deployer to edit the written files by hand)
    out = tmp_path / "keyed"
    assert main(["deploy", "--type", kind, "--output-dir", str(out),
                 "--model-dir", str(model_dir), "--api-key-env", "MY_KEY",
                 "--admin-key-env", "MY_ADMIN_KEY"]) == 0
    command = _instructions(capsys)
    cmd, env = _served_commands(kind, out)
    i = cmd.index("--admin-key-env")
    assert cmd[i + 1] == "MY_ADMIN_KEY"
    assert "--api-key-env" in cmd
    readme = (out / "README.txt").read_text()
    assert "MY_ADMIN_KEY=<admin key>" in readme and "X-Admin-Key" in readme
    if kind == "docker":
        assert "-e MY_KEY " in command and "-e MY_ADMIN_KEY " in command
    elif kind == "compose":
        assert ('      MY_ADMIN_KEY: "${MY_ADMIN_KEY:?set the admin key}"'
                in env.splitlines())
    else:
        assert env["EnvironmentFile"] == ["/etc/hybridclf/serve.env"]
    # without it, nothing of an admin key is written
    plain = tmp_path / "plain"
    write_deployment(kind, plain, model_dir, api_key_env="MY_KEY")
    cmd, env = _served_commands(kind, plain)
    assert "--admin-key-env" not in cmd
    assert "ADMIN" not in str(env)
    assert "X-Admin-Key" not in (plain / "README.txt").read_text()


def test_the_admin_key_needs_a_variable_of_its_own(model_dir, tmp_path, capsys):
    # serve refuses an admin key equal to the API key when it starts; deploy
    # refuses the one variable for both now, before a service is installed
    with pytest.raises(ValueError, match="'admin_key_env'.*MY_KEY"):
        write_deployment("compose", tmp_path, model_dir, api_key_env="MY_KEY",
                         admin_key_env="MY_KEY")
    with pytest.raises(ValueError, match="admin_key_env"):
        write_deployment("docker", tmp_path, model_dir, admin_key_env="A; rm")
    assert not (tmp_path / "Dockerfile").exists()
    assert main(["deploy", "--type", "systemd", "--output-dir", str(tmp_path),
                 "--model-dir", str(model_dir), "--api-key-env", "K",
                 "--admin-key-env", "K"]) == 1
    assert "--admin-key-env" in capsys.readouterr().err
    assert not (tmp_path / "hybridclf-serve.service").exists()


def test_a_public_deployment_without_a_key_is_warned_of(model_dir, tmp_path,
                                                        caplog):
    # the warning used to come only from the running service's log
    with caplog.at_level("WARNING", logger="hybridclf"):
        write_deployment("docker", tmp_path / "open", model_dir, host="0.0.0.0")
    assert "without an API key" in caplog.text
    assert "--api-key-env" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="hybridclf"):
        write_deployment("docker", tmp_path / "keyed", model_dir, host="0.0.0.0",
                         api_key_env="HYBRIDCLF_KEY")
        write_deployment("docker", tmp_path / "local", model_dir)
    assert "without an API key" not in caplog.text


def test_a_public_deployment_without_an_admin_key_is_warned_of(model_dir,
                                                               tmp_path, caplog):
    # serve warned at start-up that /admin/reload would answer only its own
    # machine; deploy, which wrote that service's files, said nothing
    with caplog.at_level("WARNING", logger="hybridclf"):
        write_deployment("systemd", tmp_path / "open", model_dir,
                         host="0.0.0.0", api_key_env="HYBRIDCLF_KEY")
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
             and "admin key" in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert "POST /admin/reload answers only this machine" in lines[0]
    assert "--admin-key-env" in lines[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="hybridclf"):
        write_deployment("systemd", tmp_path / "keyed", model_dir,
                         host="0.0.0.0", api_key_env="HYBRIDCLF_KEY",
                         admin_key_env="HYBRIDCLF_ADMIN_KEY")
        write_deployment("systemd", tmp_path / "local", model_dir)
    assert "admin key" not in caplog.text


@pytest.mark.parametrize("host", ["", "0.0.0.0 --allow-pickle", "a\nb", "-x"])
def test_a_host_that_would_break_the_files_is_refused(model_dir, tmp_path, host):
    # an empty --host wrote 'ExecStart=... --host  --port 8000': a unit whose
    # service exits at once ('--host: expected one argument')
    with pytest.raises(ValueError, match="'host' parameter"):
        write_deployment("systemd", tmp_path, model_dir, host=host)
    assert not (tmp_path / "hybridclf-serve.service").exists()


def test_errors_name_the_problem(model_dir, tmp_path, capsys):
    with pytest.raises(ValueError, match="'kind' parameter"):
        write_deployment("k8s", tmp_path, model_dir)
    with pytest.raises(ValueError, match="api_key_env"):
        write_deployment("docker", tmp_path, model_dir, api_key_env="A; rm")
    assert main(["deploy", "--type", "docker", "--output-dir", str(tmp_path),
                 "--model-dir", str(tmp_path / "none")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_pickled_model_needs_allow_pickle(texture_folder, tmp_path):
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model

    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    save_model(pipe.fit(paths, labels), tmp_path / "m", model_format="pickle")
    with pytest.raises(ValueError, match="--allow-pickle"):
        write_deployment("systemd", tmp_path / "out", tmp_path / "m")
    write_deployment("systemd", tmp_path / "out", tmp_path / "m", allow_pickle=True)
    unit = (tmp_path / "out" / "hybridclf-serve.service").read_text()
    assert "--allow-pickle" in unit
