"""The training engine: every family trains through it as it did through its own loop, old checkpoints resume,
and two processes (gloo) train one model."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine_cases import CASES, FIXTURES, event_fields, prepare, step_losses
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.cli import TRAINERS


#: gloo talks over loopback: a test machine's host name need not resolve to an interface
LOOPBACK = {"GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _same_fields(before: list, now: list) -> None:
    """The same events in the same order, each with at least the fields it had (a new field is allowed)."""
    assert [row[0] for row in now] == [row[0] for row in before]
    for old, new in zip(before, now):
        assert set(old[1]) <= set(new[1]), (old[0], sorted(set(old[1]) - set(new[1])))
        assert old[2:] == new[2:]  # a step's loss names


BEFORE_ENGINE = sorted(name for name in CASES if (FIXTURES / name).is_dir())


@pytest.mark.parametrize("name", BEFORE_ENGINE)
def test_a_checkpoint_written_before_the_engine_resumes_to_the_same_losses(name: str, tmp_path: Path) -> None:
    record = json.loads((FIXTURES / name / "events.json").read_text())
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / name / "step_00000002.pt", run / "checkpoints")
    code, events = CASES[name].train(tmp_path / "data", run, 4, resume=True)
    assert code == 0, events[-2:]
    _same_fields(record["resumed"], event_fields(events))
    for old, new in zip(record["losses"], step_losses(events)):
        assert new == pytest.approx(old, rel=1e-3, abs=1e-5)
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["step"] == 4


@pytest.mark.parametrize("name", BEFORE_ENGINE)
def test_a_fresh_run_sends_the_events_it_sent_before(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    code, events = CASES[name].train(tmp_path / "data", tmp_path / "run", 2)
    assert code == 0, events[-2:]
    _same_fields(json.loads((FIXTURES / name / "events.json").read_text())["first"], event_fields(events))


def _torchrun(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent), **LOOPBACK}
    return subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd)


@pytest.mark.parametrize("name", sorted(CASES))
def test_two_processes_train_one_model_that_resumes_in_one(name: str, tmp_path: Path) -> None:
    root, run = tmp_path / "data", tmp_path / "run"
    prepare(name, root)
    done = _torchrun(str(Path(__file__).with_name("engine_cases.py")), "--distributed", name, str(root), str(run),
                     "3")
    assert done.returncode == 0, done.stderr[-3000:]
    events = json.loads(done.stdout.strip().splitlines()[-1])  # rank 0's; rank 1 fails if it writes a file
    assert next(e for e in events if e["event"] == "start")["ranks"] == 2
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3]
    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert [e["step"] for e in checkpoints] == [2, 3] and all(e["in_sync"] for e in checkpoints)
    assert (root / "rank0.txt").read_text() == (root / "rank1.txt").read_text()  # weights and buffers, bit for bit
    assert not any(e["event"] == "warning" and "differ" in e["message"] for e in events)

    code, resumed = CASES[name].train(root, run, 4, resume=True)  # one process, from the two-process checkpoint
    assert code == 0, resumed[-2:]
    assert any(e["event"] == "resume" and e["step"] == 3 for e in resumed)
    assert [e["step"] for e in resumed if e["event"] == "step"] == [4]


def test_torchrun_runs_the_command_line_and_the_ranks_draw_different_crops(tmp_path: Path) -> None:
    root = tmp_path / "data"
    prepare("dcgan", root)
    common = ["--data", str(root / "photos"), "--size", "16", "--latent-dim", "8", "--ngf", "4", "--ndf", "4",
              "--batch", "4", "--threads", "1", "--log-every", "1", "--checkpoint-every", "2", "--sample-every", "0"]
    done = _torchrun("-m", "ganstudio", "train", "dcgan", *common, "--out", str(tmp_path / "two"), "--steps", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    two = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sum(e["event"] == "start" for e in two) == 1 and two[-1]["event"] == "done"
    # the logged losses are the mean over the ranks, which drew their own batches: not rank 0's alone
    code, one = CASES["dcgan"].train(root, tmp_path / "one", 2)
    assert code == 0
    assert step_losses(two) != step_losses(one)
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "two"))
    assert saved["step"] == 2 and json.loads((tmp_path / "two" / "config.json").read_text())["task"] == "generate"


def test_the_training_modules_import_downwards_only() -> None:
    """Nothing in ganstudio/train imports the top-level command line, and no family imports the training command
    line (which imports the families): the engine sits below both."""
    import ast

    folder = Path(__file__).parent.parent / "ganstudio" / "train"
    for path in folder.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        assert "ganstudio.cli" not in imported, path.name
        if path.stem in {module for module, _ in TRAINERS.values()} | {"engine", "common"}:
            assert "ganstudio.train.cli" not in imported, path.name


def test_stopping_torchrun_checkpoints_every_process_at_the_same_step(tmp_path: Path) -> None:
    """What the wizard's Pause does to a run on all GPUs: SIGTERM to the launcher, which passes it on."""
    root, run = tmp_path / "data", tmp_path / "run"
    prepare("dcgan", root)
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    args = ["--data", str(root / "photos"), "--out", str(run), "--size", "16", "--latent-dim", "8", "--ngf", "4",
            "--ndf", "4", "--batch", "4", "--threads", "1", "--log-every", "1", "--checkpoint-every", "100000",
            "--sample-every", "0", "--steps", "100000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent), **LOOPBACK}
    with subprocess.Popen([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "ganstudio", "train", "dcgan",
                           *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as child:
        try:
            events = []
            for line in child.stdout:
                events.append(json.loads(line))
                if events[-1]["event"] == "step" and events[-1]["step"] >= 3:
                    break
            child.terminate()
            events += [json.loads(line) for line in child.stdout if line.startswith("{")]
            child.wait(timeout=60)
        finally:
            child.kill()
    done = events[-1]
    assert done["event"] == "done" and done["stopped"], events[-3:]
    checkpoint = next(e for e in events if e["event"] == "checkpoint")
    assert checkpoint["step"] == done["step"] and checkpoint["in_sync"]
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["step"] == done["step"]


def _recipe_commands() -> list[tuple[str, list[str]]]:
    """Every ``ganstudio train ...`` command in the code blocks of training/*/README.md (continuation lines
    joined), as arguments after ``train``; commands with a ``...`` placeholder are sketches, not recipes."""
    import re
    import shlex

    commands = []
    for readme in sorted((Path(__file__).parent.parent / "training").glob("**/README.md")):
        blocks = re.findall(r"^```[^\n]*\n(.*?)^```", readme.read_text(encoding="utf-8"), re.M | re.S)
        for line in re.sub(r"\\\n\s*", " ", "\n".join(blocks)).splitlines():
            if "ganstudio train " not in line or line.lstrip().startswith("#"):
                continue
            command = line[line.index("ganstudio train ") + len("ganstudio train "):].split(" > ")[0]
            # "[--metrics M.json]": an option the recipe's text calls optional
            words = shlex.split(re.sub(r"\s\[[^\]]*\]", "", command.split(" 2>")[0]).rstrip("&` "))
            if "..." not in words and words:
                commands.append((f"{readme.parent.name}: {' '.join(words[:2])}", words))
    return commands


def test_every_recipe_in_the_training_readmes_still_parses() -> None:
    from ganstudio.train.cli import parse_train_args

    commands = _recipe_commands()
    assert len(commands) >= 15 and {"superres", "pose", "cyclegan", "pose-refiner", "inpaint"} <= {
        words[0] for _, words in commands}
    for where, words in commands:
        try:
            parse_train_args(words)
        except SystemExit:
            pytest.fail(f"{where}: the recipe's flags no longer parse: {' '.join(words)}")


def test_a_one_process_checkpoint_resumes_on_two(tmp_path: Path) -> None:
    """The other way round: a checkpoint written before the engine existed, by one process, goes on under torchrun."""
    root, run = tmp_path / "data", tmp_path / "run"
    prepare("cyclegan", root)
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / "cyclegan" / "step_00000002.pt", run / "checkpoints")
    done = _torchrun(str(Path(__file__).with_name("engine_cases.py")), "--distributed", "cyclegan", str(root),
                     str(run), "4")
    assert done.returncode == 0, done.stderr[-3000:]
    events = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(e["event"] == "resume" and e["step"] == 2 for e in events)
    assert [e["step"] for e in events if e["event"] == "step"] == [3, 4]
    assert all(e["in_sync"] for e in events if e["event"] == "checkpoint")
    assert (root / "rank0.txt").read_text() == (root / "rank1.txt").read_text()
