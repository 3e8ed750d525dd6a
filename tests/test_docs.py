"""The documentation stays true: every command line in it runs.

The fenced code blocks of README.md and of every docs/*.md page (except
docs/benchmarks.md, which the benchmarks write) are run, in the order of the
page, in a sandbox folder of their own with this virtual environment's
``bin`` first on ``PATH``:

- blocks tagged ``bash``, ``sh`` or ``shell`` line by line (a line ending in
  ``\\`` continues on the next; ``#`` comments are skipped), blocks tagged
  ``console`` only their ``$ `` lines. Each line runs in ``bash -o pipefail``
  and must exit with 0; exported variables and the working folder carry over
  to the next line of the page;
- ``hybridclf serve`` is started in the background on a free port, the test
  waits until ``GET /ready`` answers, and the server runs until the end of
  the page; ``127.0.0.1:PORT`` / ``localhost:PORT`` in later lines is
  pointed at it;
- blocks tagged ``python`` run in one Python process per page, sharing their
  variables, as a reader pasting them one after the other would.

``curl`` commands to a server started by the page must get an HTTP status
below 400, unless the block is preceded by ``<!-- expect-status: NNN -->``.

A block that must not run (it installs packages, calls ``make``, needs Docker
or a network) is preceded by ``<!-- illustrative: <reason> -->``; the reason
must not be empty. Other blocks (``text``, ``json``, untagged) are not run.

The sandbox holds what the pages refer to: ``my_photos/`` and ``held_out/``
(the digits dataset written by docs/guide.md's first command), ``new_photos/``
(unlabelled images), ``photo.jpg``, ``new_photo.jpg``, ``one.jpg`` and a
trained ``model/``. A page that needs another file adds it here.
"""

import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXCLUDED = {"docs/benchmarks.md"}
SHELL_TAGS = {"bash", "sh", "shell", "console"}
PYTHON_TAGS = {"python", "py", "python3"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<tag>[\w+-]*)")
ILLUSTRATIVE = re.compile(r"^\s*<!--\s*illustrative:(?P<reason>.*?)-->\s*$")
EXPECT_STATUS = re.compile(r"^\s*<!--\s*expect-status:\s*(?P<status>\d{3})\s*-->\s*$")
SERVE = re.compile(r"^\s*(?:\S+=\S+\s+)*hybridclf\s+(?:-\S+\s+)*serve\b")
# what a reader must not paste into the test sandbox
MUST_BE_ILLUSTRATIVE = re.compile(
    r"^\s*(?:sudo\s|pip3?\s+install|python3?\s+-m\s+pip|make(?:\s|$)|git\s|docker\s)")
# seconds a command (a server start) may take on a machine to itself; on a
# loaded one each second counts 1/(load per CPU) (see _Deadline)
COMMAND_TIMEOUT = 300
SERVER_START_TIMEOUT = 120
# a hang still ends when the load never falls: at most this many times longer
MAX_LOAD_STRETCH = 10


def doc_files():
    """README.md and docs/*.md, as paths relative to the repository."""
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return [p.relative_to(REPO).as_posix() for p in files
            if p.is_file() and p.relative_to(REPO).as_posix() not in EXCLUDED]


@dataclass
class Block:
    """One fenced code block of a Markdown file."""

    file: str
    line: int  # 1-based line of the opening fence
    tag: str
    code: str
    illustrative: str | None  # the reason, or None when the block runs
    expect_status: int | None = None  # HTTP status its curl commands get

    @property
    def where(self):
        return f"{self.file}:{self.line} ({self.tag} block)"


def read_blocks(file):
    """The fenced code blocks of ``file`` (relative to the repository)."""
    lines = (REPO / file).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, start = match.group("fence"), i
        body, i = [], i + 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        previous = next((lines[j] for j in range(start - 1, -1, -1)
                         if lines[j].strip()), "")
        marker = ILLUSTRATIVE.match(previous)
        indent = len(match.group("indent"))
        code = "\n".join(line[indent:] if line[:indent].isspace() else line
                         for line in body)
        status = EXPECT_STATUS.match(previous)
        blocks.append(Block(file, start + 1, match.group("tag").lower(), code,
                            marker.group("reason").strip() if marker else None,
                            int(status.group("status")) if status else None))
        i += 1
    return blocks


def shell_commands(block):
    """The command lines of a shell block, continuation lines joined."""
    commands, current = [], ""
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if block.tag == "console" and not current:
            if not line.startswith("$ "):
                continue  # output shown in the docs
            line = line[2:]
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        commands.append((current + line).strip())
        current = ""
    if current.strip():
        commands.append(current.strip())
    return commands


ALL_BLOCKS = [block for file in doc_files() for block in read_blocks(file)]


# --------------------------------------------------------------------------
# checks that need no sandbox
# --------------------------------------------------------------------------
def test_the_guide_is_found():
    files = doc_files()
    for page in ("README.md", "docs/index.md", "docs/guide.md", "docs/cli.md",
                 "docs/service.md", "docs/troubleshooting.md"):
        assert page in files
    assert "docs/benchmarks.md" not in files
    assert any(b.tag in SHELL_TAGS and b.illustrative is None for b in ALL_BLOCKS)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: f"{b.file}:{b.line}")
def test_illustrative_blocks_say_why(block):
    if block.illustrative is not None:
        assert block.illustrative, (
            f"{block.where}: the illustrative marker needs a reason: "
            "<!-- illustrative: <why this block is not run> -->")
        return
    if block.tag in SHELL_TAGS:
        for command in shell_commands(block):
            assert not MUST_BE_ILLUSTRATIVE.match(command), (
                f"{block.where}: `{command}` would install, recurse or need "
                "outside services in the test; mark the block with "
                "<!-- illustrative: <reason> --> on the line before it")


def test_pages_link_to_existing_pages():
    # relative links between the docs pages and the README must not dangle
    for file in doc_files():
        text = (REPO / file).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:\s]+\.md)(?:#[^)]*)?\)", text):
            path = (REPO / file).parent / target
            assert path.is_file() or target in (
                "scale-out.md", "choosing-features.md"), (
                f"{file} links to {target}, which does not exist")


def _heading_anchors(file):
    """The ``#fragment`` of every heading of a Markdown page, as GitHub makes them.

    Lower case, punctuation but ``-`` and ``_`` dropped, spaces turned into
    ``-``; the second heading of one name gets ``-1``, the third ``-2``.
    Headings inside fenced code blocks are not headings.
    """
    anchors, seen, fence = set(), {}, None
    for line in file.read_text(encoding="utf-8").splitlines():
        match = FENCE.match(line)
        if match and (fence is None or match.group("fence").startswith(fence)):
            fence = match.group("fence")[:3] if fence is None else None
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fence is None and heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_links_reach_their_headings():
    # a link to a section (`cli.md#predict`, `benchmarks.md#...`, `#train`)
    # lands on it: a renamed heading, or a benchmark that rewrites its
    # section under another title, would otherwise leave the reader at the
    # top of the page
    wrong = []
    for file in doc_files():
        page = REPO / file
        for target, fragment in re.findall(r"\]\(([^)#:\s]*)#([^)\s]+)\)",
                                           page.read_text(encoding="utf-8")):
            linked = (page.parent / target) if target else page
            if linked.suffix == ".md" and linked.is_file() and (
                    fragment not in _heading_anchors(linked)):
                wrong.append(f"{file}: ({target}#{fragment}) names no heading "
                             f"of {linked.relative_to(REPO).as_posix()}")
    assert not wrong, "\n".join(wrong)


def _sections(text):
    """Markdown ``## name`` sections of a page: name -> text."""
    parts = re.split(r"^## +(\S+) *$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_cli_reference_matches_the_parser():
    # every command and option of `hybridclf` is in docs/cli.md (the Dask ones
    # may be in docs/scale-out.md instead), with the parser's default
    import argparse

    from hybridclf.cli import build_parser

    cli_md = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    scale = REPO / "docs" / "scale-out.md"
    scale_md = scale.read_text(encoding="utf-8") if scale.is_file() else ""
    sections = _sections(cli_md)
    parser = build_parser()
    commands = next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    # options of every command and of the top level (-v) are documented once,
    # at the top of the page
    top = {s for a in parser._actions for s in a.option_strings}
    assert "`-v`" in cli_md.split("\n## ")[0]
    for name, sub in commands.items():
        section = sections.get(name)
        if section is None:
            assert f"hybridclf {name}" in scale_md, (
                f"`hybridclf {name}` has no '## {name}' section in docs/cli.md")
            continue
        for action in sub._actions:
            longs = [s for s in action.option_strings if s.startswith("--")]
            if not longs or longs[0] == "--help" or longs[0] in top:
                continue
            option = longs[0]
            if f"`{option}" not in section:
                assert f"`{option}" in scale_md, (
                    f"docs/cli.md, section '{name}', does not document {option}")
                continue
            row = re.search(rf"^\| `{re.escape(option)}[^|]*\| *([^|]*?) *\|",
                            section, re.MULTILINE)
            if row is None or isinstance(action.default, bool):
                continue
            cell, default = row.group(1), action.default
            if option == "--features" and default is None:
                # resolved in the command: the docs name the blocks it uses
                from hybridclf.pipeline import DEFAULT_FEATURES

                assert f"`{' '.join(DEFAULT_FEATURES)}`" in cell, (
                    f"docs/cli.md, {name} --features: default {cell!r}, "
                    f"DEFAULT_FEATURES is {DEFAULT_FEATURES!r}")
            if action.required:
                assert cell == "required", (name, option, cell)
            elif isinstance(default, (int, float)):
                shown = re.search(r"-?\d+(?:\.\d+)?", cell)
                assert shown and float(shown.group()) == default, (
                    f"docs/cli.md, {name} {option}: default {cell!r}, the parser "
                    f"says {default!r}")
            elif isinstance(default, str):
                assert f"`{default}`" in cell, (
                    f"docs/cli.md, {name} {option}: default {cell!r}, the parser "
                    f"says {default!r}")


def test_documented_options_exist():
    # the other way round: every `--option` written after `hybridclf
    # COMMAND` in the README or a docs page is an option of that command, and
    # every `--option` of a docs/cli.md section one of its command, and
    # every `--option` in a code span that starts with a command's name
    # (`serve --no-ood`, written without `hybridclf`) one of that command
    # (a renamed option would otherwise linger in the pages)
    import argparse

    from hybridclf.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    top = {s for a in parser._actions for s in a.option_strings}
    known = {name: top | {s for a in sub._actions for s in a.option_strings}
             for name, sub in commands.items()}
    # options of another command that a section names on purpose
    elsewhere = {("augment", "--groups"), ("predict", "--groups"),
                 ("serve", "--data-dir")}
    wrong = []
    for file in [*doc_files(), "docs/benchmarks.md"]:
        text = (REPO / file).read_text(encoding="utf-8").replace("\\\n", " ")
        for match in re.finditer(r"hybridclf\s+(?:-\S+\s+)*([a-z]+)([^\n`]*)", text):
            name, rest = match.groups()
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
                if name in known and option not in known[name]:
                    wrong.append(f"{file}: hybridclf {name} has no {option}")
        spans = re.finditer(rf"`({'|'.join(known)})(\s[^`\n]*)`", text)
        for name, rest in (span.groups() for span in spans):
            wrong += [f"{file}: `{name}{rest}`: {name} has no {option}"
                      for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest)
                      if option not in known[name]]
    section = None
    for line in (REPO / "docs" / "cli.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^##\s+`?(?:hybridclf\s+)?([a-z-]+)", line)
        if heading:
            section = heading.group(1) if heading.group(1) in known else None
        elif section:
            wrong += [f"docs/cli.md, section {section}: no {option}"
                      for option in re.findall(r"`(--[a-z][a-z0-9-]*)", line)
                      if option not in known[section]
                      and (section, option) not in elsewhere]
    assert not wrong, "\n".join(wrong)


# --------------------------------------------------------------------------
# the sandbox
# --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def docs_sandbox(tmp_path_factory):
    """A folder with the files the docs refer to; copied for each page."""
    import cv2

    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model
    from hybridclf.sample_data import write_digits_folder
    from hybridclf.training import train_model

    root = tmp_path_factory.mktemp("docs-sandbox")
    # the same call as the first command of docs/guide.md, which rewrites
    # the same files when it runs
    write_digits_folder(root / "my_photos", n_per_class=12,
                        holdout_root=root / "held_out", n_holdout=4)
    held_out = sorted((root / "held_out").rglob("*.png"))
    (root / "new_photos").mkdir()
    for path in held_out[::8]:
        shutil.copy(path, root / "new_photos" / path.name)
    image = cv2.imread(str(held_out[0]))
    for name in ("photo.jpg", "new_photo.jpg", "one.jpg"):
        cv2.imwrite(str(root / name), image)
    # the pages run examples as `python examples/NAME.py` from the repository
    (root / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    paths, labels = load_image_folder(root / "my_photos")
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    result = train_model(pipe, paths, labels, test_size=0, cv_folds=3)
    save_model(result.pipeline, root / "model", metadata=result.metadata())
    return root


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(text, n=3000):
    return text if len(text) <= n else "..." + text[-n:]


def _load_factor():
    """How many times slower than alone a command runs now, at least 1.

    The 1-minute load average per CPU: with 10 runnable tasks on 2 CPUs, a
    command gets about a fifth of a CPU (less at a lower priority).
    """
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except (AttributeError, OSError):  # no load average on this system
        return 1.0


class _Deadline:
    """A time limit that stretches with the load of the machine.

    ``seconds`` is what a command may take on a machine to itself. The page
    docs/scale-out.md (26 s alone) failed in full suites beside a benchmark
    (2 CPUs, load 10+) and passed alone: its lines start Dask clusters of 2
    worker processes, and given 4-5 % of the CPU (a nice-19 suite beside
    busy processes) its train and extract lines still succeeded, in 91 and
    110 s, so Dask's own time limits hold; the fixed limit here did not
    stretch. Here each second of wall time counts ``1 / load per CPU``,
    measured as it goes, and ``MAX_LOAD_STRETCH`` times ``seconds`` of wall
    time end a hang anyway.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self.left = seconds
        self.start = self.last = time.monotonic()

    def expired(self):
        """Count the time since the last call; whether the limit is reached."""
        now = time.monotonic()
        self.left -= (now - self.last) / _load_factor()
        self.last = now
        return self.left <= 0 or now - self.start >= self.seconds * MAX_LOAD_STRETCH

    def remaining(self):
        """Seconds of wall time to wait before the next check (at most 1)."""
        return max(min(self.left, 1.0), 0.01)

    def describe(self):
        """The limit and the wall time taken, for a failure message."""
        return (f"{self.seconds} s (stretched by the machine's load: "
                f"{time.monotonic() - self.start:.0f} s of wall time)")


_DRIVER = r'''
import json, sys, traceback
namespace = {"__name__": "__main__"}
for line in sys.stdin:
    request = json.loads(line)
    try:
        exec(compile(request["code"], request["name"], "exec"), namespace)
        answer = {"ok": True, "error": ""}
    except BaseException:
        answer = {"ok": False, "error": traceback.format_exc()}
    sys.stdout.flush()
    sys.stderr.flush()
    print("\n@@docs-block-done@@ " + json.dumps(answer), flush=True)
'''


class PageRunner:
    """Runs the blocks of one page in a sandbox, in order."""

    def __init__(self, root, file):
        self.root = root
        self.file = file
        self.state = root / ".docs_state.sh"
        self.state.write_text("")
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "VIRTUAL_ENV": str(Path(bin_dir).parent),
            "MPLBACKEND": "Agg",
            # one BLAS thread: many small fits on 2 shared cores (see
            # docs/troubleshooting.md, "Slow training on a busy machine")
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        self.env.pop("PYTHONPATH", None)
        (root / ".tmp").mkdir(exist_ok=True)
        self.env["TMPDIR"] = str(root / ".tmp")
        self.servers = {}  # port in the docs -> (process, real port, log path)
        self.python = None

    # ---- ports
    def _ports(self, text):
        for docs_port, (_, port, _) in self.servers.items():
            text = re.sub(rf"\b(127\.0\.0\.1|localhost):{docs_port}\b",
                          rf"\g<1>:{port}", text)
        return text

    # ---- shell
    def shell(self, block, command):
        if MUST_BE_ILLUSTRATIVE.match(command):
            pytest.fail(f"{block.where}: `{command}` is not run here: it would "
                        "install, recurse or need outside services. Mark the "
                        "block with <!-- illustrative: <reason> -->", pytrace=False)
        if SERVE.match(command):
            return self._serve(block, command)
        run = self._ports(command)
        check_status = bool(self.servers) and run.startswith("curl ")
        if check_status:
            run = "curl -w '\\n@@http %{http_code}\\n' " + run[len("curl "):]
        state = shlex.quote(str(self.state))
        script = (f"source {state}\nset -eo pipefail\n{run}\n"
                  f"export -p > {state}\necho \"cd $(printf %q \"$PWD\")\" "
                  f">> {state}\n")
        result = self._run_bash(block, command, script)
        if result.returncode != 0:
            pytest.fail(
                f"{block.where}: `{command}` exited with {result.returncode}\n"
                f"--- stdout\n{_tail(result.stdout)}\n--- stderr\n"
                f"{_tail(result.stderr)}", pytrace=False)
        status = re.search(r"^@@http (\d{3})$", result.stdout, re.MULTILINE)
        if check_status and status:
            got, expected = int(status.group(1)), block.expect_status
            if (got != expected) if expected else got >= 400:
                pytest.fail(
                    f"{block.where}: `{command}` got HTTP {got}, expected "
                    f"{expected or 'a status below 400'}\n--- answer\n"
                    f"{_tail(result.stdout)}", pytrace=False)

    def _run_bash(self, block, command, script):
        """Run ``script`` in bash; fail the test when it runs over its limit."""
        process = subprocess.Popen(
            ["bash", "-c", script], cwd=self.root, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = _Deadline(COMMAND_TIMEOUT)
        while True:
            try:
                stdout, stderr = process.communicate(timeout=deadline.remaining())
                return subprocess.CompletedProcess(process.args, process.returncode,
                                                   stdout, stderr)
            except subprocess.TimeoutExpired:
                if not deadline.expired():
                    continue
            # the whole group: a Dask worker holding the pipes ends too
            os.killpg(process.pid, signal.SIGKILL)
            stdout, _ = process.communicate()
            pytest.fail(f"{block.where}: `{command}` ran over "
                        f"{deadline.describe()}\n--- stdout\n{_tail(stdout)}",
                        pytrace=False)

    def _serve(self, block, command):
        match = re.search(r"--port[= ](\d+)", command)
        docs_port = int(match.group(1)) if match else 8000
        self._stop(docs_port)
        port = _free_port()
        if match:
            command = command.replace(match.group(0), f"--port {port}")
        else:
            command += f" --port {port}"
        log = self.root / f".serve-{docs_port}.log"
        with open(log, "w") as fh:
            process = subprocess.Popen(
                ["bash", "-c",
                 f"source {shlex.quote(str(self.state))}\nexec {command}"],
                cwd=self.root, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.servers[docs_port] = (process, port, log)
        deadline = _Deadline(SERVER_START_TIMEOUT)
        while not deadline.expired():
            if process.poll() is not None:
                pytest.fail(f"{block.where}: `{command}` stopped with "
                            f"{process.returncode}\n--- log\n{_tail(log.read_text())}",
                            pytrace=False)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready",
                                            timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        pytest.fail(f"{block.where}: `{command}` did not answer GET /ready within "
                    f"{deadline.describe()}\n--- log\n{_tail(log.read_text())}",
                    pytrace=False)

    def _stop(self, docs_port):
        process, _, _ = self.servers.pop(docs_port, (None, None, None))
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    # ---- python
    def run_python(self, block):
        if self.python is None:
            driver = self.root / ".docs_driver.py"
            driver.write_text(_DRIVER)
            self.python_log = open(self.root / ".python.log", "w")
            self.python = subprocess.Popen(
                [sys.executable, "-u", str(driver)], cwd=self.root, env=self.env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self.python_log, text=True)
            self.lines = queue.Queue()
            threading.Thread(target=self._read, daemon=True).start()
        request = {"code": self._ports(block.code), "name": block.where}
        self.python.stdin.write(json.dumps(request) + "\n")
        self.python.stdin.flush()
        output, deadline = [], _Deadline(COMMAND_TIMEOUT)
        while True:
            try:
                line = self.lines.get(timeout=deadline.remaining())
            except queue.Empty:
                if not deadline.expired():
                    continue
                pytest.fail(f"{block.where}: ran over {deadline.describe()}\n"
                            f"--- output\n{_tail(''.join(output))}")
            if line is None:
                pytest.fail(f"{block.where}: the Python process died\n--- stderr\n"
                            f"{_tail((self.root / '.python.log').read_text())}")
            if line.startswith("@@docs-block-done@@ "):
                answer = json.loads(line.split(" ", 1)[1])
                break
            output.append(line)
        if not answer["ok"]:
            pytest.fail(f"{block.where} failed:\n{block.code}\n--- error\n"
                        f"{answer['error']}--- output\n{_tail(''.join(output))}",
                        pytrace=False)

    def _read(self):
        for line in self.python.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def close(self):
        for docs_port in list(self.servers):
            self._stop(docs_port)
        if self.python is not None:
            self.python.stdin.close()
            try:
                self.python.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.python.kill()
                self.python.wait()
            self.python_log.close()


def test_a_loaded_machine_stretches_the_command_limit(tmp_path, monkeypatch):
    # the limit was a fixed 300 s of wall time: docs/scale-out.md (26 s
    # alone) failed in full suites on a loaded machine and passed alone
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "COMMAND_TIMEOUT", 0.5)
    runner = PageRunner(tmp_path, "page.md")
    block = Block("page.md", 1, "bash", "", None)
    cpus = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (8.0 * cpus, 0.0, 0.0))
    runner.shell(block, "sleep 1.5")  # 0.5 s alone, about 4 s at 8 per CPU
    # a command that hangs still fails, its processes ended
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="`sleep 60` ran over 0.5 s"):
        runner.shell(block, "sleep 60")
    assert time.monotonic() - start < 60  # killed, not waited for


@pytest.mark.slow
@pytest.mark.parametrize("file", doc_files())
def test_doc_commands_run(file, docs_sandbox, tmp_path):
    blocks = [b for b in read_blocks(file) if b.illustrative is None
              and (b.tag in SHELL_TAGS or b.tag in PYTHON_TAGS)]
    if not blocks:
        pytest.skip(f"{file} has no block to run")
    root = tmp_path / "sandbox"
    shutil.copytree(docs_sandbox, root)
    runner = PageRunner(root, file)
    try:
        for block in blocks:
            start = time.perf_counter()
            if block.tag in PYTHON_TAGS:
                runner.run_python(block)
                print(f"{time.perf_counter() - start:5.1f} s  {block.where}")
                continue
            for command in shell_commands(block):
                runner.shell(block, command)
                print(f"{time.perf_counter() - start:5.1f} s  {command}")
                start = time.perf_counter()
    finally:
        runner.close()


# --------------------------------------------------------------------------
# the API reference
# --------------------------------------------------------------------------
def test_api_reference_builds(tmp_path):
    # `make docs`, into a temporary folder, with this interpreter, without
    # its install step
    pytest.importorskip("pdoc")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        ["make", "-o", ".venv/.installed-dev", "docs", f"API_DIR={tmp_path}",
         f"BIN={bin_dir}"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    top = (tmp_path / "hybridclf.html").read_text(encoding="utf-8")
    assert "make_hybrid_pipeline" in top
    for page in ("features.html", "serve.html", "training.html", "io.html"):
        assert (tmp_path / "hybridclf" / page).is_file(), page
    features = (tmp_path / "hybridclf" / "features.html").read_text(encoding="utf-8")
    assert "HOGFeatures" in features and "orientations" in features


def test_the_original_systems_names_are_mapped():
    # DEVELOPERS.md: the original system's options and API fields are what
    # users expect; a user coming from it finds each of them on one page
    page = (REPO / "docs" / "migrating.md").read_text(encoding="utf-8")
    names = ["dataset_inspector.py", "augmentation_pipeline.py",
             "hybrid_trainer.py", "evaluation_suite.py",
             "production_deployment.py", "--quick-mode", "--check-duplicates",
             "--corruption-threshold", "--input-dir", "--target-samples",
             "--augmentation-factor", "--quality-threshold", "--cv-folds",
             "--test-size", "--verbose", "--type systemd", "image_data",
             "confidence_threshold", "return_probabilities", "predicted_class",
             "processing_time_ms", "model_version", "error_message",
             "/predict/file", "uptime_seconds", "memory_usage_mb",
             "cpu_usage_percent", "predictions_count", "average_response_time_ms",
             "/metrics", "/docs", "FeatureConfig", "ensemble_model.joblib"]
    assert [name for name in names if f"`{name}" not in page and
            f"{name}`" not in page] == []
    assert "(migrating.md)" in (REPO / "docs" / "index.md").read_text(
        encoding="utf-8")
